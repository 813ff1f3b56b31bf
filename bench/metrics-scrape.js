#!/usr/bin/env node
'use strict';
/**
 * Scrape time of the package's metrics with many open sessions: a core WebSocketListener (HS256,
 * per-tenant gauges on, 1,000 tenants capped at 100) on 127.0.0.1 with N sessions opened by a
 * child process (so each side stays within its file-descriptor limit), then 30 scrapes.
 *
 *   npm run build && node bench/metrics-scrape.js [sessions=10000]   (METRICS_PER_TENANT=0: tenant gauges off)
 */
const http = require('http');
const path = require('path');
const { fork } = require('child_process');

const LIB = path.join(__dirname, '..', 'nodes', 'lib');
const TENANTS = 1000;
const SECRET = 'metrics-scrape-bench-secret-0123456789abcdef';

async function clients() {
  const WebSocket = require('ws');
  const open = [];
  process.on('message', async ({ url, tokens, count }) => {
    let next = 0;
    const worker = async () => {
      while (next < count) {
        const i = next++;
        await new Promise((resolve, reject) => {
          const ws = new WebSocket(`${url}?token=${tokens[i % tokens.length]}`, { perMessageDeflate: false });
          ws.once('open', () => resolve(open.push(ws)));
          ws.once('error', reject);
        });
      }
    };
    await Promise.all(Array.from({ length: 100 }, worker));
    process.send({ opened: open.length });
  });
}

async function main() {
  const count = Number(process.argv[2] || 10000);
  const jose = require('jose');
  const { WebSocketListener } = require(path.join(LIB, 'core/server/listener'));
  const { createTokenVerifier } = require(path.join(LIB, 'core/auth/token-verifier'));
  const { WebSocketPlusMetrics } = require(path.join(LIB, 'core/metrics/metrics'));
  const server = http.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const listener = new WebSocketListener({
    server,
    path: '/ws/bench',
    verifier: createTokenVerifier({ mode: 'hs256', secret: SECRET }),
    tenant: { from: 'claim', claim: 'tenant_id', staticTenantId: '' },
    scope: 'tenant',
    heartbeatMs: 0,
  });
  listener.start();
  const metrics = new WebSocketPlusMetrics();
  const perTenant = process.env.METRICS_PER_TENANT !== '0';
  metrics.watchListener(listener, { perTenant, maxTenants: 100 });
  const key = new TextEncoder().encode(SECRET);
  const tokens = [];
  for (let t = 0; t < TENANTS; t++)
    tokens.push(await new jose.SignJWT({ tenant_id: `tenant-${t}` }).setProtectedHeader({ alg: 'HS256' }).sign(key));

  const child = fork(__filename, ['--clients'], { stdio: 'inherit' });
  const opened = await new Promise((resolve) => {
    child.once('message', (m) => resolve(m.opened));
    child.send({ url: `ws://127.0.0.1:${server.address().port}/ws/bench`, tokens, count });
  });
  const times = [];
  let size = 0;
  for (let i = 0; i < 30; i++) {
    const start = process.hrtime.bigint();
    const text = await metrics.metrics();
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
    size = text.length;
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)];
  console.log(
    `sessions ${listener.connectionCount} (client opened ${opened}), tenants ${TENANTS}` +
      `${perTenant ? ' (100 reported + other)' : ' (not reported)'}`,
  );
  console.log(
    `scrape: median ${median.toFixed(2)} ms, max ${times[times.length - 1].toFixed(2)} ms, ` +
      `exposition ${size} bytes, RSS ${(process.memoryUsage().rss / 1048576).toFixed(0)} MiB`,
  );
  child.kill();
  await listener.close();
  server.closeAllConnections();
  server.close();
}

if (process.argv.includes('--clients')) clients();
else
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
