#!/usr/bin/env node
'use strict';
/**
 * `npm run bench`: runs every contender one after another against the same load generator and
 * writes bench/results/latest.json and latest.md (then updates the block in docs/benchmarks.md).
 *
 * Each contender is its own server process (started with --expose-gc) and the load generator is
 * another process; everything listens on 127.0.0.1 with ephemeral ports. The main figure is the
 * server's own CPU time (process.cpuUsage(), read over IPC at the start and end of each window)
 * divided by the work done in the window; rates are shown beside it. Every figure is measured in
 * each of BENCH_REPEATS (default 3) rounds; a round starts a fresh server process per contender.
 *
 * Environment: BENCH_REPEATS (3; 5 on a noisy shared machine), BENCH_SCALE (1: multiplies the
 * counts), BENCH_ONLY (comma list of contender ids), BENCH_FIGURES (comma list: rss, broadcast,
 * handshake, echo, latency, tenant, jwksStorm), BENCH_NODE_RED (node-red | node-red-5),
 * BENCH_PROFILE (contender id: its server runs with --cpu-prof, profiles in
 * bench/results/tmp/prof), BENCH_NO_README (1: skip), BENCH_PIN (0: do not pin the server and the
 * load generator to CPUs).
 * Experiments (the run then writes only bench/results/tmp/partial.*): BENCH_PKG_DIR (benchmark a
 * prepared package folder), BENCH_PLUS_PROPS / BENCH_LISTENER_OPTIONS (JSON overrides of the plus
 * listener's flow properties / the bare listener's options), BENCH_WS_MODULE (another ws for the raw
 * contenders), BENCH_HEAP_SNAPSHOTS=1 (heap snapshots with N and 2N idle connections),
 * BENCH_NODE_FLAGS (more node/V8 flags for every server), BENCH_KEEP_RUN=1 (keep the servers' logs of
 * an interleaved run). With BENCH_INTERLEAVE: BENCH_CALLGRIND=1 (instructions per message under
 * valgrind's callgrind instead of CPU time; BENCH_CALLGRIND_BATCHED=1 the usual echo load instead of
 * one message at a time, BENCH_CALLGRIND_CACHE=1 cache and branch simulation too).
 */
const fs = require('fs');
const os = require('os');
const path = require('path');
const http = require('http');
const { execFileSync, execSync } = require('child_process');
const { randomBytes } = require('crypto');
const { Child } = require('./lib/ipc');
const stats = require('./lib/stats');
const { renderMarkdown, renderInstructionCounts } = require('./lib/report');

const ROOT = path.resolve(__dirname, '..');
const RESULTS = path.join(__dirname, 'results');
const TMP = path.join(RESULTS, 'tmp');
const REPEATS = Math.max(1, Number(process.env.BENCH_REPEATS || 3));
const SCALE = Number(process.env.BENCH_SCALE || 1);
const NODE_RED = process.env.BENCH_NODE_RED || 'node-red';
const ISSUER = 'https://issuer.bench.invalid/';
const AUDIENCE = 'websocket-plus-bench';
/**
 * The server on CPU 1 and the load generator on CPU 0 (taskset, 2+ CPUs), so the two never share
 * a CPU and are never migrated: on a 2-core machine this cuts the round-to-round spread of the
 * CPU-per-unit figures from about ±25 % to a few %. BENCH_PIN=0 leaves scheduling to the OS.
 */
/**
 * BENCH_CALLGRIND=1 (with BENCH_INTERLEAVE): every server runs under valgrind's callgrind with
 * instrumentation off, switched on for each window only; the figure is then the instructions the
 * server executed per message (user space only: the kernel's share of a socket write is not
 * counted). Instruction counts do not depend on what else the machine is doing, so a change of
 * 1 % shows in one pass, where CPU time needs dozens.
 */
const CALLGRIND = process.env.BENCH_CALLGRIND === '1';
const CALLGRIND_DIR = path.join(TMP, 'callgrind');
/** BENCH_CALLGRIND_BATCHED=1: count the usual echo window (50 connections, 10 messages in flight each). */
const BATCHED = process.env.BENCH_CALLGRIND_BATCHED === '1';
const PIN = process.env.BENCH_PIN !== '0' && os.cpus().length >= 2 && hasTaskset();

function hasTaskset() {
  try {
    execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const sc = (n, min = 1) => Math.max(min, Math.round(n * SCALE));
const COUNTS = {
  handshakes: sc(2000, 50),
  handshakeConcurrency: 50,
  echoConnections: 50,
  echoInFlight: 10,
  messageBytes: 64,
  echoMessages: sc(20000, 1000),
  latencyRate: 2000,
  latencyMs: sc(2000, 500),
  broadcastClients: sc(2000, 50),
  broadcasts: sc(30, 5),
  broadcastWindow: 4,
  tenantConnections: 10,
  tenantTotalSmall: 100,
  tenantTotalLarge: sc(10000, 200),
  tenantBroadcasts: sc(600, 50),
  jwksStormHandshakes: sc(200, 20),
  warmupHandshakes: 200,
  warmupMessages: 3000,
};

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const log = (...args) => console.log(`[bench ${new Date().toISOString().slice(11, 19)}]`, ...args);

// ---------------------------------------------------------------------------------------------
// Contenders
// ---------------------------------------------------------------------------------------------
const ALL_FIGURES = ['rss', 'broadcast', 'handshake', 'echo', 'latency'];
const WS_VERSION = require(require.resolve('ws/package.json', { paths: [ROOT] })).version;
/** The ws copy Node-RED core uses (Node-RED 4 bundles ws 7), when it is a different copy. */
const WS7 = (() => {
  try {
    const nodesDir = path.dirname(
      require.resolve('@node-red/nodes/package.json', {
        paths: [
          path.dirname(require.resolve(`${process.env.BENCH_NODE_RED || 'node-red'}/package.json`, { paths: [ROOT] })),
        ],
      }),
    );
    const dir = path.dirname(require.resolve('ws/package.json', { paths: [nodesDir] }));
    const version = require(path.join(dir, 'package.json')).version;
    return dir === path.dirname(require.resolve('ws/package.json', { paths: [ROOT] })) ? undefined : { dir, version };
  } catch {
    return undefined;
  }
})();
const CONTENDERS = [
  {
    id: 'raw',
    label: `raw ws ${WS_VERSION} (echo server)`,
    kind: 'raw',
    auth: 'none',
    token: 'none',
    figures: ALL_FIGURES,
  },
  {
    id: 'raw-jwt',
    label: 'raw ws + jose HS256 verifyClient',
    kind: 'raw',
    auth: 'hs256',
    token: 'hs',
    figures: ALL_FIGURES,
  },
  // The ws copy Node-RED core bundles (7.5): shows what the ws major version alone costs per frame.
  {
    id: 'raw-ws7',
    label: `raw ws ${WS7 ? WS7.version : '7'} (the copy Node-RED core bundles)`,
    kind: 'raw',
    auth: 'none',
    token: 'none',
    wsModule: WS7 && WS7.dir,
    figures: ['echo', 'broadcast'],
  },
  { id: 'core', label: 'Node-RED core websocket in/out', kind: 'node-red', token: 'none', figures: ALL_FIGURES },
  {
    id: 'plus-none',
    label: 'websocket-plus, auth none',
    kind: 'node-red',
    plus: true,
    authMode: 'none',
    token: 'none',
    figures: ALL_FIGURES,
  },
  {
    id: 'plus-hs256',
    label: 'websocket-plus, HS256',
    kind: 'node-red',
    plus: true,
    authMode: 'hs256',
    token: 'hs',
    figures: [...ALL_FIGURES, 'tenant'],
  },
  // After the handshake every mode runs the same code, so the JWKS modes skip echo, latency and
  // broadcast (measured for none and HS256) and keep what the key type changes: handshakes, RSS.
  {
    id: 'plus-rs256',
    label: 'websocket-plus, JWKS RS256',
    kind: 'node-red',
    plus: true,
    authMode: 'jwks',
    jwks: 'rsa',
    token: 'rs',
    figures: ['rss', 'handshake', 'jwksStorm'],
  },
  {
    id: 'plus-es256',
    label: 'websocket-plus, JWKS ES256',
    kind: 'node-red',
    plus: true,
    authMode: 'jwks',
    jwks: 'ec',
    token: 'es',
    figures: ['rss', 'handshake', 'jwksStorm'],
  },
  {
    id: 'listener',
    label: 'websocket-plus core listener alone (HS256, no Node-RED)',
    kind: 'listener',
    plus: true,
    token: 'hs',
    figures: ['handshake', 'echo', 'tenant'],
  },
];

// ---------------------------------------------------------------------------------------------
// Keys and the JWKS server (served by the bench itself; it counts every fetch)
// ---------------------------------------------------------------------------------------------
async function makeKeys(jose) {
  const hsSecret = randomBytes(32).toString('base64url');
  const rsa = await jose.generateKeyPair('RS256', { extractable: true, modulusLength: 2048 });
  const ec = await jose.generateKeyPair('ES256', { extractable: true });
  const pub = async (kp, kid, alg) => ({ ...(await jose.exportJWK(kp.publicKey)), kid, alg, use: 'sig' });
  return {
    hsSecret,
    jwks: {
      rsa: { keys: [await pub(rsa, 'bench-rsa-1', 'RS256')] },
      ec: { keys: [await pub(ec, 'bench-ec-1', 'ES256')] },
    },
    loadgen: {
      hs: { secret: hsSecret, alg: 'HS256' },
      rs: { jwk: await jose.exportJWK(rsa.privateKey), alg: 'RS256', kid: 'bench-rsa-1' },
      es: { jwk: await jose.exportJWK(ec.privateKey), alg: 'ES256', kid: 'bench-ec-1' },
    },
  };
}

/**
 * Serves the public key sets at /rsa/jwks.json and /ec/jwks.json. Each listener is given its own
 * `?listener=<id>` query so fetches are counted per key set and per listener (each listener
 * keeps its own key cache).
 */
function startJwksServer(sets) {
  const fetches = { rsa: 0, ec: 0 };
  const byListener = {};
  const server = http.createServer((req, res) => {
    const m = /^\/(rsa|ec)\/jwks\.json(?:\?listener=([\w-]+))?$/.exec(req.url);
    if (!m) {
      res.writeHead(404);
      res.end();
      return;
    }
    fetches[m[1]]++;
    const key = `${m[1]}:${m[2] || '-'}`;
    byListener[key] = (byListener[key] || 0) + 1;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(sets[m[1]]));
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        server,
        fetches,
        byListener,
        url: (set, listener) =>
          `http://127.0.0.1:${server.address().port}/${set}/jwks.json${listener ? `?listener=${listener}` : ''}`,
      }),
    ),
  );
}

// ---------------------------------------------------------------------------------------------
// Flows
// ---------------------------------------------------------------------------------------------
function coreFlow() {
  return [
    { id: 'tab', type: 'tab', label: 'bench' },
    { id: 'lEcho', type: 'websocket-listener', path: '/echo', wholemsg: 'false' },
    { id: 'lBcast', type: 'websocket-listener', path: '/bcast', wholemsg: 'false' },
    {
      id: 'inEcho',
      type: 'websocket in',
      z: 'tab',
      name: '',
      server: 'lEcho',
      client: '',
      x: 100,
      y: 40,
      wires: [['outEcho']],
    },
    { id: 'outEcho', type: 'websocket out', z: 'tab', name: '', server: 'lEcho', client: '', x: 300, y: 40, wires: [] },
    // Core broadcasts only a message without _session: a change node deletes it.
    {
      id: 'inBcast',
      type: 'websocket in',
      z: 'tab',
      name: '',
      server: 'lBcast',
      client: '',
      x: 100,
      y: 100,
      wires: [['dropSession']],
    },
    {
      id: 'dropSession',
      type: 'change',
      z: 'tab',
      name: '',
      rules: [{ t: 'delete', p: '_session', pt: 'msg' }],
      action: '',
      property: '',
      from: '',
      to: '',
      reg: false,
      x: 200,
      y: 100,
      wires: [['outBcast']],
    },
    {
      id: 'outBcast',
      type: 'websocket out',
      z: 'tab',
      name: '',
      server: 'lBcast',
      client: '',
      x: 300,
      y: 100,
      wires: [],
    },
  ];
}

function plusFlow(c, ctx) {
  const listener = (id, p, scope) => ({
    id,
    type: 'websocket-plus-listener',
    path: p,
    wholemsg: 'false',
    authMode: c.authMode,
    jwksUri: c.jwks ? ctx.jwks.url(c.jwks, id) : '',
    issuer: c.authMode === 'none' ? '' : ISSUER,
    audience: c.authMode === 'none' ? '' : AUDIENCE,
    tenantFrom: 'claim',
    tenantClaim: 'tenant_id',
    tenantId: '',
    scope,
    sessionTimeout: '',
    onExpiry: 'disconnect',
    rateLimit: '',
    maxConnections: '',
    // Experiments only: override listener properties (JSON), e.g. {"heartbeat":"0"}.
    ...JSON.parse(process.env.BENCH_PLUS_PROPS || '{}'),
  });
  const pair = (name, listenerId, y) => [
    {
      id: `in${name}`,
      type: 'websocket-plus in',
      z: 'tab',
      name: '',
      server: listenerId,
      client: '',
      x: 100,
      y,
      wires: [[`out${name}`]],
    },
    {
      id: `out${name}`,
      type: 'websocket-plus out',
      z: 'tab',
      name: '',
      server: listenerId,
      client: '',
      x: 300,
      y,
      wires: [],
    },
  ];
  const flow = [
    { id: 'tab', type: 'tab', label: 'bench' },
    listener('lEcho', '/echo', 'session'),
    listener('lBcast', '/bcast', 'global'),
    ...pair('Echo', 'lEcho', 40),
    ...pair('Bcast', 'lBcast', 100),
  ];
  if (c.figures.includes('tenant'))
    flow.push(listener('lTenant', '/tenant', 'tenant'), ...pair('Tenant', 'lTenant', 160));
  const creds = {};
  if (c.authMode === 'hs256')
    for (const n of flow) if (n.type === 'websocket-plus-listener') creds[n.id] = { secret: ctx.keys.hsSecret };
  return { flow, creds };
}

// ---------------------------------------------------------------------------------------------
// Servers
// ---------------------------------------------------------------------------------------------
async function startServer(c, rep, ctx) {
  const logFile = path.join(ctx.runDir, `${c.id}-r${rep}.log`);
  // A fixed young generation (16 MB semi-spaces, V8's usual maximum on 64-bit) for every server:
  // otherwise the semi-spaces grow with the allocation rate and that growth lands in the RSS
  // figure of whichever contender had not yet grown them.
  const execArgv = ['--expose-gc', '--min-semi-space-size=16', '--max-semi-space-size=16'];
  // BENCH_NODE_FLAGS: more node/V8 flags for every server (e.g. --single-threaded).
  execArgv.push(...(process.env.BENCH_NODE_FLAGS || '').split(/\s+/).filter(Boolean));
  let profileWindows = '';
  if ((process.env.BENCH_PROFILE || '').split(',').includes(c.id)) {
    fs.mkdirSync(path.join(TMP, 'prof'), { recursive: true });
    const name = `${c.id}-r${rep}-${Date.now()}`;
    execArgv.push('--cpu-prof', `--cpu-prof-dir=${path.join(TMP, 'prof')}`, `--cpu-prof-name=${name}.cpuprofile`);
    profileWindows = path.join(TMP, 'prof', `${name}.windows.jsonl`);
  }
  let child;
  let userDir;
  const under = {};
  if (CALLGRIND) {
    fs.mkdirSync(CALLGRIND_DIR, { recursive: true });
    under.wrapper = [
      'valgrind',
      '--tool=callgrind',
      '--instr-atstart=no',
      // One dump per thread: the main thread's is the figure (V8's background compiler and GC helper
      // threads run when they are scheduled, so their share of a window varies from pass to pass).
      '--separate-threads=yes',
      ...(process.env.BENCH_CALLGRIND_CACHE === '1' ? ['--cache-sim=yes', '--branch-sim=yes'] : []),
      `--callgrind-out-file=${path.join(CALLGRIND_DIR, `${c.id}.%p`)}`,
    ];
    under.readyTimeoutMs = 600000;
    // V8 compiles and collects on the main thread, when its counters say so, not when a helper thread
    // gets scheduled: the same messages then run the same code.
    execArgv.push('--single-threaded', '--hash-seed=1', '--random-seed=1', '--perf-basic-prof');
    execArgv.push('--no-logfile-per-isolate', '--logfile=/dev/null');
  }
  if (c.kind === 'raw') {
    child = new Child(path.join(__dirname, 'servers', 'raw-ws.js'), {
      name: c.id,
      execArgv,
      logFile,
      cpu: PIN ? 1 : undefined,
      ...under,
      env: {
        BENCH_PROFILE_WINDOWS: profileWindows,
        BENCH_AUTH: c.auth,
        BENCH_HS_SECRET: ctx.keys.hsSecret,
        BENCH_WS_MODULE: c.wsModule || process.env.BENCH_WS_MODULE || '',
      },
    });
  } else if (c.kind === 'listener') {
    child = new Child(path.join(__dirname, 'servers', 'listener.js'), {
      name: c.id,
      execArgv,
      logFile,
      cpu: PIN ? 1 : undefined,
      ...under,
      env: {
        BENCH_PROFILE_WINDOWS: profileWindows,
        BENCH_AUTH: 'hs256',
        BENCH_HS_SECRET: ctx.keys.hsSecret,
        BENCH_NODES_DIR: c.pkgDir || ctx.pkgDir,
        BENCH_LISTENER_OPTIONS: process.env.BENCH_LISTENER_OPTIONS || '{}',
      },
    });
  } else {
    userDir = fs.mkdtempSync(path.join(ctx.runDir, `userdir-${c.id}-`));
    const { flow, creds } = c.plus ? plusFlow(c, ctx) : { flow: coreFlow(), creds: {} };
    fs.writeFileSync(path.join(userDir, 'flows.json'), JSON.stringify(flow, null, 2));
    fs.writeFileSync(path.join(userDir, 'flows_cred.json'), JSON.stringify(creds, null, 2));
    child = new Child(path.join(__dirname, 'servers', 'node-red.js'), {
      name: c.id,
      execArgv,
      logFile,
      cpu: PIN ? 1 : undefined,
      ...under,
      env: {
        BENCH_PROFILE_WINDOWS: profileWindows,
        BENCH_USERDIR: userDir,
        BENCH_NODE_RED: NODE_RED,
        BENCH_NODES_DIR: c.plus ? c.pkgDir || ctx.pkgDir : '',
        BENCH_REQUIRE_TYPES: [...new Set(flow.filter((n) => n.type !== 'tab').map((n) => n.type))].join(','),
      },
    });
  }
  const startedAt = Date.now();
  const ready = await child.ready;
  if (ready.version) ctx.nodeRedVersion = ready.version;
  return {
    child,
    loadgen: ctx.loadgen,
    port: ready.port,
    ready,
    startedAt,
    url: (p) => `ws://127.0.0.1:${ready.port}${p}`,
    async stop() {
      await child.stop();
      if (userDir) fs.rmSync(userDir, { recursive: true, force: true });
    },
  };
}

/** Waits until a connection (with a valid token) opens on `p`; Node-RED starts listeners async. */
async function waitListening(lg, server, p, kind) {
  const deadline = Date.now() + 20000;
  let last;
  while (Date.now() < deadline) {
    last = await lg.call('openPool', { name: 'probe', url: server.url(p), count: 1, kind });
    await lg.call('closePool', { name: 'probe' });
    if (last.opened === 1) return;
    await sleep(200);
  }
  throw new Error(
    `${p} never accepted a connection: ${JSON.stringify(last && last.reasons)}\n${server.child.logTail()}`,
  );
}

/** The growth between two memory marks per connection, in KB, split by kind. */
function perConnection(a, b, n) {
  const kb = (x) => (Number.isFinite(x) ? +(x / 1024 / n).toFixed(3) : undefined);
  const d = (k) => b[k] - a[k];
  return {
    rss: kb(d('rss')),
    heapUsed: kb(d('heapUsed')),
    heapCommitted: kb(d('heapTotal')),
    external: kb(d('external')),
    arrayBuffers: kb(d('arrayBuffers')),
    outsideV8: kb(d('rss') - d('heapTotal') - d('external')),
  };
}

/** Machine-wide busy and total CPU time (all CPUs) from /proc/stat, in µs. */
function machineCpu() {
  try {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const tick = 1e6 / 100;
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0) * tick;
    const idle = (f[3] + f[4]) * tick;
    return { busy: total - idle, total };
  } catch {
    return undefined;
  }
}

/** One measurement window: server CPU time around `fn`. Pooled runs that saw a server ping
 *  (the plus listener's 30 s heartbeat) are measured again, up to twice. */
async function measured(server, fn, { retryOnPing = true, name } = {}) {
  let result;
  for (let attempt = 1; attempt <= 3; attempt++) {
    const m0 = await server.child.call('mark', { gcFirst: true, window: name && { name, phase: 'start' } });
    const l0 = await server.loadgen.call('mark', {});
    const c0 = machineCpu();
    const r = await fn();
    const c1 = machineCpu();
    const m1 = await server.child.call('mark', { window: name && { name, phase: 'end' } });
    const l1 = await server.loadgen.call('mark', {});
    result = {
      ...r,
      cpuUs: m1.cpuUs - m0.cpuUs,
      userUs: m1.user - m0.user,
      systemUs: m1.system - m0.system,
      syscr: m1.syscr - m0.syscr,
      syscw: m1.syscw - m0.syscw,
      helperUs: (m1.helperTicks - m0.helperTicks) * 10000,
      loadgenCpuUs: l1.cpuUs - l0.cpuUs,
      attempts: attempt,
    };
    if (c0 && c1 && c1.total > c0.total) {
      // Share of the whole machine used by processes other than this server and the load generator.
      result.otherCpuShare = Math.max(
        0,
        (c1.busy - c0.busy - result.cpuUs - result.loadgenCpuUs) / (c1.total - c0.total),
      );
      result.serverCpuShare = result.cpuUs / (c1.total - c0.total);
    }
    if (!retryOnPing || !r.pings) break;
  }
  return result;
}

/** callgrind_control on a server process (BENCH_CALLGRIND). */
function callgrindControl(pid, ...args) {
  execFileSync('callgrind_control', [...args, String(pid)], { stdio: 'ignore', timeout: 60000 });
}

/**
 * BENCH_CALLGRIND: what `fn` makes the server execute, counted by callgrind (switched on for the
 * window only) and read from the dump written at its end: { ...fn's result, instructions }.
 */
async function counted(server, fn) {
  // No forced GC before the window: a full collection discards optimized code whose objects died,
  // and the window would then count the recompilation.
  const pid = server.child.proc.pid;
  const m0 = await server.child.call('mark', {});
  const before = new Set(fs.readdirSync(CALLGRIND_DIR));
  callgrindControl(pid, '-i', 'on');
  const r = await fn();
  callgrindControl(pid, '-i', 'off');
  callgrindControl(pid, '-d');
  const dumps = fs.readdirSync(CALLGRIND_DIR).filter((f) => !before.has(f) && f.includes(`.${pid}.`));
  const events = (f) => {
    const text = fs.readFileSync(path.join(CALLGRIND_DIR, f), 'utf8');
    const names = /^events:\s+(.+)$/m.exec(text)?.[1].split(/\s+/) ?? [];
    const values = /^totals:\s+(.+)$/m.exec(text)?.[1].split(/\s+/).map(Number) ?? [];
    return Object.fromEntries(names.map((n, i) => [n, values[i] ?? 0]));
  };
  const read = (f) => events(f).Ir ?? NaN;
  const main = dumps.find((f) => f.endsWith('-01'));
  if (!main) throw new Error(`no callgrind dump for ${server.child.name} (pid ${pid})`);
  const all = dumps.reduce((sum, f) => sum + read(f), 0);
  const m1 = await server.child.call('mark', {});
  return {
    ...r,
    events: events(main),
    instructions: read(main),
    allThreads: all,
    syscr: m1.syscr - m0.syscr,
    dump: path.join(CALLGRIND_DIR, main),
  };
}

/** JWKS fetches so far of key set `set`, by listener id. */
function listenerFetches(ctx, set) {
  const out = {};
  for (const [k, v] of Object.entries(ctx.jwks.byListener))
    if (k.startsWith(`${set}:`)) out[k.slice(set.length + 1)] = v;
  return out;
}

function tenantsFor(total, perTenant, offset = 0) {
  return Array.from({ length: total }, (_, i) => `t${Math.floor((offset + i) / perTenant)}`);
}

// ---------------------------------------------------------------------------------------------
// One contender, one round
// ---------------------------------------------------------------------------------------------
async function runContender(c, rep, ctx) {
  const lg = await ctx.startLoadgen(`${c.id}-r${rep}`);
  ctx.loadgen = lg;
  let server;
  try {
    server = await startServer(c, rep, ctx);
  } catch (err) {
    await lg.stop();
    throw err;
  }
  const fig = {};
  const warn = (text) => {
    fig.warnings = fig.warnings || [];
    fig.warnings.push(text);
    log(`  ! ${c.id}: ${text}`);
  };
  const perListenerBefore = c.jwks ? listenerFetches(ctx, c.jwks) : {};
  let stormDelta;
  let handshakesOk = 0;
  try {
    const mainFigures = c.figures.some((f) => ALL_FIGURES.includes(f));
    if (mainFigures) {
      await waitListening(lg, server, '/echo', c.token);
      // Warm-up: JIT and lazy initialisation happen outside every window.
      await lg.call('sign', { kind: c.token, count: COUNTS.warmupHandshakes });
      const w = await lg.call('handshakes', { url: server.url('/echo'), concurrency: COUNTS.handshakeConcurrency });
      handshakesOk += w.ok;
      if (w.failed) throw new Error(`warm-up handshakes failed: ${JSON.stringify(w.reasons)}`);
      await lg.call('openPool', { name: 'warm', url: server.url('/echo'), count: 10, kind: c.token });
      await lg.call('echoRun', { pool: 'warm', inflight: 10, size: COUNTS.messageBytes, total: COUNTS.warmupMessages });
      await lg.call('closePool', { name: 'warm' });
    }

    if (c.figures.includes('rss') || c.figures.includes('broadcast')) {
      // RSS per idle connection, forced GC before every reading. A fresh process has free heap and
      // malloc space left from start-up (Node-RED much more than a bare ws server) that absorbs the
      // first connections without any RSS growth, so the figure is the slope over a second batch:
      // (RSS with 2N idle connections - RSS with N) / N. The first batch then serves the broadcast.
      const n = COUNTS.broadcastClients;
      const m0 = await server.child.call('mark', { memory: true });
      const pool = await lg.call('openPool', {
        name: 'idle',
        url: server.url('/bcast'),
        count: n,
        concurrency: 50,
        kind: c.token,
      });
      handshakesOk += pool.opened;
      if (pool.failed) warn(`idle pool: ${pool.failed} connections failed ${JSON.stringify(pool.reasons)}`);
      await sleep(300);
      const m1 = await server.child.call('mark', { memory: true });
      if (c.figures.includes('rss')) {
        const second = await lg.call('openPool', {
          name: 'idle2',
          url: server.url('/bcast'),
          count: n,
          concurrency: 50,
          kind: c.token,
        });
        handshakesOk += second.opened;
        if (second.failed) warn(`idle pool 2: ${second.failed} connections failed ${JSON.stringify(second.reasons)}`);
        await sleep(300);
        const m2 = await server.child.call('mark', { memory: true });
        if (process.env.BENCH_HEAP_SNAPSHOTS) {
          // Diagnostics: heap snapshots with N and 2N idle connections, to diff offline.
          fs.mkdirSync(path.join(TMP, 'heap'), { recursive: true });
          await lg.call('closePool', { name: 'idle2' });
          await server.child.call(
            'heapSnapshot',
            { file: path.join(TMP, 'heap', `${c.id}-r${rep}-n.heapsnapshot`) },
            300000,
          );
          await lg.call('openPool', {
            name: 'idle2',
            url: server.url('/bcast'),
            count: n,
            concurrency: 50,
            kind: c.token,
          });
          await server.child.call(
            'heapSnapshot',
            { file: path.join(TMP, 'heap', `${c.id}-r${rep}-2n.heapsnapshot`) },
            300000,
          );
        }
        const heap = (m) => m.heapUsed + m.external;
        fig.rss = {
          connections: second.opened,
          rssPerConnKB: (m2.rss - m1.rss) / 1024 / second.opened,
          heapPerConnKB: (heap(m2) - heap(m1)) / 1024 / second.opened,
          firstBatchRssPerConnKB: (m1.rss - m0.rss) / 1024 / pool.opened,
          firstBatchHeapPerConnKB: (heap(m1) - heap(m0)) / 1024 / pool.opened,
          rssMB: [m0.rss, m1.rss, m2.rss].map((x) => +(x / 1048576).toFixed(1)),
          // Where the RSS growth of the second batch sits, per connection (KB): the V8 heap in use
          // and committed (used + free space in the heap's pages), V8's external memory (Buffers,
          // ArrayBuffers) and the rest of RSS (malloc: sockets, libuv, OpenSSL; freed-but-kept pages).
          breakdownKB: perConnection(m1, m2, second.opened),
        };
        await lg.call('closePool', { name: 'idle2' });
      }
      if (c.figures.includes('broadcast')) {
        await lg.call('fanoutRun', {
          pool: 'idle',
          count: 3,
          window: COUNTS.broadcastWindow,
          size: COUNTS.messageBytes,
        });
        const r = await measured(
          server,
          () =>
            lg.call('fanoutRun', {
              pool: 'idle',
              count: COUNTS.broadcasts,
              window: COUNTS.broadcastWindow,
              size: COUNTS.messageBytes,
            }),
          { name: 'broadcast' },
        );
        if (r.timedOut) warn(`broadcast timed out: ${r.complete}/${r.sent} complete`);
        fig.broadcast = {
          clients: pool.opened,
          broadcasts: r.complete,
          deliveries: r.deliveries,
          perSecond: r.deliveries / (r.ms / 1000),
          cpuUsPerDelivery: r.cpuUs / r.deliveries,
          ms: r.ms,
          cpuMs: r.cpuUs / 1000,
          attempts: r.attempts,
          otherCpuShare: r.otherCpuShare,
          loadgenCpuUsPerDelivery: r.loadgenCpuUs / r.deliveries,
        };
      }
      await lg.call('closePool', { name: 'idle' });
    }

    if (c.figures.includes('handshake')) {
      await lg.call('sign', { kind: c.token, count: COUNTS.handshakes });
      const r = await measured(
        server,
        () => lg.call('handshakes', { url: server.url('/echo'), concurrency: COUNTS.handshakeConcurrency }),
        { retryOnPing: false, name: 'handshake' },
      );
      handshakesOk += r.ok;
      if (r.failed) warn(`handshakes: ${r.failed} failed ${JSON.stringify(r.reasons)}`);
      fig.handshake = {
        handshakes: r.ok,
        failed: r.failed,
        perSecond: r.ok / (r.ms / 1000),
        cpuUsPerHandshake: r.cpuUs / r.ok,
        ms: r.ms,
        cpuMs: r.cpuUs / 1000,
        otherCpuShare: r.otherCpuShare,
        loadgenCpuUsPerHandshake: r.loadgenCpuUs / r.ok,
      };
    }

    if (c.figures.includes('echo') || c.figures.includes('latency')) {
      const pool = await lg.call('openPool', {
        name: 'echo',
        url: server.url('/echo'),
        count: COUNTS.echoConnections,
        kind: c.token,
      });
      handshakesOk += pool.opened;
      if (pool.failed) throw new Error(`echo pool: ${pool.failed} failed ${JSON.stringify(pool.reasons)}`);
      if (c.figures.includes('echo')) {
        await lg.call('echoRun', {
          pool: 'echo',
          inflight: COUNTS.echoInFlight,
          size: COUNTS.messageBytes,
          total: COUNTS.warmupMessages,
        });
        const r = await measured(
          server,
          () =>
            lg.call('echoRun', {
              pool: 'echo',
              inflight: COUNTS.echoInFlight,
              size: COUNTS.messageBytes,
              total: COUNTS.echoMessages,
            }),
          { name: 'echo' },
        );
        if (r.timedOut) warn(`echo timed out: ${r.messages}/${COUNTS.echoMessages}`);
        fig.echo = {
          messages: r.messages,
          perSecond: r.messages / (r.ms / 1000),
          cpuUsPerMessage: r.cpuUs / r.messages,
          ms: r.ms,
          cpuMs: r.cpuUs / 1000,
          attempts: r.attempts,
          otherCpuShare: r.otherCpuShare,
          loadgenCpuUsPerMessage: r.loadgenCpuUs / r.messages,
        };
      }
      if (c.figures.includes('latency')) {
        const r = await lg.call('latencyRun', {
          pool: 'echo',
          rate: COUNTS.latencyRate,
          durationMs: COUNTS.latencyMs,
          size: COUNTS.messageBytes,
        });
        if (r.timedOut) warn(`latency run timed out: ${r.samples}/${r.expected}`);
        fig.latency = {
          rate: COUNTS.latencyRate,
          samples: r.samples,
          p50Ms: r.p50,
          p99Ms: r.p99,
          maxMs: r.max,
          pings: r.pings,
        };
      }
      await lg.call('closePool', { name: 'echo' });
    }

    if (c.figures.includes('jwksStorm')) {
      // Tokens signed with the right key but a random, unknown kid each: refused, and jose's
      // cooldown must keep the refetches to at most one.
      const before = listenerFetches(ctx, c.jwks);
      await lg.call('sign', { kind: c.token, count: COUNTS.jwksStormHandshakes, kid: 'random' });
      const t0 = Date.now();
      const r = await lg.call('handshakes', { url: server.url('/echo'), concurrency: COUNTS.handshakeConcurrency });
      const after = listenerFetches(ctx, c.jwks);
      stormDelta = {};
      for (const [l, v] of Object.entries(after)) stormDelta[l] = v - (before[l] || 0);
      const fetches = Object.values(stormDelta).reduce((x, y) => x + y, 0);
      fig.jwksStorm = {
        handshakes: COUNTS.jwksStormHandshakes,
        refused: r.failed,
        accepted: r.ok,
        reasons: r.reasons,
        fetches,
        ms: Date.now() - t0,
      };
    }

    if (c.figures.includes('tenant')) {
      await waitListening(lg, server, '/tenant', c.token);
      const per = COUNTS.tenantConnections;
      const small = COUNTS.tenantTotalSmall;
      const large = COUNTS.tenantTotalLarge;
      const open = async (count, offset) => {
        const r = await lg.call(
          'openPool',
          {
            name: 'tenant',
            url: server.url('/tenant'),
            count,
            concurrency: 100,
            kind: c.token,
            tenants: tenantsFor(count, per, offset),
          },
          300000,
        );
        if (r.failed) throw new Error(`tenant pool: ${r.failed} failed ${JSON.stringify(r.reasons)}`);
        return r;
      };
      const measure = async () => {
        await lg.call('fanoutRun', { pool: 'tenant', tenant: 't0', count: 50, window: 4, size: COUNTS.messageBytes });
        const r = await measured(
          server,
          () =>
            lg.call('fanoutRun', {
              pool: 'tenant',
              tenant: 't0',
              count: COUNTS.tenantBroadcasts,
              window: 4,
              size: COUNTS.messageBytes,
            }),
          { name: 'tenant' },
        );
        if (r.timedOut) warn(`tenant fan-out timed out: ${r.complete}/${r.sent}`);
        if (r.leaks) warn(`tenant fan-out: ${r.leaks} messages reached other tenants`);
        return {
          broadcasts: r.complete,
          deliveries: r.deliveries,
          leaks: r.leaks,
          cpuUsPerBroadcast: r.cpuUs / r.complete,
          perSecond: r.complete / (r.ms / 1000),
          attempts: r.attempts,
          otherCpuShare: r.otherCpuShare,
        };
      };
      await open(small, 0);
      const s = await measure();
      await open(large - small, small);
      const l = await measure();
      fig.tenant = {
        perTenant: per,
        small: { total: small, ...s },
        large: { total: large, ...l },
        ratio: l.cpuUsPerBroadcast / s.cpuUsPerBroadcast,
      };
    }

    if (c.jwks) {
      // Fetches caused by valid handshakes, per listener (the storm's refetches are counted apart).
      const after = listenerFetches(ctx, c.jwks);
      const perListener = {};
      for (const [l, v] of Object.entries(after)) {
        const n = v - (perListenerBefore[l] || 0) - ((stormDelta && stormDelta[l]) || 0);
        if (n > 0) perListener[l] = n;
      }
      const fetches = Object.values(perListener).reduce((x, y) => x + y, 0);
      fig.jwks = {
        fetches,
        perListener,
        maxPerListener: Math.max(0, ...Object.values(perListener)),
        handshakes: handshakesOk,
        per1000: (fetches * 1000) / handshakesOk,
        lifetimeS: (Date.now() - server.startedAt) / 1000,
      };
    }
  } finally {
    // Both processes end here; the kernel closes whatever connections are left.
    await server.stop();
    await lg.stop();
  }
  return fig;
}

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------
function machineInfo() {
  const cpuinfo = fs.existsSync('/proc/cpuinfo') ? fs.readFileSync('/proc/cpuinfo', 'utf8') : '';
  const model = (/^model name\s*:\s*(.+)$/m.exec(cpuinfo) || [])[1] || (os.cpus()[0] || {}).model || 'unknown';
  let nproc = os.availableParallelism ? os.availableParallelism() : os.cpus().length;
  try {
    nproc = Number(execFileSync('nproc', { encoding: 'utf8' }).trim()) || nproc;
  } catch {
    /* keep os figure */
  }
  const version = (name) => {
    try {
      return require(path.join(ROOT, 'node_modules', name, 'package.json')).version;
    } catch {
      return undefined;
    }
  };
  return {
    nproc,
    cpuModel: model.trim(),
    node: process.version,
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    memGB: +(os.totalmem() / 2 ** 30).toFixed(1),
    ws: version('ws'),
    jose: version('jose'),
  };
}

function fdLimit() {
  try {
    return Number(execSync('ulimit -n', { encoding: 'utf8', shell: '/bin/sh' }).trim());
  } catch {
    return NaN;
  }
}

/**
 * Freezes the built package for this run (another engineer may rebuild nodes/ meanwhile): a copy
 * of nodes/ and package.json, with node_modules linked to the repo's.
 */
function snapshotPackage(runDir) {
  const built = path.join(ROOT, 'nodes', 'websocket-plus.js');
  if (!fs.existsSync(built)) return { ok: false, reason: 'nodes/websocket-plus.js not built' };
  const pkgDir = path.join(runDir, 'pkg');
  fs.mkdirSync(pkgDir, { recursive: true });
  fs.cpSync(path.join(ROOT, 'nodes'), path.join(pkgDir, 'nodes'), { recursive: true });
  fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(pkgDir, 'package.json'));
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(pkgDir, 'node_modules'), 'dir');
  try {
    const out = execFileSync(
      process.execPath,
      ['-e', `console.log(typeof require(${JSON.stringify(path.join(pkgDir, 'nodes', 'websocket-plus.js'))}))`],
      { encoding: 'utf8', timeout: 30000, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    if (out.trim() !== 'function')
      return { ok: false, reason: `nodes/websocket-plus.js exports ${out.trim()}, not a function`, pkgDir };
    return { ok: true, pkgDir };
  } catch (err) {
    return {
      ok: false,
      reason: `the package does not load: ${String(err.stderr || err.message)
        .split('\n')
        .slice(0, 5)
        .join(' ')}`,
      pkgDir,
    };
  }
}

async function main() {
  const started = Date.now();
  fs.mkdirSync(TMP, { recursive: true });
  const runDir = fs.mkdtempSync(path.join(TMP, 'run-'));
  const jose = require('jose');
  const ctx = { runDir, notes: [] };

  const limit = fdLimit();
  const needFds = COUNTS.tenantTotalLarge + 500;
  if (Number.isFinite(limit) && limit < needFds && !process.env.BENCH_ULIMIT_TRIED) {
    // Node already raises its soft limit to the hard one; try to raise the hard limit too (root
    // with CAP_SYS_RESOURCE) by re-running under a shell's ulimit. Failing that, scale down below.
    const { spawnSync } = require('child_process');
    const r = spawnSync(
      '/bin/sh',
      [
        '-c',
        `ulimit -n ${needFds} 2>/dev/null; exec "$0" "$@"`,
        process.execPath,
        ...process.execArgv,
        __filename,
        ...process.argv.slice(2),
      ],
      {
        stdio: 'inherit',
        env: { ...process.env, BENCH_ULIMIT_TRIED: '1' },
      },
    );
    fs.rmSync(runDir, { recursive: true, force: true });
    process.exit(r.status === null ? 1 : r.status);
  }
  if (Number.isFinite(limit) && limit < needFds) {
    const scaled = Math.max(COUNTS.tenantTotalSmall * 2, Math.floor((limit - 500) / 100) * 100);
    ctx.notes.push(
      `ulimit -n is ${limit}: tenant fan-out large case scaled from ${COUNTS.tenantTotalLarge} to ${scaled} ` +
        'connections (raise ulimit -n for the full figure).',
    );
    COUNTS.tenantTotalLarge = scaled;
  }
  if (SCALE !== 1) ctx.notes.push(`BENCH_SCALE=${SCALE}: counts scaled.`);

  // BENCH_PKG_DIR: a prepared package folder (nodes/, package.json, node_modules) instead of a
  // snapshot of this repo's build (for A/B experiments on the built code).
  const snap = process.env.BENCH_PKG_DIR
    ? { ok: true, pkgDir: path.resolve(process.env.BENCH_PKG_DIR) }
    : snapshotPackage(runDir);
  let contenders = CONTENDERS;
  if (!snap.ok) {
    ctx.notes.push(`websocket-plus contenders skipped: ${snap.reason}.`);
    contenders = contenders.filter((c) => !c.plus);
  }
  ctx.pkgDir = snap.pkgDir;
  contenders = contenders.filter((c) => !c.id.startsWith('raw-ws7') || WS7);
  // BENCH_AB_DIR: a second prepared package; every websocket-plus contender runs twice per round,
  // as <id> (this build or BENCH_PKG_DIR) and <id>-b (that package), so A and B are paired by round.
  if (process.env.BENCH_AB_DIR) {
    const bDir = path.resolve(process.env.BENCH_AB_DIR);
    contenders = contenders.flatMap((c) =>
      c.plus ? [c, { ...c, id: `${c.id}-b`, label: `${c.label} [B]`, pkgDir: bDir }] : [c],
    );
  }
  if (process.env.BENCH_ONLY) {
    const only = new Set(process.env.BENCH_ONLY.split(',').map((s) => s.trim()));
    contenders = contenders.filter((c) => only.has(c.id) || only.has(c.id.replace(/-b$/, '')));
  }
  if (process.env.BENCH_FIGURES) {
    const figures = new Set(process.env.BENCH_FIGURES.split(',').map((s) => s.trim()));
    contenders = contenders
      .map((c) => ({ ...c, figures: c.figures.filter((f) => figures.has(f)) }))
      .filter((c) => c.figures.length > 0);
  }

  const keys = await makeKeys(jose);
  ctx.keys = keys;
  ctx.jwks = await startJwksServer(keys.jwks);
  // A fresh load generator per contender and round: the previous contender's connections (up to
  // 10,000) and garbage must not change how the next one's load arrives.
  ctx.startLoadgen = async (name) => {
    const lg = new Child(path.join(__dirname, 'loadgen.js'), {
      name: `loadgen ${name}`,
      logFile: path.join(runDir, `loadgen-${name}.log`),
      cpu: PIN ? 0 : undefined,
    });
    await lg.ready;
    await lg.call('init', { keys: keys.loadgen, issuer: ISSUER, audience: AUDIENCE });
    return lg;
  };

  const machine = machineInfo();
  log(
    `machine: ${machine.nproc} CPUs, ${machine.cpuModel}, Node ${machine.node}; fd limit ${limit}; ` +
      `${REPEATS} rounds; contenders: ${contenders.map((c) => c.id).join(', ')}`,
  );
  for (const n of ctx.notes) log(`note: ${n}`);

  if (Number(process.env.BENCH_INTERLEAVE) > 0) {
    try {
      await interleaved(contenders, ctx, Number(process.env.BENCH_INTERLEAVE));
    } finally {
      ctx.jwks.server.close();
      // BENCH_KEEP_RUN=1 keeps the servers' logs (e.g. with BENCH_NODE_FLAGS=--trace-deopt).
      if (process.env.BENCH_KEEP_RUN === '1') log(`server logs kept in ${runDir}`);
      else fs.rmSync(runDir, { recursive: true, force: true });
    }
    return;
  }
  const runs = Object.fromEntries(contenders.map((c) => [c.id, []]));
  const failures = [];
  try {
    for (let rep = 1; rep <= REPEATS; rep++) {
      for (const c of contenders) {
        const t0 = Date.now();
        try {
          const fig = await runContender(c, rep, ctx);
          runs[c.id].push(fig);
          log(
            `round ${rep}/${REPEATS} ${c.id.padEnd(10)} ` +
              `${((Date.now() - t0) / 1000).toFixed(1)} s  ${summaryLine(fig)}`,
          );
        } catch (err) {
          failures.push({ contender: c.id, round: rep, error: String((err && err.message) || err) });
          log(`round ${rep}/${REPEATS} ${c.id} FAILED: ${(err && err.stack) || err}`);
        }
      }
    }
  } finally {
    ctx.jwks.server.close();
    // Logs (and the package snapshot) are kept only when something failed.
    if (failures.length === 0) fs.rmSync(runDir, { recursive: true, force: true });
    else log(`server logs kept in ${path.relative(ROOT, runDir)}`);
  }

  const result = stats.summarise({
    date: new Date().toISOString(),
    durationS: Math.round((Date.now() - started) / 1000),
    pinned: PIN,
    machine: {
      ...machine,
      nodeRed: ctx.nodeRedVersion || require(path.join(ROOT, 'node_modules', NODE_RED, 'package.json')).version,
      nodeRedModule: NODE_RED,
      fdLimit: limit,
    },
    repeats: REPEATS,
    counts: COUNTS,
    notes: ctx.notes,
    failures,
    contenders: contenders.map((c) => ({ id: c.id, label: c.label })),
    ws7: WS7 && WS7.version,
    runs,
  });
  fs.mkdirSync(RESULTS, { recursive: true });
  const md = renderMarkdown(result);
  const partial = [
    'BENCH_ONLY',
    'BENCH_FIGURES',
    'BENCH_PKG_DIR',
    'BENCH_AB_DIR',
    'BENCH_PLUS_PROPS',
    'BENCH_LISTENER_OPTIONS',
    'BENCH_WS_MODULE',
    'BENCH_HEAP_SNAPSHOTS',
    'BENCH_PROFILE',
  ].some((k) => process.env[k]);
  if (!partial) {
    fs.writeFileSync(path.join(RESULTS, 'latest.json'), JSON.stringify(result, null, 2) + '\n');
    fs.writeFileSync(path.join(RESULTS, 'latest.md'), md);
  } else {
    fs.writeFileSync(path.join(TMP, 'partial.json'), JSON.stringify(result, null, 2) + '\n');
    fs.writeFileSync(path.join(TMP, 'partial.md'), md);
  }
  console.log(`\n${md}`);
  if (process.env.BENCH_AB_DIR) console.log(abSummary(result));
  if (!partial && !process.env.BENCH_NO_README) require('./update-readme').update();
  log(
    `done in ${result.durationS} s` +
      (partial ? ' (partial run: results in bench/results/tmp/partial.*)' : ': bench/results/latest.json, latest.md'),
  );
  if (failures.length) process.exitCode = 1;
}

/**
 * BENCH_INTERLEAVE=<n> (experiments, e.g. with BENCH_AB_DIR): every contender's server runs at the
 * same time (each with its own load generator), and the echo (and broadcast) windows go round the
 * contenders n times, one short window each. A ratio is taken between windows seconds apart, so
 * the slow stretches of a shared machine hit both sides of most pairs; it prints the per-pass
 * ratios to the first contender and between each <id>-b and <id>, median (min–max).
 */
async function interleaved(contenders, ctx, passes) {
  const figures = new Set((process.env.BENCH_FIGURES || 'echo').split(','));
  const servers = [];
  try {
    for (const c of contenders) {
      const lg = await ctx.startLoadgen(`${c.id}-interleaved`);
      ctx.loadgen = lg;
      const server = await startServer(c, 1, ctx);
      servers.push({ c, lg, server });
      await waitListening(lg, server, '/echo', c.token);
      if (figures.has('echo')) {
        await lg.call('openPool', {
          name: 'echo',
          url: server.url('/echo'),
          count: COUNTS.echoConnections,
          kind: c.token,
        });
        await lg.call('echoRun', {
          pool: 'echo',
          inflight: COUNTS.echoInFlight,
          size: COUNTS.messageBytes,
          total: 20000,
        });
        // Instruction counts: one connection, one message at a time, so every message costs one read
        // and one write whatever the speed under valgrind (frames per read would vary with timing).
        if (CALLGRIND) await lg.call('openPool', { name: 'echo1', url: server.url('/echo'), count: 1, kind: c.token });
      }
      if (figures.has('broadcast')) {
        await lg.call('openPool', {
          name: 'idle',
          url: server.url('/bcast'),
          count: COUNTS.broadcastClients,
          kind: c.token,
        });
        await lg.call('fanoutRun', {
          pool: 'idle',
          count: 5,
          window: COUNTS.broadcastWindow,
          size: COUNTS.messageBytes,
        });
      }
      log(`interleaved: ${c.id} ready`);
    }
    const per = Object.fromEntries(contenders.map((c) => [c.id, { echo: [], broadcast: [], handshake: [] }]));
    for (let i = 0; i < passes; i++) {
      // Each pass starts one contender further (a rotation): every contender follows every other
      // equally often and none runs twice in a row (a reversed order would give the ends a warm CPU).
      const order = servers.map((_, k) => servers[(k + i) % servers.length]);
      for (const { c, lg, server } of order) {
        if (figures.has('echo')) {
          const one = CALLGRIND && !BATCHED;
          const r = await windowCost(server, lg, 'echoRun', {
            pool: one ? 'echo1' : 'echo',
            inflight: one ? 1 : COUNTS.echoInFlight,
            size: COUNTS.messageBytes,
            total: Number(process.env.BENCH_INTERLEAVE_MESSAGES) || Math.round(COUNTS.echoMessages / 2),
          });
          per[c.id].echo.push(r.cost / r.messages);
          const each = (v) => (v / r.messages).toFixed(3);
          if (CALLGRIND)
            log(
              `${c.id} echo: all threads ${(r.allThreads / r.messages).toFixed(0)} instructions/message, ` +
                `${each(r.syscr)} reads/message` +
                Object.entries(r.events)
                  .filter(([k]) => k !== 'Ir')
                  .map(([k, v]) => `, ${k} ${(v / r.messages).toFixed(1)}`)
                  .join(''),
            );
          else
            log(
              `${c.id} echo per message: user ${each(r.userUs)} µs, system ${each(r.systemUs)} µs, ` +
                `helper threads ${each(r.helperUs)} µs, reads ${each(r.syscr)}, writes ${each(r.syscw)}`,
            );
        }
        if (figures.has('handshake')) {
          await lg.call('sign', { kind: c.token, count: Number(process.env.BENCH_INTERLEAVE_HANDSHAKES) || 500 });
          const r = await windowCost(
            server,
            lg,
            'handshakes',
            { url: server.url('/echo'), concurrency: CALLGRIND ? 10 : COUNTS.handshakeConcurrency },
            { retryOnPing: false },
          );
          if (r.failed) throw new Error(`${c.id}: ${r.failed} handshakes failed ${JSON.stringify(r.reasons)}`);
          per[c.id].handshake.push(r.cost / r.ok);
          if (CALLGRIND) log(`${c.id} handshake: all threads ${(r.allThreads / r.ok).toFixed(0)} instructions`);
        }
        if (figures.has('broadcast')) {
          const r = await windowCost(server, lg, 'fanoutRun', {
            pool: 'idle',
            count: 10,
            window: COUNTS.broadcastWindow,
            size: COUNTS.messageBytes,
          });
          per[c.id].broadcast.push(r.cost / r.deliveries);
        }
      }
      log(
        `pass ${i + 1}/${passes}: ` +
          contenders
            .map(
              (c) =>
                `${c.id} ${['echo', 'broadcast', 'handshake']
                  .filter((f) => figures.has(f))
                  .map((f) => per[c.id][f][i].toFixed(2))
                  .join('/')}`,
            )
            .join(' | '),
      );
    }
    // Other work on the machine only ever adds CPU time to a window: besides the median, the 10th and
    // 25th percentiles (the windows least disturbed) are shown.
    const pct = (v, p) => v[Math.floor(p * (v.length - 1))];
    const q = (r) => {
      const v = [...r].sort((a, b) => a - b);
      const m = Math.floor(v.length / 2);
      const med = v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
      return (
        `${med.toFixed(3)} (${v[0].toFixed(3)}–${v[v.length - 1].toFixed(3)}, n=${v.length}; ` +
        `p10 ${pct(v, 0.1).toFixed(3)}, p25 ${pct(v, 0.25).toFixed(3)})`
      );
    };
    const ratio = (x, y) => x.map((v, i) => v / y[i]);
    const ref = contenders[0].id;
    for (const f of ['echo', 'broadcast', 'handshake']) {
      if (!figures.has(f)) continue;
      for (const c of contenders)
        log(
          `${f} ${c.id}: ${q(per[c.id][f])} ${CALLGRIND ? 'instructions' : 'µs'}; ÷ ${ref} ${q(ratio(per[c.id][f], per[ref][f]))}`,
        );
      for (const c of contenders)
        if (c.id.endsWith('-b') && per[c.id.slice(0, -2)])
          log(`${f} A/B ${c.id} ÷ ${c.id.slice(0, -2)}: ${q(ratio(per[c.id][f], per[c.id.slice(0, -2)][f]))}`);
      const low = (id, p) =>
        pct(
          [...per[id][f]].sort((a, b) => a - b),
          p,
        );
      for (const c of contenders)
        log(
          `${f} ${c.id} ÷ ${ref} of the least disturbed windows: p10 ${(low(c.id, 0.1) / low(ref, 0.1)).toFixed(3)}, ` +
            `p25 ${(low(c.id, 0.25) / low(ref, 0.25)).toFixed(3)}`,
        );
    }
    fs.mkdirSync(TMP, { recursive: true });
    fs.writeFileSync(path.join(TMP, 'interleaved.json'), JSON.stringify(per, null, 2) + '\n');
    if (CALLGRIND) writeInstructionCounts(contenders, per, figures);
  } finally {
    for (const { lg, server } of servers) {
      await server.stop().catch(() => undefined);
      await lg.stop().catch(() => undefined);
      // V8 writes the names of its compiled code to /tmp/perf-<pid>.map; callgrind-top.js reads it beside the dumps.
      const map = `/tmp/perf-${server.child.proc.pid}.map`;
      if (CALLGRIND && fs.existsSync(map)) fs.renameSync(map, path.join(CALLGRIND_DIR, path.basename(map)));
    }
  }
}

/**
 * One interleaved window of load-generator command `cmd`: its result with `cost`, the server's CPU
 * µs (measured()) or, with BENCH_CALLGRIND, its instructions (counted(), with deadlines long enough
 * for valgrind).
 */
async function windowCost(server, lg, cmd, args, options = {}) {
  const name = { echoRun: 'echo', fanoutRun: 'broadcast', handshakes: 'handshake' }[cmd];
  if (!CALLGRIND) {
    const r = await measured(server, () => lg.call(cmd, args), { ...options, name });
    return { ...r, cost: r.cpuUs };
  }
  const r = await counted(server, () => lg.call(cmd, { ...args, deadlineMs: 900000 }, 960000));
  return { ...r, cost: r.instructions };
}

/** BENCH_CALLGRIND: bench/results/instructions-latest.{json,md} (see renderInstructionCounts). */
function writeInstructionCounts(contenders, per, figures) {
  const out = {
    date: new Date().toISOString(),
    machine: machineInfo(),
    mode: BATCHED ? 'batched' : 'one message at a time',
    figures: {},
  };
  for (const f of ['echo', 'broadcast', 'handshake']) {
    if (!figures.has(f)) continue;
    out.figures[f] = {};
    for (const c of contenders)
      if (per[c.id][f].length) out.figures[f][c.id] = { label: c.label, passes: per[c.id][f] };
  }
  fs.writeFileSync(path.join(RESULTS, 'instructions-latest.json'), JSON.stringify(out, null, 2) + '\n');
  fs.writeFileSync(path.join(RESULTS, 'instructions-latest.md'), renderInstructionCounts(out));
  log(`instruction counts written to bench/results/instructions-latest.*`);
}

/** BENCH_AB_DIR: B ÷ A per round for every figure both measured; median (min–max) and the rounds. */
function abSummary(result) {
  const lines = ['A/B (B ÷ A, paired by round): median (min–max) [per round]'];
  const f = (x) => x.toFixed(3);
  for (const { id } of result.contenders) {
    if (!id.endsWith('-b')) continue;
    const a = result.runs[id.slice(0, -2)];
    const b = result.runs[id];
    if (!a) continue;
    for (const [m, pick] of Object.entries(stats.METRICS)) {
      const r = [];
      for (let i = 0; i < Math.min(a.length, b.length); i++) {
        const x = pick(a[i]);
        const y = pick(b[i]);
        if (typeof x === 'number' && typeof y === 'number' && x > 0) r.push(y / x);
      }
      if (
        r.length === 0 ||
        ['hsRate', 'echoRate', 'bcastRate'].includes(m) ||
        m.startsWith('jwks') ||
        m.startsWith('storm')
      )
        continue;
      const s = [...r].sort((p, q) => p - q);
      const mid = Math.floor(s.length / 2);
      const med = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
      lines.push(
        `${id.slice(0, -2).padEnd(12)} ${m.padEnd(12)} ${f(med)} (${f(s[0])}–${f(s[s.length - 1])}) [${r.map(f).join(', ')}]`,
      );
    }
  }
  return lines.join('\n');
}

function summaryLine(fig) {
  const parts = [];
  const f = (n, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : '-');
  if (fig.handshake) parts.push(`hs ${f(fig.handshake.perSecond, 0)}/s ${f(fig.handshake.cpuUsPerHandshake)}µs`);
  if (fig.echo) parts.push(`echo ${f(fig.echo.perSecond, 0)}/s ${f(fig.echo.cpuUsPerMessage, 2)}µs`);
  if (fig.latency) parts.push(`p50/p99 ${f(fig.latency.p50Ms, 2)}/${f(fig.latency.p99Ms, 2)}ms`);
  if (fig.broadcast) parts.push(`bcast ${f(fig.broadcast.perSecond, 0)}/s ${f(fig.broadcast.cpuUsPerDelivery, 2)}µs`);
  if (fig.rss) parts.push(`rss ${f(fig.rss.rssPerConnKB, 1)}KB/conn`);
  if (fig.tenant)
    parts.push(
      `tenant ${f(fig.tenant.small.cpuUsPerBroadcast)}→${f(fig.tenant.large.cpuUsPerBroadcast)}µs ` +
        `(×${f(fig.tenant.ratio, 2)})`,
    );
  if (fig.jwks) parts.push(`jwks ${fig.jwks.fetches} fetch/${fig.jwks.handshakes} hs`);
  if (fig.jwksStorm) parts.push(`storm ${fig.jwksStorm.fetches} fetch`);
  return parts.join(' | ');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
