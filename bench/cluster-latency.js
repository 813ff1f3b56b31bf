#!/usr/bin/env node
'use strict';
/**
 * Cross-instance tenant delivery latency through Redis.
 *
 * A real redis-server on a free loopback port and two instances, each its own process: by default
 * two real Node-RED runtimes with the same flow (listener on /ws/bench, tenant scope, cluster
 * Redis, ws.in+ -> ws.out+); with { mode: 'core' } two plain processes running the core
 * WebSocketListener + ClusterBus (what the package itself costs, without Node-RED's flow).
 * A sender client on instance 1 and a receiver of the same tenant on instance 2; one message in
 * flight at a time. A sample is the time from the sender's send() to the receiver's message:
 * ws frame -> instance 1 -> deliver (tenant) -> PUBLISH -> Redis -> instance 2 -> ws frame.
 *
 * Usage: `node bench/cluster-latency.js` (prints JSON), or
 *   const { run } = require('./bench/cluster-latency');
 *   const { p50, p99, samples } = await run({ samples: 2000, warmup: 200, mode: 'node-red' });
 * Figures are milliseconds. Needs `npm run build` first and redis-server on PATH (or REDIS_SERVER).
 */
const path = require('path');
const http = require('http');
const { fork } = require('child_process');
const { open, summary, teardown, printResult } = require('./latency-common');

const ROOT = path.resolve(__dirname, '..');
const { startRedis } = require(path.join(ROOT, 'test', 'helpers', 'redis-server'));
const { spawnInstance } = require(path.join(ROOT, 'test', 'helpers', 'nr-instance'));

const WS_PATH = '/ws/bench';
const TENANT = 'bench';

/** Child mode (core): one instance = HTTP server + WebSocketListener + ClusterBus. */
async function coreInstance(redisUrl) {
  const lib = path.join(ROOT, 'nodes', 'lib', 'core');
  const { WebSocketListener } = require(path.join(lib, 'server', 'listener.js'));
  const { createTokenVerifier } = require(path.join(lib, 'auth', 'token-verifier.js'));
  const { ClusterBus, defaultClusterPrefix } = require(path.join(lib, 'cluster', 'cluster-bus.js'));
  const server = http.createServer((req, res) => res.end());
  const cluster = new ClusterBus({ url: redisUrl, prefix: defaultClusterPrefix(WS_PATH) });
  cluster.on('connectionError', (err) => process.stderr.write(`cluster: ${err.message}\n`));
  const listener = new WebSocketListener({
    server,
    path: WS_PATH,
    verifier: createTokenVerifier({ mode: 'none' }),
    tenant: { from: 'static', claim: 'tenant_id', staticTenantId: TENANT },
    scope: 'tenant',
    heartbeatMs: 0,
    cluster,
  });
  // as ws.in+ -> ws.out+ does: the reply goes out with the session's own id
  listener.on('message', (session, data) => listener.deliver(session.id, data));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  listener.start();
  await new Promise((resolve) => {
    const check = () => (cluster.state === 'ready' ? resolve() : cluster.once('state', check));
    check();
  });
  process.send({ port: server.address().port });
  process.on('disconnect', async () => {
    await listener.close();
    server.close(() => process.exit(0));
  });
}

function startCoreInstance(redisUrl) {
  const child = fork(__filename, ['--instance', redisUrl], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    child.once('message', ({ port }) =>
      resolve({
        url: (p) => `ws://127.0.0.1:${port}${p}`,
        stop: () =>
          new Promise((done) => {
            if (child.exitCode !== null) return done();
            child.once('exit', () => done());
            child.disconnect();
            setTimeout(() => child.kill('SIGKILL'), 5000).unref();
          }),
      }),
    );
    child.once('exit', (code) => reject(new Error(`instance exited (${code})`)));
  });
}

function nodeRedFlow() {
  return [
    { id: 'tab', type: 'tab', label: 'bench' },
    {
      id: 'lis',
      type: 'websocket-plus-listener',
      path: WS_PATH,
      wholemsg: 'false',
      authMode: 'none',
      tenantFrom: 'static',
      tenantId: TENANT,
      scope: 'tenant',
      cluster: 'redis',
      clusterPrefix: '',
      heartbeat: '0',
    },
    { id: 'in', type: 'websocket-plus in', z: 'tab', server: 'lis', client: '', wires: [['out']] },
    { id: 'out', type: 'websocket-plus out', z: 'tab', server: 'lis', client: '', wires: [] },
  ];
}

async function startNodeRedInstance(redisUrl) {
  const inst = await spawnInstance({ flows: nodeRedFlow(), credentials: { lis: { redisUrl } } });
  await inst.waitForStatus('out', (s) => s.fill === 'green', 15000);
  return { url: (p) => inst.url(p), stop: () => inst.stop() };
}

/**
 * Measures cross-instance tenant delivery latency. Resolves { p50, p99, samples, ... } in ms.
 * Options: samples (2000), warmup (200), mode ('node-red' | 'core'), timeoutMs per message (5000).
 */
async function run(options = {}) {
  const samples = options.samples ?? 2000;
  const warmup = options.warmup ?? 200;
  const mode = options.mode ?? 'node-red';
  const timeoutMs = options.timeoutMs ?? 5000;
  const redis = await startRedis();
  const instances = [];
  const sockets = [];
  try {
    const start = mode === 'core' ? startCoreInstance : startNodeRedInstance;
    instances.push(...(await Promise.all([start(redis.url), start(redis.url)])));
    const [one, two] = instances;
    const sender = await open(one.url(WS_PATH));
    const receiver = await open(two.url(WS_PATH));
    sockets.push(sender, receiver);
    // the receiver's instance may finish subscribing a moment after its status turned ready
    const prime = (ms) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          receiver.off('message', onMessage);
          reject(new Error('no cross-instance delivery'));
        }, ms);
        const tick = setInterval(() => sender.send('prime'), 50);
        function onMessage() {
          clearTimeout(timer);
          clearInterval(tick);
          receiver.off('message', onMessage);
          resolve();
        }
        receiver.on('message', onMessage);
      });
    await prime(10000);
    await new Promise((r) => setTimeout(r, 200));

    const times = [];
    let seq = 0;
    let pending;
    receiver.on('message', (data) => {
      if (pending && data.toString() === pending.id) pending.done();
    });
    for (let i = 0; i < warmup + samples; i++) {
      const id = `m${++seq}`;
      const elapsed = await new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`message ${id} not delivered within ${timeoutMs} ms`)),
          timeoutMs,
        );
        const t0 = process.hrtime.bigint();
        pending = {
          id,
          done() {
            clearTimeout(timer);
            pending = undefined;
            resolve(Number(process.hrtime.bigint() - t0) / 1e6);
          },
        };
        sender.send(id);
      });
      if (i >= warmup) times.push(elapsed);
    }
    return { mode, ...summary(times, 3), unit: 'ms' };
  } finally {
    await teardown({ sockets, instances, redis });
  }
}

module.exports = { run };

if (require.main === module) {
  if (process.argv[2] === '--instance') {
    coreInstance(process.argv[3]).catch((err) => {
      process.stderr.write(`${err.stack}\n`);
      process.exit(1);
    });
  } else {
    const mode = process.argv.includes('--core') ? 'core' : 'node-red';
    const samples = Number(process.env.BENCH_CLUSTER_SAMPLES || 2000);
    printResult(run({ mode, samples }));
  }
}
