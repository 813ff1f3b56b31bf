'use strict';
// The README quick start: `npm start` (scripts/start.js) starts Node-RED with the demo flow and
// prints a token and a client command that really work. Runs with its own port and user dir.
const assert = require('assert');
const { spawn, execFile } = require('child_process');
const fs = require('fs');
const http = require('http');
const path = require('path');
const jose = require('jose');
const { ROOT, freePort, makeUserDir, removeDir } = require('../helpers/node-red-process');
const { connect, closeAll } = require('../helpers/ws-client');

describe('e2e: npm start (scripts/start.js)', function () {
  this.timeout(60000);
  let userDir;
  let child;
  let output = '';
  let port;
  let exited;
  let killGroup;

  before(async function () {
    userDir = makeUserDir('wsplus-start-');
    port = await freePort();
    child = spawn(process.execPath, [path.join(ROOT, 'scripts', 'start.js')], {
      cwd: ROOT,
      env: { ...process.env, PORT: String(port), WSPLUS_DEMO_USERDIR: userDir },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // its own process group, so node-red (its child) is stopped with it
    });
    exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    // an interrupted run must not leave the demo Node-RED behind: kill the whole group on exit
    killGroup = () => {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    process.once('exit', killGroup);
    child.stdout.on('data', (c) => (output += c));
    child.stderr.on('data', (c) => (output += c));
    const deadline = Date.now() + 45000;
    while (!/demo is running[\s\S]*Stop with Ctrl\+C/.test(output)) {
      if (child.exitCode !== null) throw new Error(`start.js exited early:\n${output}`);
      if (Date.now() > deadline) throw new Error(`start.js did not get ready:\n${output.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 150));
    }
  });

  after(async function () {
    if (child && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        // already gone
      }
      const timer = setTimeout(() => {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }, 5000);
      await exited;
      clearTimeout(timer);
    }
    // once node-red (the group's other member) is gone too, there is nothing left to kill on exit
    if (killGroup && child.exitCode !== null) {
      const stillUp = await connect(`ws://127.0.0.1:${port}/ws/echo`).then((r) => (closeAll([r.ws]), true), () => false);
      if (!stillUp) process.removeListener('exit', killGroup);
    }
    removeDir(userDir);
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
      execFile('/bin/sh', ['-c', command], { cwd: userDir, timeout: 10000 }, (err, out, errOut) => (err ? reject(new Error(`${err.message}\n${out}${errOut}`)) : resolve(out)));
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
    assert.strictEqual(fs.realpathSync(path.join(userDir, 'node_modules', 'node-red-contrib-websocket-plus')), fs.realpathSync(ROOT));
    const secret = fs.readFileSync(path.join(userDir, 'demo-secret.txt'), 'utf8').trim();
    assert.ok(secret.length >= 32);
    assert.ok(!output.includes(secret), 'the secret itself is never printed');
    assert.match(fs.readFileSync(path.join(userDir, 'settings.js'), 'utf8'), /"uiHost": "127\.0\.0\.1"/);
  });

  it('stops Node-RED when it is stopped', async function () {
    process.kill(child.pid, 'SIGTERM'); // only start.js: it must pass the signal on to node-red
    const result = await Promise.race([exited, new Promise((r) => setTimeout(() => r('timeout'), 10000))]);
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

  it('says the port is in use on stderr, exits non-zero and sends nothing to the process that owns it', async function () {
    const { port } = occupier.address();
    child = spawn(process.execPath, [path.join(ROOT, 'scripts', 'start.js')], {
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
  });
});
