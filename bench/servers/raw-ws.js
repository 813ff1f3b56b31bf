'use strict';
// Contender: a hand-rolled `ws` server, the limit for any server. /echo echoes, /bcast sends
// every message to every client on /bcast. With BENCH_AUTH=hs256 the handshake verifies an HS256
// JWT from the `token` query parameter with jose in an async verifyClient (401 on failure).
const http = require('http');
const crypto = require('crypto');
// Experiments only: BENCH_WS_MODULE picks another copy of ws (e.g. the ws 7 Node-RED bundles).
const ws = require(process.env.BENCH_WS_MODULE || 'ws');
const WebSocketServer = ws.WebSocketServer || ws.Server;
const { serve, markHandlers } = require('../lib/ipc');

async function main() {
  const auth = process.env.BENCH_AUTH || 'none';
  let verifyClient;
  if (auth === 'hs256') {
    const jose = require('jose');
    // Imported once, as a careful hand-written server would (jose would import raw bytes per token).
    const key = await crypto.webcrypto.subtle.importKey(
      'raw',
      new TextEncoder().encode(process.env.BENCH_HS_SECRET),
      { name: 'HMAC', hash: 'SHA-256' },
      false,
      ['verify'],
    );
    verifyClient = (info, callback) => {
      const token = new URL(info.req.url, 'http://localhost').searchParams.get('token');
      if (!token) return callback(false, 401);
      jose.jwtVerify(token, key, { algorithms: ['HS256'] }).then(
        () => callback(true),
        () => callback(false, 401),
      );
    };
  }
  const common = { noServer: true, perMessageDeflate: false, verifyClient };
  const echo = new WebSocketServer({ ...common, clientTracking: false });
  const bcast = new WebSocketServer({ ...common, clientTracking: true });
  echo.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  bcast.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => {
      for (const client of bcast.clients) client.send(data, { binary: isBinary });
    });
  });
  const servers = { '/echo': echo, '/bcast': bcast };
  const server = http.createServer((req, res) => {
    res.writeHead(404);
    res.end();
  });
  server.on('upgrade', (req, socket, head) => {
    const q = req.url.indexOf('?');
    const wss = servers[q === -1 ? req.url : req.url.slice(0, q)];
    if (!wss) {
      socket.destroy();
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  serve({ ...markHandlers() });
  process.send({ type: 'ready', port: server.address().port, paths: { echo: '/echo', bcast: '/bcast' } });
}

main().catch((err) => {
  process.send({ type: 'fatal', error: String((err && err.stack) || err) });
  process.exit(1);
});
