'use strict';
// Listens on 127.0.0.1 (ephemeral port) and keeps track of open sockets, so close() can end
// kept-alive or hanging connections at once instead of waiting for them.

/** Resolves { port, sockets, close() } once `server` listens. */
async function listenOnLoopback(server) {
  const sockets = new Set();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: server.address().port,
    sockets,
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

module.exports = { listenOnLoopback };
