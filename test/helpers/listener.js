'use strict';
// The one way tests build a core WebSocketListener on a plain HTTP server (no Node-RED): tenant
// from the `tenant_id` claim, tenant scope, heartbeat off, unless a test says otherwise.
const http = require('http');
const { built } = require('./built');
const { listenOnLoopback } = require('./loopback');
const { WebSocketListener } = built('core/server/listener');
const { createTokenVerifier } = built('core/auth/token-verifier');

const toVerifier = (verifier) => (typeof verifier.verify === 'function' ? verifier : createTokenVerifier(verifier));

/**
 * A WebSocketListener on `server` at `pathname`, not started. `verifier` is a TokenVerifier or the
 * options to create one; every other option overrides the defaults above.
 */
function createListener(server, pathname, { verifier, ...options }) {
  return new WebSocketListener({
    server,
    path: pathname,
    verifier: toVerifier(verifier),
    tenant: { from: 'claim', claim: 'tenant_id', staticTenantId: '' },
    scope: 'tenant',
    heartbeatMs: 0,
    ...options,
  });
}

/** One real HTTP server on 127.0.0.1 that several core listeners can share (one dispatcher). */
async function startHttpServer(serverOptions = {}) {
  const server = http.createServer(serverOptions, (req, res) => {
    res.writeHead(404);
    res.end();
  });
  const { port, sockets, close } = await listenOnLoopback(server);
  return { server, port, sockets, base: `ws://127.0.0.1:${port}`, close };
}

/**
 * Starts a core listener on `srv` (from startHttpServer) at `pathname` and records every open,
 * every refusal (with its code) and every enforced limit.
 */
function startListener(srv, pathname, { verifier, ...options }) {
  const v = toVerifier(verifier);
  const listener = createListener(srv.server, pathname, { verifier: v, ...options });
  const record = { listener, verifier: v, opens: [], refusals: [], enforced: [] };
  listener.on('open', (s) => record.opens.push(s));
  listener.on('refused', (err) => record.refusals.push(err));
  listener.on('enforced', (s, reason) => record.enforced.push(reason));
  record.url = (query) => `${srv.base}${pathname}${query === undefined ? '' : `?${query}`}`;
  record.path = pathname;
  listener.start();
  return record;
}

module.exports = { createListener, startHttpServer, startListener };
