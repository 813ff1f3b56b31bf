'use strict';
// Contender: websocket-plus's own core WebSocketListener (the built nodes/lib/core), without
// Node-RED, on a plain loopback HTTP server. It shows what the listener itself costs; the
// Node-RED contenders add the runtime's message passing on top. /echo is session scope,
// /bcast global scope, /tenant tenant scope; every incoming message is handed to deliver()
// with the session's own id, as ws.out+ does for a message that came from ws.in+.
const http = require('http');
const path = require('path');
const { serve, markHandlers } = require('../lib/ipc');

async function main() {
  const lib = path.join(process.env.BENCH_NODES_DIR, 'nodes', 'lib', 'core');
  const { WebSocketListener } = require(path.join(lib, 'server', 'listener.js'));
  const { createTokenVerifier } = require(path.join(lib, 'auth', 'token-verifier.js'));
  const auth = process.env.BENCH_AUTH || 'hs256';
  const server = http.createServer((req, res) => {
    res.writeHead(404);
    res.end();
  });
  const listeners = [];
  for (const [p, scope] of [
    ['/echo', 'session'],
    ['/bcast', 'global'],
    ['/tenant', 'tenant'],
  ]) {
    const verifier = createTokenVerifier(
      auth === 'hs256' ? { mode: 'hs256', secret: process.env.BENCH_HS_SECRET } : { mode: 'none' },
    );
    const listener = new WebSocketListener({
      server,
      path: p,
      verifier,
      tenant: { from: 'claim', claim: 'tenant_id', staticTenantId: '' },
      scope,
      // Experiments only (A/B of listener options); the bench itself sets nothing here.
      ...JSON.parse(process.env.BENCH_LISTENER_OPTIONS || '{}'),
    });
    listener.on('message', (session, data) => listener.deliver(session.id, data));
    listener.start();
    listeners.push(listener);
  }
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  serve({ ...markHandlers() });
  process.send({ type: 'ready', port: server.address().port });
}

main().catch((err) => {
  process.send({ type: 'fatal', error: String((err && err.stack) || err) });
  process.exit(1);
});
