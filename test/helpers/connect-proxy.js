'use strict';
// A real HTTP proxy for tests: CONNECT tunnels (ws://, wss://, https://) and absolute-URI requests
// (plain http://). It records every request it handles and can demand Proxy-Authorization.
// Only loopback targets are served, so a test can never reach out of the machine through it.
const http = require('http');
const net = require('net');

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

/**
 * startConnectProxy({ auth: 'user:pass' }) -> { url, port, connects, requests, refused, close() }
 * connects: [{ target, headers }], requests: [{ url, headers }], refused: count of 407 answers.
 */
async function startConnectProxy(options = {}) {
  const expected = options.auth ? `Basic ${Buffer.from(options.auth).toString('base64')}` : undefined;
  const record = { connects: [], requests: [], refused: 0 };
  const sockets = new Set();
  const server = http.createServer();
  const authorised = (headers) => !expected || headers['proxy-authorization'] === expected;

  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  server.on('connect', (req, client, head) => {
    record.connects.push({ target: req.url, headers: req.headers });
    client.on('error', () => {});
    if (!authorised(req.headers)) {
      record.refused++;
      client.end(
        'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="test"\r\n' +
          'Content-Length: 0\r\nConnection: close\r\n\r\n',
      );
      return;
    }
    const m = /^(.+):(\d+)$/.exec(req.url);
    if (!m || !LOOPBACK.has(m[1])) {
      client.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    const upstream = net.connect(Number(m[2]), m[1].replace(/^\[|\]$/g, ''));
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.once('connect', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head && head.length) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
  });

  server.on('request', (req, res) => {
    record.requests.push({ url: req.url, headers: req.headers });
    if (!authorised(req.headers)) {
      record.refused++;
      res.writeHead(407, { 'Proxy-Authenticate': 'Basic realm="test"', 'Content-Length': 0 });
      res.end();
      return;
    }
    let target;
    try {
      target = new URL(req.url);
    } catch {
      target = undefined;
    }
    if (!target || target.protocol !== 'http:' || !LOOPBACK.has(target.hostname)) {
      res.writeHead(400, { 'Content-Length': 0 });
      res.end();
      return;
    }
    const headers = { ...req.headers };
    delete headers['proxy-authorization'];
    delete headers['proxy-connection'];
    const upstream = http.request(target, { method: req.method, headers }, (upRes) => {
      res.writeHead(upRes.statusCode, upRes.headers);
      upRes.pipe(res);
    });
    upstream.on('error', () => {
      res.writeHead(502, { 'Content-Length': 0 });
      res.end();
    });
    req.pipe(upstream);
  });

  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = server.address().port;
  const credentials = options.auth ? `${options.auth.split(':').map(encodeURIComponent).join(':')}@` : '';
  return Object.assign(record, {
    port,
    url: `http://127.0.0.1:${port}`,
    /** The proxy URL with the credentials it requires (when it requires some). */
    authUrl: `http://${credentials}127.0.0.1:${port}`,
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  });
}

/** Every environment variable that can choose a proxy (proxy-from-env's and npm's). */
const PROXY_VARS = [
  'https_proxy',
  'HTTPS_PROXY',
  'http_proxy',
  'HTTP_PROXY',
  'no_proxy',
  'NO_PROXY',
  'all_proxy',
  'ALL_PROXY',
  'npm_config_https_proxy',
  'npm_config_http_proxy',
  'npm_config_proxy',
  'npm_config_no_proxy',
];

/** Removes every proxy variable from the environment; the returned function puts them back as they were. */
function clearProxyEnv() {
  const saved = {};
  for (const name of PROXY_VARS) {
    saved[name] = process.env[name];
    delete process.env[name];
  }
  return () => {
    for (const name of PROXY_VARS) {
      if (saved[name] === undefined) delete process.env[name];
      else process.env[name] = saved[name];
    }
  };
}

module.exports = { startConnectProxy, clearProxyEnv };
