'use strict';
// The README quick start: `npm start` (scripts/start.js) starts Node-RED with the demo flow and
// prints a token and a client command that really work; its demo page and tenant listener do what
// the page says; a taken port is reported, not deployed into. Runs with its own port and user dir.
const assert = require('assert');
const { spawn, execFile } = require('child_process');
const fs = require('fs');
const http = require('http');
const path = require('path');
const jose = require('jose');
const { ROOT, makeUserDir, removeDir } = require('../helpers/node-red-process');
const { START_JS, startDemo } = require('../helpers/start-script');
const { connect, waitForMessages, closeAll } = require('../helpers/ws-client');

describe('e2e: npm start (scripts/start.js)', function () {
  this.timeout(60000);
  let demo;
  let output = '';
  let port;
  let userDir;
  const sockets = [];

  before(async function () {
    demo = await startDemo();
    ({ port, userDir } = demo);
    output = demo.output();
  });

  after(async function () {
    closeAll(sockets);
    if (demo) await demo.stop();
  });

  it('prints a demo token for tenant "demo" that expires in about an hour', function () {
    const token = output.match(/^(eyJ[\w-]+\.[\w-]+\.[\w-]+)$/m)?.[1];
    assert.ok(token, `no token in:\n${output.slice(-2000)}`);
    const claims = jose.decodeJwt(token);
    assert.strictEqual(claims.tenant_id, 'demo');
    const ttl = claims.exp - Math.floor(Date.now() / 1000);
    assert.ok(ttl > 3500 && ttl <= 3600, `exp in ${ttl} s`);
    assert.strictEqual(jose.decodeProtectedHeader(token).alg, 'HS256');
  });

  it('the printed client command gets its message echoed by the deployed demo flow', async function () {
    const command = output.match(/^(node -e .*)$/m)?.[1];
    assert.ok(command, 'no client command printed');
    assert.ok(command.includes(`ws://127.0.0.1:${port}/ws/echo?token=`));
    const stdout = await new Promise((resolve, reject) => {
      execFile('/bin/sh', ['-c', command], { cwd: userDir, timeout: 10000 }, (err, out, errOut) =>
        err ? reject(new Error(`${err.message}\n${out}${errOut}`)) : resolve(out),
      );
    });
    assert.strictEqual(stdout.trim(), 'echo: hello from the demo client');
  });

  it('refuses a handshake without a valid token (HTTP 401)', async function () {
    const r = await connect(`ws://127.0.0.1:${port}/ws/echo?token=not-a-token`);
    closeAll([r.ws]);
    assert.strictEqual(r.opened, false);
    assert.strictEqual(r.status, 401);
  });

  it('sets up its own user dir: package linked, demo secret stored, settings on 127.0.0.1', function () {
    const pkg = JSON.parse(fs.readFileSync(path.join(userDir, 'package.json'), 'utf8'));
    assert.ok(pkg.dependencies['node-red-contrib-websocket-plus']);
    assert.strictEqual(
      fs.realpathSync(path.join(userDir, 'node_modules', 'node-red-contrib-websocket-plus')),
      fs.realpathSync(ROOT),
    );
    const secret = fs.readFileSync(path.join(userDir, 'demo-secret.txt'), 'utf8').trim();
    assert.ok(secret.length >= 32);
    assert.ok(!output.includes(secret), 'the secret itself is never printed');
    assert.match(fs.readFileSync(path.join(userDir, 'settings.js'), 'utf8'), /"uiHost": "127\.0\.0\.1"/);
  });

  it('serves the demo page and the demo-only tokens for tenant A and B from its flow', async function () {
    const page = await fetch(`http://127.0.0.1:${port}/demo`, { signal: AbortSignal.timeout(10000) });
    assert.strictEqual(page.status, 200);
    assert.match(page.headers.get('content-type'), /^text\/html/);
    const html = await page.text();
    assert.match(html, /id="pane-1"[\s\S]*id="pane-2"[\s\S]*id="tampered"/);
    assert.match(output, new RegExp(`Demo page: http://127\\.0\\.0\\.1:${port}/demo\\b`));
    assert.match(output, new RegExp(`http://127\\.0\\.0\\.1:${port}/demo/tokens`));

    const res = await fetch(`http://127.0.0.1:${port}/demo/tokens`, { signal: AbortSignal.timeout(10000) });
    assert.strictEqual(res.status, 200);
    assert.strictEqual(res.headers.get('cache-control'), 'no-store');
    const { tenants } = await res.json();
    const secret = new TextEncoder().encode(fs.readFileSync(path.join(userDir, 'demo-secret.txt'), 'utf8').trim());
    for (const [label, tenant] of [
      ['A', 'tenant-a'],
      ['B', 'tenant-b'],
    ]) {
      const { payload } = await jose.jwtVerify(tenants[label].token, secret, { algorithms: ['HS256'] });
      assert.strictEqual(payload.tenant_id, tenant);
      assert.ok(payload.exp - Math.floor(Date.now() / 1000) <= 3600);
    }
  });

  it(
    'its tenant listener broadcasts what a tenant sends ' + 'to that tenant only, and refuses a tampered token',
    async function () {
      const { tenants } = await (
        await fetch(`http://127.0.0.1:${port}/demo/tokens`, { signal: AbortSignal.timeout(10000) })
      ).json();
      const url = (token) => `ws://127.0.0.1:${port}/ws/tenants?token=${token}`;
      const a1 = await connect(url(tenants.A.token));
      const a2 = await connect(url(tenants.A.token));
      const b = await connect(url(tenants.B.token));
      sockets.push(a1.ws, a2.ws, b.ws);
      assert.ok(a1.opened && a2.opened && b.opened);
      const chat = (ws) => ws.messages.map((m) => JSON.parse(m)).filter((m) => m.type === 'message');
      const until = async (ws, n) => {
        for (let i = 0; i < 50 && chat(ws).length < n; i++) await waitForMessages(ws, ws.messages.length + 1, 3000);
        return chat(ws);
      };
      a1.ws.send('hello from A');
      assert.deepStrictEqual(await until(a2.ws, 1), [
        { type: 'message', tenant: 'tenant-a', user: 'visitor-a', text: 'hello from A' },
      ]);
      // B's own message comes after anything written to B before it: A's broadcast would be first
      b.ws.send('hello from B');
      assert.deepStrictEqual(await until(b.ws, 1), [
        { type: 'message', tenant: 'tenant-b', user: 'visitor-b', text: 'hello from B' },
      ]);
      assert.deepStrictEqual(
        (await until(a1.ws, 1)).map((m) => m.text),
        ['hello from A'],
      );

      const [header, payload, signature] = tenants.A.token.split('.');
      const claims = { ...JSON.parse(Buffer.from(payload, 'base64url')), tenant_id: 'tenant-b' };
      const tampered = await connect(
        url(`${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${signature}`),
      );
      sockets.push(tampered.ws);
      assert.strictEqual(tampered.opened, false);
      assert.strictEqual(tampered.status, 401);
    },
  );

  it('stops Node-RED when it is stopped', async function () {
    process.kill(demo.child.pid, 'SIGTERM'); // only start.js: it must pass the signal on to node-red
    let timer;
    const result = await Promise.race([
      demo.exited,
      new Promise((r) => (timer = setTimeout(() => r('timeout'), 10000))),
    ]);
    clearTimeout(timer);
    assert.notStrictEqual(result, 'timeout', 'start.js did not exit');
    const r = await connect(`ws://127.0.0.1:${port}/ws/echo`).catch((err) => ({ error: err }));
    assert.ok(r.error && /ECONNREFUSED/.test(r.error.message), 'node-red is still listening');
  });
});

describe('e2e: npm start (scripts/start.js) when the port is taken', function () {
  this.timeout(60000);
  let occupier;
  let userDir;
  let child;
  const requests = [];

  before(async function () {
    // A plain server that answers like a Node-RED admin API would, so a start script that talks to
    // whatever owns the port would get far enough to deploy into it.
    occupier = http.createServer((req, res) => {
      requests.push(`${req.method} ${req.url}`);
      req.resume();
      const body = req.url.startsWith('/flows') && req.method === 'GET' ? '[]' : '{}';
      res.writeHead(200, { 'content-type': 'application/json' }).end(body);
    });
    await new Promise((resolve, reject) => occupier.once('error', reject).listen(0, '127.0.0.1', resolve));
    userDir = makeUserDir('wsplus-start-taken-');
  });

  after(async function () {
    if (child && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    occupier.closeAllConnections();
    await new Promise((resolve) => occupier.close(resolve));
    removeDir(userDir);
  });

  it(
    'says the port is in use on stderr, exits non-zero ' + 'and sends nothing to the process that owns it',
    async function () {
      const { port } = occupier.address();
      child = spawn(process.execPath, [START_JS], {
        cwd: ROOT,
        env: { ...process.env, PORT: String(port), WSPLUS_DEMO_USERDIR: userDir },
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c) => (stdout += c));
      child.stderr.on('data', (c) => (stderr += c));
      const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
      let timer;
      const result = await Promise.race([exited, new Promise((r) => (timer = setTimeout(() => r('timeout'), 45000)))]);
      clearTimeout(timer);
      assert.notStrictEqual(result, 'timeout', `start.js is still running:\n${stdout}${stderr}`);
      assert.notStrictEqual(result.code, 0, `exit ${JSON.stringify(result)}`);
      assert.ok(result.code !== null, `killed by ${result.signal}`);
      assert.match(stderr, new RegExp(`127\\.0\\.0\\.1:${port} is already in use`));
      assert.match(stderr, /PORT=\d+ npm start/, 'tells how to pick another port');
      assert.doesNotMatch(stdout + stderr, /demo is running/);
      assert.deepStrictEqual(requests, [], 'start.js talked to the process that owns the port');
    },
  );
});
