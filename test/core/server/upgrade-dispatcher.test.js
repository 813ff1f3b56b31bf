'use strict';
const assert = require('assert');
const http = require('http');
const net = require('net');
const { spawn } = require('child_process');
const { built, builtPath } = require('../../helpers/built');
const { dispatcherFor, joinNodeRoot, requestPathname } = built('core/server/upgrade-dispatcher');

/**
 * A plain http.Server (no Node-RED, no error handler of its own) in a child process: a misconfigured
 * path answered by refuseUpgrades and a core listener that refuses without a token. Each connection
 * is held unread for a moment, as on a busy event loop, so a client's reset arrives before the
 * answer is written: the write then fails with ECONNRESET/EPIPE on the socket.
 */
const PLAIN_SERVER = `
const http = require('http');
const { refuseUpgrades } = require(${JSON.stringify(builtPath('core/server/upgrade-dispatcher'))});
const { WebSocketListener } = require(${JSON.stringify(builtPath('core/server/listener'))});
const { createTokenVerifier } = require(${JSON.stringify(builtPath('core/auth/token-verifier'))});
const server = http.createServer((req, res) => res.end());
server.on('connection', (socket) => {
  socket.pause();
  setTimeout(() => socket.resume(), 40);
});
refuseUpgrades(server, '/ws/broken', 503);
const listener = new WebSocketListener({
  server, path: '/ws/live', verifier: createTokenVerifier({ mode: 'hs256', secret: 'x'.repeat(40) }),
  tenant: { from: 'claim', claim: 'tenant_id', staticTenantId: '' }, scope: 'tenant', heartbeatMs: 0,
});
listener.start();
server.listen(0, '127.0.0.1', () => process.stdout.write('PORT ' + server.address().port + '\\n'));
`;

function upgradeRequest(target) {
  return [
    `GET ${target} HTTP/1.1`,
    'Host: 127.0.0.1',
    'Upgrade: websocket',
    'Connection: Upgrade',
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
    'Sec-WebSocket-Version: 13',
    '',
    '',
  ].join('\r\n');
}

/** Sends a whole upgrade request and resets the connection at once (RST, not FIN). */
function upgradeAndReset(port, target) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write(upgradeRequest(target));
      socket.resetAndDestroy();
    });
    socket.on('error', () => undefined);
    socket.on('close', resolve);
  });
}

/** The first response line to a whole upgrade request, or '' when the server closed without one. */
function firstLine(port, target) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(upgradeRequest(target)));
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('no answer'));
    }, 5000);
    socket.on('data', (chunk) => (data += chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(data.split('\r\n')[0]);
    });
  });
}

describe('core/upgrade-dispatcher', function () {
  it('adds one upgrade listener for many paths and removes it with the last', function () {
    const server = http.createServer();
    const baseline = server.listenerCount('upgrade');
    const h1 = () => {};
    const h2 = () => {};
    dispatcherFor(server).register('/a', h1);
    dispatcherFor(server).register('/b', h2);
    assert.strictEqual(server.listenerCount('upgrade'), baseline + 1);
    assert.throws(
      () => dispatcherFor(server).register('/a/', h2),
      (err) => err.code === 'PATH_CONFLICT',
    );
    dispatcherFor(server).unregister('/a', h2); // not the owner: ignored
    assert.deepStrictEqual(dispatcherFor(server).paths.sort(), ['/a', '/b']);
    dispatcherFor(server).unregister('/a', h1);
    dispatcherFor(server).unregister('/b', h2);
    assert.strictEqual(server.listenerCount('upgrade'), baseline);
  });

  it('dispatches by pathname and leaves other paths alone', function () {
    const server = http.createServer();
    const seen = [];
    const handler = (req) => seen.push(req.url);
    dispatcherFor(server).register('/ws', handler);
    server.emit('upgrade', { url: '/ws?token=x' }, {}, Buffer.alloc(0));
    server.emit('upgrade', { url: '/other' }, {}, Buffer.alloc(0));
    server.emit('upgrade', { url: '/ws/deeper' }, {}, Buffer.alloc(0));
    assert.deepStrictEqual(seen, ['/ws?token=x']);
    dispatcherFor(server).unregister('/ws', handler);
  });

  it('joins httpNodeRoot like core', function () {
    assert.strictEqual(joinNodeRoot('/', 'ws/a'), '/ws/a');
    assert.strictEqual(joinNodeRoot('/api', '/ws/a'), '/api/ws/a');
    assert.strictEqual(joinNodeRoot('/api/', 'ws/a'), '/api/ws/a');
    assert.strictEqual(joinNodeRoot(undefined, 'x'), '/x');
    assert.strictEqual(requestPathname('http://evil/x'), undefined);
  });

  it('a client that resets while a refusal is written cannot crash a plain http.Server', async function () {
    this.timeout(30000);
    const child = spawn(process.execPath, ['-e', PLAIN_SERVER], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const port = await new Promise((resolve, reject) => {
        child.stdout.on('data', (chunk) => {
          const m = /PORT (\d+)/.exec(String(chunk));
          if (m) resolve(Number(m[1]));
        });
        exited.then((code) => reject(new Error(`server exited (${code}): ${stderr}`)));
      });
      const ROUNDS = 40;
      for (let i = 0; i < ROUNDS && child.exitCode === null; i++) {
        await Promise.all([
          upgradeAndReset(port, '/ws/broken'),
          upgradeAndReset(port, '/ws/live'),
          upgradeAndReset(port, '/ws/broken'),
        ]);
      }
      assert.strictEqual(child.exitCode, null, `the server crashed:\n${stderr.split('\n').slice(0, 8).join('\n')}`);
      // Still serving: both paths answer a well-behaved client.
      assert.strictEqual(await firstLine(port, '/ws/broken'), 'HTTP/1.1 503 Service Unavailable');
      assert.strictEqual(await firstLine(port, '/ws/live'), 'HTTP/1.1 401 Unauthorized');
      assert.strictEqual(child.exitCode, null, stderr);
      assert.strictEqual(stderr, '');
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
  });
});
