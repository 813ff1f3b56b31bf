#!/usr/bin/env node
'use strict';
/**
 * CPU cost of an in-band token refresh on the listener (refresh "message", HS256).
 *
 * The listener runs in a child process of its own, so its process.cpuUsage() is the server's cost
 * only. `sessions` clients connect; each round every client sends one refresh frame (a fresh
 * HS256 token for the same tenant and subject) and waits for `websocket-plus:refreshed`; rounds are
 * 1.05 s apart (the listener closes a session that refreshes faster than once a second). The same
 * is done with ordinary text frames of the same size that the listener echoes back (a baseline
 * for a frame in and a frame out), so the difference is what the refresh itself costs: parse,
 * verify, re-arm the expiry.
 * Also: the cost readRefreshFrame adds to an ordinary message (ns per call, in this process).
 *
 * Usage: `node bench/refresh-cost.js [sessions] [rounds]` (prints JSON). Needs `npm run build` first.
 */
const path = require('path');
const http = require('http');
const { fork } = require('child_process');
const WebSocket = require('ws');
const jose = require('jose');

const ROOT = path.resolve(__dirname, '..');
const LIB = path.join(ROOT, 'nodes', 'lib', 'core');
const SECRET = 'refresh-bench-secret-0123456789abcdef-xyz';
const WS_PATH = '/ws/refresh-bench';

async function child() {
  const { WebSocketListener } = require(path.join(LIB, 'server', 'listener.js'));
  const { createTokenVerifier } = require(path.join(LIB, 'auth', 'token-verifier.js'));
  const server = http.createServer((req, res) => res.end());
  const listener = new WebSocketListener({
    server,
    path: WS_PATH,
    verifier: createTokenVerifier({ mode: 'hs256', secret: SECRET }),
    tenant: { from: 'claim', claim: 'tenant_id', staticTenantId: '' },
    scope: 'session',
    heartbeatMs: 0,
    refresh: 'message',
    refreshWindowMs: 0,
  });
  // Baseline: an ordinary frame is echoed to its session.
  listener.on('message', (session, data) => listener.deliver(session.id, data));
  const results = {};
  listener.on('refresh', (_s, result) => (results[result] = (results[result] ?? 0) + 1));
  listener.start();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  let mark;
  process.on('message', (m) => {
    if (m === 'mark') {
      mark = process.cpuUsage();
      process.send({ marked: true });
    } else if (m === 'read') {
      const used = process.cpuUsage(mark);
      process.send({ cpuUs: used.user + used.system, results: { ...results } });
    } else if (m === 'exit') {
      void listener.close().then(() => server.close(() => process.exit(0)));
    }
  });
  process.send({ port: server.address().port });
}

function ask(proc, message, key) {
  return new Promise((resolve) => {
    const on = (m) => {
      if (m && m[key] !== undefined) {
        proc.off('message', on);
        resolve(m);
      }
    };
    proc.on('message', on);
    proc.send(message);
  });
}

const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const sign = (exp) =>
  new jose.SignJWT({ tenant_id: 'bench', sub: 'user' })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setExpirationTime(exp)
    .sign(new TextEncoder().encode(SECRET));

/** Sends `frameFor(i)` on every socket and waits until each has one answer; the server's CPU µs for it. */
async function round(proc, sockets, frameFor) {
  await ask(proc, 'mark', 'marked');
  await Promise.all(
    sockets.map(
      (ws, i) =>
        new Promise((resolve) => {
          ws.once('message', resolve);
          ws.send(frameFor(i));
        }),
    ),
  );
  return (await ask(proc, 'read', 'cpuUs')).cpuUs;
}

function readCost() {
  const { readRefreshFrame } = require(path.join(LIB, 'server', 'refresh.js'));
  const frames = {
    text: Buffer.from('hello world'),
    json: Buffer.from('{"payload":{"temperature":21.5,"unit":"C"},"topic":"sensor/1"}'),
    json1k: Buffer.from(JSON.stringify({ payload: 'x'.repeat(1000), topic: 't' })),
  };
  const out = {};
  for (const [name, buf] of Object.entries(frames)) {
    const n = 1_000_000;
    for (let i = 0; i < 10_000; i++) readRefreshFrame(buf, 8192);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) readRefreshFrame(buf, 8192);
    out[name] = Number(process.hrtime.bigint() - t0) / n;
  }
  return out;
}

async function run({ sessions = 500, rounds = 4 } = {}) {
  const proc = fork(__filename, ['--child'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const { port } = await new Promise((resolve) => proc.once('message', resolve));
  const exp = Math.floor(Date.now() / 1000) + 3600;
  const sockets = [];
  for (let i = 0; i < sessions; i++) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${WS_PATH}?token=${await sign(exp)}`);
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    sockets.push(ws);
  }
  const tokens = [];
  for (let r = 0; r < rounds; r++) tokens.push(await sign(exp + 60 * (r + 1)));
  const refreshFrames = tokens.map((t) => JSON.stringify({ type: 'websocket-plus:refresh', token: t }));
  const plainFrame = JSON.stringify({ type: 'chat', text: 'y'.repeat(tokens[0].length) });
  const refreshUs = [];
  const plainUs = [];
  for (let r = 0; r < rounds; r++) {
    await delay(1050);
    refreshUs.push(await round(proc, sockets, () => refreshFrames[r]));
    plainUs.push(await round(proc, sockets, () => plainFrame));
  }
  const { results } = await ask(proc, 'read', 'cpuUs');
  for (const ws of sockets) ws.terminate();
  proc.send('exit');
  await new Promise((resolve) => proc.once('exit', resolve));
  const per = (list) => list.reduce((a, b) => a + b, 0) / (list.length * sessions);
  const refreshPer = per(refreshUs);
  const plainPer = per(plainUs);
  return {
    sessions,
    refreshes: sessions * rounds,
    results,
    refreshCpuUsPerFrame: +refreshPer.toFixed(1),
    echoCpuUsPerFrame: +plainPer.toFixed(1),
    refreshOverEchoUs: +(refreshPer - plainPer).toFixed(1),
    readRefreshFrameNsPerOrdinaryFrame: Object.fromEntries(
      Object.entries(readCost()).map(([k, v]) => [k, +v.toFixed(1)]),
    ),
    node: process.version,
  };
}

if (process.argv.includes('--child')) {
  void child();
} else if (require.main === module) {
  const [sessions, rounds] = process.argv.slice(2).map(Number);
  run({ sessions: sessions || undefined, rounds: rounds || undefined }).then(
    (result) => console.log(JSON.stringify(result, null, 2)),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}

module.exports = { run };
