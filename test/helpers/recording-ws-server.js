'use strict';
// A real ws (or wss) server on 127.0.0.1 that records every upgrade request (URL, headers) and
// counts connections, including how many were open at the same time.
const { listen } = require('./loopback');
const http = require('http');
const https = require('https');
const { WebSocketServer } = require('ws');

/**
 * startRecordingServer({ tls: {key, cert}, port, autoPong, refuse: 401, handleProtocols, onConnection })
 * -> { port, url, upgrades, connections, open, maxOpen, sockets, wss, close(), stop() }
 */
async function startRecordingServer(options = {}) {
  const state = options.state || { upgrades: [], connections: 0, open: 0, maxOpen: 0 };
  const server = options.tls
    ? https.createServer({ key: options.tls.key, cert: options.tls.cert })
    : http.createServer();
  const wss = new WebSocketServer({
    noServer: true,
    autoPong: options.autoPong !== false,
    handleProtocols: options.handleProtocols,
  });
  const sockets = new Set();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('upgrade', (req, socket, head) => {
    state.upgrades.push({ url: req.url, headers: req.headers, servername: req.socket.servername });
    const refuse = typeof options.refuse === 'function' ? options.refuse(req) : options.refuse;
    if (refuse) {
      const extra = options.retryAfter ? `Retry-After: ${options.retryAfter}\r\n` : '';
      socket.end(`HTTP/1.1 ${refuse} Refused\r\n${extra}Content-Length: 0\r\nConnection: close\r\n\r\n`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      state.connections++;
      state.open++;
      state.maxOpen = Math.max(state.maxOpen, state.open);
      ws.on('close', () => {
        state.open--;
      });
      ws.on('error', () => {});
      wss.emit('connection', ws, req);
      if (options.onConnection) options.onConnection(ws, req);
    });
  });
  const port = await listen(server, options.port || 0);
  const scheme = options.tls ? 'wss' : 'ws';
  return Object.assign(state, {
    port,
    url: `${scheme}://127.0.0.1:${port}`,
    wss,
    server,
    /** Stops the server, cutting every socket (like a crash or restart). */
    close() {
      for (const ws of wss.clients) ws.terminate();
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  });
}

/** Waits until check() is truthy, polling; rejects with `what` after ms. */
async function waitFor(check, what, ms = 5000) {
  const end = Date.now() + ms;
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

module.exports = { startRecordingServer, waitFor };
