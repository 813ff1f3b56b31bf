'use strict';
// Listens on 127.0.0.1 (ephemeral port) and keeps track of open sockets, so close() can end
// kept-alive or hanging connections at once instead of waiting for them.

/**
 * Resolves with the port once `server` listens on 127.0.0.1 (`port` 0: an ephemeral one);
 * rejects on a listen error.
 */
function listen(server, port = 0) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve(server.address().port);
    });
  });
}

/** Resolves { port, sockets, close() } once `server` listens. */
async function listenOnLoopback(server) {
  const sockets = new Set();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const port = await listen(server);
  return {
    port,
    sockets,
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

module.exports = { listen, listenOnLoopback };
