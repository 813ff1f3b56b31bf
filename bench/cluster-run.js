#!/usr/bin/env node
'use strict';
/**
 * The cluster benchmark (`npm run bench:cluster`): what a tenant message costs across instances.
 *
 * Real processes on 127.0.0.1: N = 2, 4, 8 core WebSocketListener instances (bench/cluster-instance.js,
 * one process each, tenant scope) sharing one redis-server, then a real 3-master Redis Cluster; and
 * two instances on a Sentinel setup (master, replica, 3 sentinels) whose master is killed mid-run.
 *
 * Workload: tenant t<i> has its receiving client on instance i and its sending client on instance
 * i + 1, so every tenant is held by those two instances and by no other. One message is in flight
 * at a time, tenants in turn. Then replies: instance i + 1 replies to the id of a session held by
 * instance i (session scope). Per tenant message (and per reply) it reports:
 * - Redis deliveries to the receiving instance, to instances that hold no session of the tenant,
 *   and back to the sending instance (its own echo), counted inside each instance;
 * - the latency from the sender's send() to the receiver's message (p50/p99, ms).
 * The Sentinel run streams one message every 10 ms and reports the longest gap between deliveries
 * around the failover and how many messages were lost in it (sent while no master was known:
 * delivered locally only, never replayed).
 *
 * Options: --baseline <git ref>  also measure that commit's bus (compiled into bench/results/tmp/),
 *          --rounds <n> (3), --messages <n> per round (240), --failovers <n> (2), --quick (N = 2, 4),
 *          --no-docs (results files only), --report-only (the docs again from the results file).
 * Results: bench/results/cluster-latest.{json,md}; the Markdown table replaces the cluster block of
 * docs/benchmarks.md and the README's cluster benchmark lines (between their bench-cluster markers).
 * Needs `npm run build` first, redis-server and redis-cli on PATH (or REDIS_SERVER / REDIS_CLI).
 */
const fs = require('fs');
const os = require('os');
const path = require('path');
const { fork, execFileSync } = require('child_process');
const WebSocket = require('ws');

const ROOT = path.resolve(__dirname, '..');
const { startRedis } = require(path.join(ROOT, 'test', 'helpers', 'redis-server'));
const { startRedisCluster, startRedisSentinel } = require(path.join(ROOT, 'test', 'helpers', 'redis-cluster'));

const WS_PATH = '/ws/bench';
const REPLY_PATH = '/ws/reply';
const RESULTS = path.join(ROOT, 'bench', 'results');
const START_TIMEOUT_MS = 20000;
const MESSAGE_TIMEOUT_MS = 5000;

function argValue(name, fallback) {
  const i = process.argv.indexOf(name);
  return i === -1 ? fallback : process.argv[i + 1];
}

const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const round3 = (x) => Math.round(x * 1000) / 1000;

function percentile(sorted, p) {
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

function median(values) {
  const v = values.slice().sort((a, b) => a - b);
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/** { median, min, max } of per-round figures. */
function spread(values) {
  return { median: round3(median(values)), min: round3(Math.min(...values)), max: round3(Math.max(...values)) };
}

/**
 * The compiled tree of `ref` (src/ and tsconfig.json from git, compiled with this checkout's tsc)
 * in bench/results/tmp/, reused while the commit is the same. Resolves { lib, commit }.
 */
function baselineLib(ref) {
  const commit = execFileSync('git', ['rev-parse', ref], { cwd: ROOT, encoding: 'utf8' }).trim();
  const dir = path.join(RESULTS, 'tmp', `baseline-${commit.slice(0, 12)}`);
  const lib = path.join(dir, 'nodes', 'lib');
  if (!fs.existsSync(path.join(lib, 'core', 'cluster', 'cluster-bus.js'))) {
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    const archive = execFileSync('git', ['archive', commit, 'src', 'tsconfig.json'], { cwd: ROOT, maxBuffer: 1 << 28 });
    execFileSync('tar', ['-x', '-C', dir], { input: archive });
    const tsc = require.resolve('typescript/bin/tsc', { paths: [ROOT] });
    execFileSync(process.execPath, [tsc, '-p', path.join(dir, 'tsconfig.json')], { cwd: dir, stdio: 'inherit' });
  }
  return { lib, commit };
}

/** Does this compiled tree's bus know topologies (Redis Cluster, Sentinel)? */
function busKnowsTopologies(lib) {
  const source = fs.readFileSync(path.join(lib, 'core', 'cluster', 'cluster-bus.js'), 'utf8');
  return /sentinelName/.test(source);
}

/** Forks one instance; resolves a handle once its bus is ready. */
function startInstance(options) {
  const child = fork(path.join(__dirname, 'cluster-instance.js'), [JSON.stringify(options)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const pending = new Map();
  child.on('message', (msg) => {
    const waiter = pending.get(msg.reply);
    if (waiter) {
      pending.delete(msg.reply);
      waiter(msg);
    }
  });
  const ask = (cmd, extra = {}) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`instance did not answer ${cmd}`)), 10000);
      pending.set(cmd, (msg) => {
        clearTimeout(timer);
        resolve(msg);
      });
      child.send({ cmd, ...extra });
    });
  const handle = {
    stats: (p = WS_PATH) => ask('stats', { path: p }),
    reset: (p = WS_PATH) => ask('reset', { path: p }),
    sessions: (p) => ask('sessions', { path: p }).then((msg) => msg.sessions),
    deliver: (p, sessionId, data) => ask('deliver', { path: p, sessionId, data }),
    url: (tenant, p = WS_PATH) => `ws://127.0.0.1:${handle.port}${p}?token=${encodeURIComponent(tenant)}`,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        if (child.connected) child.disconnect();
        else child.kill('SIGTERM');
      }),
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error('instance did not become ready'));
    }, START_TIMEOUT_MS);
    pending.set('ready', (msg) => {
      clearTimeout(timer);
      handle.port = msg.port;
      resolve(handle);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`instance exited (${code})`));
    });
  });
}

async function startInstances(n, optionsFor) {
  const started = await Promise.allSettled(Array.from({ length: n }, (_, i) => startInstance(optionsFor(i))));
  const failed = started.find((s) => s.status === 'rejected');
  if (failed) {
    await Promise.all(started.filter((s) => s.status === 'fulfilled').map((s) => s.value.stop()));
    throw failed.reason;
  }
  return started.map((s) => s.value);
}

function open(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error('client did not connect'));
    }, 10000);
    ws.once('open', () => {
      clearTimeout(timer);
      resolve(ws);
    });
    ws.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** Sends on `sender` every 50 ms until `receiver` hears one (the receiving side may still be subscribing). */
function prime(sender, receiver, ms = 15000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error('no cross-instance delivery')), ms);
    const tick = setInterval(() => sender.send('prime'), 50);
    function onMessage() {
      finish();
    }
    function finish(err) {
      clearTimeout(timer);
      clearInterval(tick);
      receiver.off('message', onMessage);
      if (err) reject(err);
      else resolve();
    }
    receiver.on('message', onMessage);
    sender.send('prime');
  });
}

/** Sends `id` on `sender` and resolves the ms until `receiver` has it. */
function roundTrip(sender, receiver, id) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      receiver.off('message', onMessage);
      reject(new Error(`message ${id} not delivered within ${MESSAGE_TIMEOUT_MS} ms`));
    }, MESSAGE_TIMEOUT_MS);
    const t0 = process.hrtime.bigint();
    function onMessage(data) {
      if (data.toString() !== id) return;
      clearTimeout(timer);
      receiver.off('message', onMessage);
      resolve(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    receiver.on('message', onMessage);
    sender.send(id);
  });
}

/**
 * One topology and N: `rounds` rounds of `messages` tenant messages. Resolves the per-round figures
 * and their spreads.
 */
async function measureSpread({ label, n, lib, topology, url, urlFor, rounds, messages }) {
  const instances = await startInstances(n, (i) => ({
    lib,
    topology,
    url: urlFor ? urlFor(i) : url,
    path: WS_PATH,
    replyPath: REPLY_PATH,
    instanceId: `bench-${i}`,
  }));
  const sockets = [];
  try {
    const tenants = Array.from({ length: n }, (_, i) => `t${i}`);
    const receivers = [];
    const senders = [];
    for (let i = 0; i < n; i++) {
      receivers.push(await open(instances[i].url(tenants[i])));
      senders.push(await open(instances[(i + 1) % n].url(tenants[i])));
    }
    sockets.push(...receivers, ...senders);
    for (let i = 0; i < n; i++) await prime(senders[i], receivers[i]);
    await delay(200);
    // which tenants each instance holds: the one it receives and the one it sends
    const holds = (k) => new Set([tenants[k], tenants[(k - 1 + n) % n]]);
    const perRound = [];
    let seq = 0;
    for (let r = 0; r < rounds; r++) {
      await Promise.all(instances.map((inst) => inst.reset()));
      const times = [];
      for (let m = 0; m < messages; m++) {
        const i = m % n;
        times.push(await roundTrip(senders[i], receivers[i], `m${++seq}`));
      }
      // a delivery still on its way to an instance that does not need it would count too
      await delay(300);
      const stats = await Promise.all(instances.map((inst) => inst.stats()));
      let toReceiver = 0;
      let toNonHolders = 0;
      let ownEchoes = 0;
      let total = 0;
      stats.forEach((s, k) => {
        ownEchoes += s.stats.ownEchoes ?? 0;
        total += (s.stats.received ?? 0) + (s.stats.ownEchoes ?? 0) + (s.stats.malformed ?? 0);
        for (const [name, count] of Object.entries(s.byKey)) {
          const key = name.slice(name.indexOf(':') + 1);
          if (key === tenants[k]) toReceiver += count;
          else if (!holds(k).has(key)) toNonHolders += count;
        }
      });
      const sorted = times.slice().sort((a, b) => a - b);
      perRound.push({
        messages,
        toReceiver: toReceiver / messages,
        toNonHolders: toNonHolders / messages,
        ownEchoes: ownEchoes / messages,
        total: total / messages,
        p50: percentile(sorted, 50),
        p99: percentile(sorted, 99),
      });
    }
    const replies = await measureReplies({ instances, n, tenants, rounds, messages, sockets });
    const pick = (k) => spread(perRound.map((p) => p[k]));
    const result = {
      label,
      n,
      topology,
      nonHoldingInstances: n - 2,
      toReceiver: pick('toReceiver'),
      toNonHolders: pick('toNonHolders'),
      ownEchoes: pick('ownEchoes'),
      total: pick('total'),
      p50: pick('p50'),
      p99: pick('p99'),
      rounds: perRound.map((p) => ({ ...p, p50: round3(p.p50), p99: round3(p.p99) })),
      replies,
    };
    console.error(
      `  ${label} N=${n}: to receiver ${result.toReceiver.median}, to non-holders ${result.toNonHolders.median}, ` +
        `own echo ${result.ownEchoes.median}, p50 ${result.p50.median} ms, p99 ${result.p99.median} ms; ` +
        `replies: to owner ${replies.toOwner.median}, to others ${replies.toOthers.median}, ` +
        `p50 ${replies.p50.median} ms`,
    );
    return result;
  } finally {
    for (const ws of sockets) ws.terminate();
    await Promise.all(instances.map((inst) => inst.stop()));
  }
}

/**
 * Replies to a session held by another instance: session-scope clients of tenant t<i> on instance
 * i; instance i + 1 is asked to deliver to that session's id (it holds no session of the tenant),
 * as a flow does with a message that reached it over a queue. Counts the Redis deliveries to the
 * owner and to every other instance, and the latency from the request to the client's message.
 */
async function measureReplies({ instances, n, tenants, rounds, messages, sockets }) {
  const owners = [];
  for (let i = 0; i < n; i++) {
    const ws = await open(instances[i].url(tenants[i], REPLY_PATH));
    sockets.push(ws);
    const sessions = await instances[i].sessions(REPLY_PATH);
    owners.push({ ws, id: sessions.find((s) => s.tenant === tenants[i]).id });
  }
  // the owner may still be subscribing to what routes replies to it
  for (let i = 0; i < n; i++) {
    const requester = instances[(i + 1) % n];
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => finish(new Error('no reply reached its owner')), 15000);
      const tick = setInterval(() => requester.deliver(REPLY_PATH, owners[i].id, 'prime'), 50);
      const onMessage = () => finish();
      function finish(err) {
        clearTimeout(timer);
        clearInterval(tick);
        owners[i].ws.off('message', onMessage);
        if (err) reject(err);
        else resolve();
      }
      owners[i].ws.on('message', onMessage);
    });
  }
  await delay(200);
  const perRound = [];
  let seq = 0;
  for (let r = 0; r < rounds; r++) {
    await Promise.all(instances.map((inst) => inst.reset(REPLY_PATH)));
    const times = [];
    for (let m = 0; m < messages; m++) {
      const i = m % n;
      const id = `r${++seq}`;
      const owner = owners[i];
      const arrived = new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          owner.ws.off('message', onMessage);
          reject(new Error(`reply ${id} not delivered within ${MESSAGE_TIMEOUT_MS} ms`));
        }, MESSAGE_TIMEOUT_MS);
        function onMessage(data) {
          if (data.toString() !== id) return;
          clearTimeout(timer);
          owner.ws.off('message', onMessage);
          resolve();
        }
        owner.ws.on('message', onMessage);
      });
      const t0 = process.hrtime.bigint();
      await instances[(i + 1) % n].deliver(REPLY_PATH, owner.id, id);
      await arrived;
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    await delay(300);
    const stats = await Promise.all(instances.map((inst) => inst.stats(REPLY_PATH)));
    let toOwner = 0;
    let toOthers = 0;
    stats.forEach((s, k) => {
      for (const [name, count] of Object.entries(s.byKey)) {
        if (name.endsWith(owners[k].id)) toOwner += count;
        else toOthers += count;
      }
    });
    const sorted = times.slice().sort((a, b) => a - b);
    perRound.push({
      toOwner: toOwner / messages,
      toOthers: toOthers / messages,
      p50: percentile(sorted, 50),
      p99: percentile(sorted, 99),
    });
  }
  const pick = (k) => spread(perRound.map((p) => p[k]));
  return { toOwner: pick('toOwner'), toOthers: pick('toOthers'), p50: pick('p50'), p99: pick('p99') };
}

/**
 * Two instances on Sentinel; a message every `intervalMs` from instance 2 to a receiver of the
 * same tenant on instance 1; the master is killed after `killAfterMs`. Resolves the longest gap
 * between two deliveries, the time from the kill to the first delivery after it, and the losses.
 */
async function measureFailover({ lib, intervalMs = 10, killAfterMs = 1000, settleMs = 1500, maxMs = 25000 }) {
  const sentinel = await startRedisSentinel();
  let instances = [];
  const sockets = [];
  try {
    instances = await startInstances(2, (i) => ({
      lib,
      topology: 'sentinel',
      url: sentinel.url,
      sentinelName: sentinel.name,
      path: WS_PATH,
      replyPath: REPLY_PATH,
      instanceId: `bench-${i}`,
    }));
    const receiver = await open(instances[0].url('t0'));
    const sender = await open(instances[1].url('t0'));
    sockets.push(receiver, sender);
    await prime(sender, receiver);
    await delay(200);
    const arrivals = [];
    receiver.on('message', (data) => {
      const text = data.toString();
      if (text.startsWith('f')) arrivals.push({ seq: Number(text.slice(1)), at: performance.now() });
    });
    let sent = 0;
    const started = performance.now();
    const ticker = setInterval(() => sender.send(`f${++sent}`), intervalMs);
    let killedAt;
    let oldPort;
    // the first delivery after a silence of at least `quiet` ms that began after the kill
    const quiet = Math.max(100, intervalMs * 10);
    const resumedAt = () => {
      for (let i = 1; i < arrivals.length; i++) {
        if (arrivals[i].at - arrivals[i - 1].at >= quiet && arrivals[i].at > killedAt) return arrivals[i].at;
      }
      return undefined;
    };
    try {
      await delay(killAfterMs);
      oldPort = await sentinel.killMaster();
      // the helper notes when it sent SIGKILL (wall clock): the same moment on this process's clock
      killedAt = performance.now() - (Date.now() - sentinel.killedAt);
      // until deliveries have flowed again for settleMs, or maxMs in all
      for (;;) {
        await delay(50);
        const resumed = resumedAt();
        const now = performance.now();
        if (resumed !== undefined && now - resumed >= settleMs) break;
        if (now - started > maxMs) break;
      }
    } finally {
      clearInterval(ticker);
    }
    const sentTotal = sent;
    await delay(500);
    const newPort = await sentinel.masterPort();
    const ends = await Promise.all(instances.map((inst) => inst.stats()));
    const states = ends.map((st) => st.state);
    // the longest silence that spans or follows the kill
    let gap = 0;
    for (let i = 1; i < arrivals.length; i++) {
      if (arrivals[i].at < killedAt) continue;
      gap = Math.max(gap, arrivals[i].at - Math.max(arrivals[i - 1].at, 0));
    }
    const resumed = resumedAt();
    const firstAfter = resumed === undefined ? undefined : { at: resumed };
    const result = {
      intervalMs,
      sent: sentTotal,
      delivered: arrivals.length,
      lost: sentTotal - arrivals.length,
      gapMs: round3(gap),
      killToFirstDeliveryMs: firstAfter ? round3(firstAfter.at - killedAt) : null,
      masterPortChanged: newPort !== undefined && newPort !== oldPort,
      resumed: resumed !== undefined,
      busStatesAtEnd: states,
      ...(resumed === undefined
        ? { busesAtEnd: ends.map(({ state, connections, lastErrors }) => ({ state, connections, lastErrors })) }
        : {}),
    };
    console.error(
      `  sentinel failover: gap ${result.gapMs} ms, kill → first delivery ${result.killToFirstDeliveryMs} ms, ` +
        `lost ${result.lost} of ${result.sent}`,
    );
    return result;
  } finally {
    for (const ws of sockets) ws.terminate();
    await Promise.all(instances.map((inst) => inst.stop()));
    await sentinel.stop();
  }
}

/** Every measurement of one compiled tree. */
async function measureBus({ name, lib, commit, sizes, rounds, messages, failovers, redis, cluster }) {
  const topologies = busKnowsTopologies(lib);
  console.error(`${name} (${commit ? commit.slice(0, 12) : 'working tree'})`);
  const out = { name, commit, spread: [], failover: [] };
  for (const n of sizes) {
    out.spread.push(
      await measureSpread({ label: 'single', n, lib, topology: 'single', url: redis.url, rounds, messages }),
    );
  }
  for (const n of sizes) {
    out.spread.push(
      await measureSpread(
        topologies
          ? { label: 'cluster', n, lib, topology: 'cluster', url: cluster.url, rounds, messages }
          : // a bus without Redis Cluster support: each instance on one node, classic (cluster-wide) pub/sub
            { label: 'cluster', n, lib, urlFor: (i) => cluster.urls[i % cluster.urls.length], rounds, messages },
      ),
    );
  }
  if (topologies) {
    for (let f = 0; f < failovers; f++) out.failover.push(await measureFailover({ lib }));
  }
  return out;
}

function environment() {
  const cpus = os.cpus();
  let redisVersion = '';
  try {
    redisVersion = /v=([\d.]+)/.exec(execFileSync('redis-server', ['--version'], { encoding: 'utf8' }))[1];
  } catch {
    redisVersion = 'unknown';
  }
  return {
    date: new Date().toISOString().slice(0, 10),
    cpus: cpus.length,
    cpuModel: cpus[0] ? cpus[0].model.trim() : '',
    node: process.version,
    redis: redisVersion,
    ioredis: require(path.join(ROOT, 'node_modules', 'ioredis', 'package.json')).version,
    loadavg: os.loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

const f2 = (x) => (Number.isInteger(x) ? String(x) : x.toFixed(2));
const cell = (s, digits = 2) =>
  s.min === s.max
    ? s.median.toFixed(digits)
    : `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`;

/** The Markdown block for docs/benchmarks.md and bench/results/cluster-latest.md. */
function markdown(result) {
  const env = result.environment;
  const lines = [];
  lines.push(
    'Reproduce with `npm run bench:cluster` (add `-- --baseline <git ref>` to measure another commit as well).',
  );
  lines.push('');
  lines.push(
    `Measured ${env.date} on ${env.cpus} CPUs (${env.cpuModel}); Node ${env.node}, Redis ${env.redis}, ioredis ` +
      `${env.ioredis}; every process on 127.0.0.1 (load average at start ${env.loadavg.join(', ')}). ` +
      `${result.rounds} rounds of ${result.messages} tenant messages per row (one in flight); cells show the median ` +
      `and, in brackets, the min–max over the rounds. Total run ${result.durationS} s.`,
  );
  lines.push('');
  lines.push(
    'Tenant t<i> has its receiving client on instance i and its sending client on instance i + 1: each tenant is ' +
      'held by those two instances, and N − 2 instances hold none of its sessions. Deliveries are what Redis hands ' +
      'each instance per tenant message, counted inside the instances.',
  );
  if (result.buses.some((bus) => bus.spread.some((row) => row.label === 'cluster' && !row.topology))) {
    lines.push('');
    lines.push(
      'A bus without Redis Cluster support ran on the 3-master Cluster with each instance connected to one node ' +
        '(round robin) and classic `PUBLISH`/`SUBSCRIBE`, which Redis Cluster copies to every node.',
    );
  }
  lines.push('');
  lines.push(
    '| bus | Redis | N | to the receiving instance | to the N − 2 instances without the tenant | back to the sender (own echo) | all Redis deliveries | latency p50 ms | latency p99 ms |',
  );
  lines.push('|---|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const bus of result.buses) {
    const label = bus.commit ? `${bus.name} (${bus.commit.slice(0, 7)})` : bus.name;
    for (const row of bus.spread) {
      const redis = row.label === 'single' ? 'single node' : '3-master Cluster';
      lines.push(
        `| ${label} | ${redis} | ${row.n} | ${cell(row.toReceiver)} | ${cell(row.toNonHolders)} | ` +
          `${cell(row.ownEchoes)} | ${cell(row.total)} | ${cell(row.p50)} | ${cell(row.p99)} |`,
      );
    }
  }
  lines.push('');
  lines.push(
    'Replies to a session on another instance: a session-scope client of tenant t<i> on instance i, and ' +
      'instance i + 1 (which holds no session of t<i>) replies to that session by its id, as a flow does with a ' +
      "message that reached it over a queue. Deliveries per reply; latency from the reply to the client's message.",
  );
  lines.push('');
  lines.push('| bus | Redis | N | to the owning instance | to the other instances | latency p50 ms | latency p99 ms |');
  lines.push('|---|---|---:|---:|---:|---:|---:|');
  for (const bus of result.buses) {
    const label = bus.commit ? `${bus.name} (${bus.commit.slice(0, 7)})` : bus.name;
    for (const row of bus.spread) {
      const redis = row.label === 'single' ? 'single node' : '3-master Cluster';
      const r = row.replies;
      lines.push(
        `| ${label} | ${redis} | ${row.n} | ${cell(r.toOwner)} | ${cell(r.toOthers)} | ${cell(r.p50)} | ${cell(r.p99)} |`,
      );
    }
  }
  lines.push('');
  for (const bus of result.buses) {
    const label = bus.commit ? `${bus.name} (${bus.commit.slice(0, 7)})` : bus.name;
    if (bus.failover.length === 0) {
      lines.push(`- Sentinel failover, ${label}: not measured (this bus has no Sentinel support).`);
      continue;
    }
    if (bus.failover.some((f) => !f.resumed)) {
      lines.push(`- Sentinel failover, ${label}: deliveries between instances did NOT resume within the run.`);
      continue;
    }
    const gaps = bus.failover.map((f) => f.gapMs);
    const kill = bus.failover.map((f) => f.killToFirstDeliveryMs).filter((x) => x !== null);
    const lost = bus.failover.map((f) => f.lost);
    const sent = bus.failover.map((f) => f.sent);
    const fo = bus.failover[0];
    lines.push(
      `- Sentinel failover, ${label} (master, replica, 3 sentinels, down-after 1 s; 2 instances, one message every ` +
        `${fo.intervalMs} ms, master killed with SIGKILL after 1 s; ${bus.failover.length} run(s)): longest gap between ` +
        `deliveries ${gaps.map((g) => f2(Math.round(g))).join(', ')} ms; kill → first delivery through the new master ` +
        `${kill.map((k) => f2(Math.round(k))).join(', ')} ms; lost ${lost.join(', ')} of ${sent.join(', ')} messages ` +
        '(sent while no master was reachable: delivered locally only, never replayed).',
    );
  }
  return lines.join('\n');
}

/** Replaces the text between `<!-- <name>:start -->` and `<!-- <name>:end -->` in `file`. */
function replaceBlock(file, name, body) {
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  const text = fs.readFileSync(file, 'utf8');
  const a = text.indexOf(start);
  const b = text.indexOf(end);
  if (a === -1 || b === -1 || b < a) throw new Error(`${path.relative(ROOT, file)}: no ${name} block`);
  fs.writeFileSync(file, `${text.slice(0, a + start.length)}\n${body}\n${text.slice(b)}`);
}

/** The README's short form: deliveries and latency of the largest N, the failover gap. */
function readmeLines(result) {
  const current = result.buses[result.buses.length - 1];
  const baseline = result.buses.length > 1 ? result.buses[0] : undefined;
  const nMax = Math.max(...current.spread.map((r) => r.n));
  const row = (bus, label) => bus.spread.find((r) => r.label === label && r.n === nMax);
  const lines = [];
  lines.push(
    `Measured by \`npm run bench:cluster\` (${result.environment.date}, ${nMax} instances on 127.0.0.1, ` +
      'each tenant held by 2 of them; [docs/benchmarks.md](docs/benchmarks.md#cluster) has every row):',
  );
  lines.push('');
  lines.push(
    '| Redis | deliveries per tenant message to instances without the tenant | per reply to instances ' +
      'other than the owner | latency p50 / p99 |',
  );
  lines.push('|---|---:|---:|---:|');
  for (const label of ['single', 'cluster']) {
    const now = row(current, label);
    if (!now) continue;
    const before = baseline && row(baseline, label);
    const redis = label === 'single' ? 'single node' : '3-master Redis Cluster';
    const was = (x, y) => (before ? `${f2(x)} (before: ${f2(y)})` : f2(x));
    const deliveries = was(now.toNonHolders.median, before && before.toNonHolders.median);
    const replies = was(now.replies.toOthers.median, before && before.replies.toOthers.median);
    lines.push(
      `| ${redis} | ${deliveries} | ${replies} | ${now.p50.median.toFixed(2)} / ${now.p99.median.toFixed(2)} ms |`,
    );
  }
  if (current.failover.length) {
    const resumed = current.failover.filter((f) => f.resumed);
    const gaps = resumed.map((f) => Math.round(f.gapMs));
    const stuck = current.failover.length - resumed.length;
    lines.push('');
    lines.push(
      `Sentinel failover (master killed mid-run, \`down-after-milliseconds\` 1000): deliveries between instances ` +
        (gaps.length ? `stopped for ${gaps.join(', ')} ms and then resumed through the new master` : 'never resumed') +
        (stuck && gaps.length
          ? `; in ${stuck} of ${current.failover.length} runs they did not resume within the run`
          : '') +
        '.',
    );
  }
  return lines.join('\n');
}

/** --report-only: the Markdown of bench/results/cluster-latest.json again, into the docs (no measuring). */
function reportOnly() {
  const result = JSON.parse(fs.readFileSync(path.join(RESULTS, 'cluster-latest.json'), 'utf8'));
  const md = markdown(result);
  fs.writeFileSync(path.join(RESULTS, 'cluster-latest.md'), `${md}\n`);
  replaceBlock(path.join(ROOT, 'docs', 'benchmarks.md'), 'bench-cluster', md);
  replaceBlock(path.join(ROOT, 'README.md'), 'bench-cluster', readmeLines(result));
  console.log(md);
}

async function main() {
  if (process.argv.includes('--report-only')) return reportOnly();
  const started = Date.now();
  const rounds = Number(argValue('--rounds', 3));
  const messages = Number(argValue('--messages', 240));
  const failovers = Number(argValue('--failovers', 2));
  const sizes = process.argv.includes('--quick') ? [2, 4] : [2, 4, 8];
  const baselineRef = argValue('--baseline', undefined);
  const environmentInfo = environment();
  const redis = await startRedis();
  let cluster;
  const buses = [];
  try {
    cluster = await startRedisCluster({ masters: 3 });
    if (baselineRef) {
      const { lib, commit } = baselineLib(baselineRef);
      buses.push(await measureBus({ name: 'before', lib, commit, sizes, rounds, messages, failovers, redis, cluster }));
    }
    let commit;
    try {
      commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    } catch {
      commit = undefined;
    }
    const lib = path.join(ROOT, 'nodes', 'lib');
    buses.push(
      await measureBus({ name: 'this build', lib, commit, sizes, rounds, messages, failovers, redis, cluster }),
    );
  } finally {
    if (cluster) await cluster.stop();
    await redis.close();
  }
  const result = {
    environment: environmentInfo,
    rounds,
    messages,
    durationS: Math.round((Date.now() - started) / 1000),
    buses,
  };
  fs.mkdirSync(RESULTS, { recursive: true });
  fs.writeFileSync(path.join(RESULTS, 'cluster-latest.json'), `${JSON.stringify(result, null, 2)}\n`);
  const md = markdown(result);
  fs.writeFileSync(path.join(RESULTS, 'cluster-latest.md'), `${md}\n`);
  if (!process.argv.includes('--no-docs')) {
    replaceBlock(path.join(ROOT, 'docs', 'benchmarks.md'), 'bench-cluster', md);
    replaceBlock(path.join(ROOT, 'README.md'), 'bench-cluster', readmeLines(result));
  }
  console.log(md);
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}

module.exports = { markdown, readmeLines, measureFailover, measureSpread };
