#!/usr/bin/env node
'use strict';
/**
 * Cross-instance ws.control+ latency through Redis: list and close as a flow sees them.
 *
 * A real redis-server on a free loopback port and two real Node-RED processes with the same flow:
 * a listener on /ws/app (HS256, cluster Redis) and POST /control (http in -> function ->
 * ws.control+ -> http response). Each instance holds `sessions` open sessions. One request in
 * flight at a time, all sent to instance 1:
 *
 * - list: POST {action: "list"} until the answer holds both instances' sessions; a sample is the
 *   HTTP round trip (instance 1 asks instance 2 through Redis and merges the answers).
 * - close: a fresh session of its own subject on instance 2, then POST {action: "close", subject};
 *   two samples: the HTTP answer ({closed: 1}) and the client's close event on instance 2.
 *
 * Every answer must be complete (partial false, the expected count): anything else fails the run.
 * Usage: `node bench/control-latency.js` (prints JSON), or
 *   const { run } = require('./bench/control-latency');
 *   const { list, closeAnswer, closeSeen } = await run({ samples: 200, sessions: 50 });
 * Figures are milliseconds. Needs `npm run build` first and redis-server on PATH (or REDIS_SERVER).
 */
const path = require('path');
const { open, summary, teardown, printResult } = require('./latency-common');

const ROOT = path.resolve(__dirname, '..');
const { startRedis } = require(path.join(ROOT, 'test', 'helpers', 'redis-server'));
const { spawnInstance } = require(path.join(ROOT, 'test', 'helpers', 'nr-instance'));
const { signHS256 } = require(path.join(ROOT, 'test', 'helpers', 'tokens'));
const { controlFlow, LISTENER_ID, WS_PATH } = require(path.join(ROOT, 'test', 'helpers', 'control-flow'));

const SECRET = 'control-latency-bench-secret-0123456789ab';

// No heartbeat: a ping in a window would add a round trip to a sample.
const flow = () => controlFlow({ heartbeat: '0' });

async function control(port, body, timeoutMs) {
  const res = await fetch(`http://127.0.0.1:${port}/control`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  if (res.status !== 200) throw new Error(`POST /control answered HTTP ${res.status}`);
  return res.json();
}

const elapsedMs = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;
const connect = (url) => open(url, { handshakeTimeout: 10000 });

/**
 * Measures list and close across two instances. Options: samples (200 lists, and a quarter as many
 * closes), sessions per instance (50), warmup (20), timeoutMs per request (5000).
 */
async function run(options = {}) {
  const samples = options.samples ?? 200;
  const closes = Math.max(1, Math.round(samples / 4));
  const perInstance = options.sessions ?? 50;
  const warmup = options.warmup ?? 20;
  const timeoutMs = options.timeoutMs ?? 5000;
  const redis = await startRedis();
  const instances = [];
  const sockets = [];
  try {
    const credentials = { [LISTENER_ID]: { secret: SECRET, redisUrl: redis.url } };
    instances.push(
      ...(await Promise.all([
        spawnInstance({ flows: flow(), credentials, env: { NR_LOG_LEVEL: 'info' } }),
        spawnInstance({ flows: flow(), credentials, env: { NR_LOG_LEVEL: 'info' } }),
      ])),
    );
    for (const inst of instances) await inst.waitForLines(/cluster connected/, 1);
    const [one, two] = instances;
    const token = (sub) => signHS256(SECRET, { tenant_id: 'acme', sub }, { expiresIn: 3600 });
    for (const [i, inst] of instances.entries())
      for (let n = 0; n < perInstance; n++)
        sockets.push(await connect(inst.url(WS_PATH, `token=${await token(`idle-${i}-${n}`)}`)));
    const total = perInstance * 2;

    // both instances announced themselves and answer
    const deadline = Date.now() + 15000;
    for (;;) {
      const answer = await control(one.port, { action: 'count' }, timeoutMs);
      if (answer.partial === false && answer.result.total === total) break;
      if (Date.now() > deadline) throw new Error(`instances never both answered: ${JSON.stringify(answer)}`);
      await new Promise((r) => setTimeout(r, 200));
    }

    const list = [];
    for (let i = 0; i < warmup + samples; i++) {
      const t0 = process.hrtime.bigint();
      const answer = await control(one.port, { action: 'list' }, timeoutMs);
      const ms = elapsedMs(t0);
      if (answer.partial !== false || answer.result.length !== total)
        throw new Error(`incomplete list: partial ${answer.partial}, ${answer.result.length} of ${total}`);
      if (i >= warmup) list.push(ms);
    }

    const closeAnswer = [];
    const closeSeen = [];
    for (let i = 0; i < closes; i++) {
      const subject = `closed-${i}`;
      const ws = await connect(two.url(WS_PATH, `token=${await token(subject)}`));
      sockets.push(ws);
      const t0 = process.hrtime.bigint();
      const seen = new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${subject} not closed within ${timeoutMs} ms`)), timeoutMs);
        ws.once('close', (code) => {
          clearTimeout(timer);
          if (code !== 4003) reject(new Error(`${subject} closed with ${code}`));
          else resolve(elapsedMs(t0));
        });
      });
      const answer = await control(one.port, { action: 'close', tenantId: 'acme', subject }, timeoutMs);
      closeAnswer.push(elapsedMs(t0));
      if (answer.partial !== false || answer.result.closed !== 1)
        throw new Error(`close of ${subject}: ${JSON.stringify(answer)}`);
      closeSeen.push(await seen);
    }
    return {
      sessions: total,
      list: summary(list, 2),
      closeAnswer: summary(closeAnswer, 2),
      closeSeen: summary(closeSeen, 2),
      unit: 'ms',
    };
  } finally {
    await teardown({ sockets, instances, redis });
  }
}

module.exports = { run };

if (require.main === module) {
  const samples = Number(process.env.BENCH_CONTROL_SAMPLES || 200);
  const sessions = Number(process.env.BENCH_CONTROL_SESSIONS || 50);
  printResult(run({ samples, sessions }));
}
