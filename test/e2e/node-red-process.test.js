'use strict';
// End to end: a real `node-red` 4 process (red.js on this Node) with the built package installed
// in its user dir; the flow is deployed through the admin API and real ws clients talk to it.
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const {
  makeUserDir,
  removeDir,
  writeSettings,
  startNodeRed,
  problemLines,
  PACKAGE_NAME,
  RUNTIMES,
} = require('../helpers/node-red-process');
const { connect, waitForMessages, waitForClose, expectNoMessage, closeAll } = require('../helpers/ws-client');
const { signHS256 } = require('../helpers/tokens');
const { installPackedCopy } = require('../helpers/package-tarball');
const { LISTENER_DEFAULTS } = require('../helpers/built').built('core/flow/defaults');

const SECRET = 'e2e-process-secret-0123456789abcdef';
const OTHER_SECRET = 'not-the-secret-0123456789abcdef0123';

/** An HS256 listener with every other property at its default (the editor's), session scope. */
function listener(id, props) {
  return { id, type: 'websocket-plus-listener', ...LISTENER_DEFAULTS, path: '/ws/x', scope: 'session', ...props };
}

/** Echo on /ws/echo (session scope) and a tenant-scoped chat on /ws/chat, both HS256. */
function flow() {
  return [
    { id: 'e2e-tab', type: 'tab', label: 'e2e' },
    { ...listener('e2e-l-echo', { path: '/ws/echo', scope: 'session' }), credentials: { secret: SECRET } },
    {
      id: 'e2e-in-echo',
      type: 'websocket-plus in',
      z: 'e2e-tab',
      name: '',
      server: 'e2e-l-echo',
      client: '',
      x: 150,
      y: 80,
      wires: [['e2e-out-echo']],
    },
    {
      id: 'e2e-out-echo',
      type: 'websocket-plus out',
      z: 'e2e-tab',
      name: '',
      server: 'e2e-l-echo',
      client: '',
      x: 400,
      y: 80,
      wires: [],
    },
    { ...listener('e2e-l-chat', { path: '/ws/chat', scope: 'tenant' }), credentials: { secret: SECRET } },
    {
      id: 'e2e-in-chat',
      type: 'websocket-plus in',
      z: 'e2e-tab',
      name: '',
      server: 'e2e-l-chat',
      client: '',
      x: 150,
      y: 160,
      wires: [['e2e-out-chat']],
    },
    {
      id: 'e2e-out-chat',
      type: 'websocket-plus out',
      z: 'e2e-tab',
      name: '',
      server: 'e2e-l-chat',
      client: '',
      x: 400,
      y: 160,
      wires: [],
    },
  ];
}

/** Connects until the listener answers (a deploy starts flows asynchronously); bounded. */
async function connectWhenReady(url, ms = 10000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const result = await connect(url);
    if (result.status !== 404 || Date.now() > deadline) return result;
    await new Promise((r) => setTimeout(r, 150));
  }
}

describe(
  `e2e: a real node-red process (${RUNTIMES['node-red-4'].label} ` + `on Node ${process.versions.node})`,
  function () {
    this.timeout(60000);
    let userDir;
    let red;
    const sockets = [];
    const tokens = [];
    let earlierOutput = '';
    const wsUrl = (p, token) =>
      `${red.url.replace(/^http/, 'ws')}${p}${token === undefined ? '' : `?token=${encodeURIComponent(token)}`}`;
    const sign = async (claims, options) => {
      const t = await signHS256(SECRET, claims, options);
      tokens.push(t);
      return t;
    };

    before(async function () {
      userDir = makeUserDir();
      writeSettings(userDir);
      await installPackedCopy(userDir); // the packed package, as published
      red = await startNodeRed({ runtime: 'node-red-4', userDir });
    });

    after(async function () {
      closeAll(sockets);
      if (red) await red.stop();
      removeDir(userDir);
    });

    it('loads the package: GET /nodes lists the types of this module', async function () {
      const res = await red.api('GET', '/nodes', { headers: { accept: 'application/json' } });
      assert.strictEqual(res.status, 200);
      const sets = res.json.filter((s) => s.module === PACKAGE_NAME);
      assert.strictEqual(sets.length, 1, `node sets of ${PACKAGE_NAME}: ${JSON.stringify(sets)}`);
      assert.strictEqual(sets[0].enabled, true);
      assert.strictEqual(sets[0].err, undefined, `load error: ${sets[0].err}`);
      assert.deepStrictEqual([...sets[0].types].sort(), [
        'websocket-plus control',
        'websocket-plus in',
        'websocket-plus out',
        'websocket-plus-client',
        'websocket-plus-listener',
      ]);
    });

    it('deploys a flow through the admin API (credentials inline) without errors', async function () {
      const mark = red.output.length;
      await red.deploy(flow());
      await red.waitForLog((out) => /Started flows/.test(out.slice(mark)));
      assert.deepStrictEqual(problemLines(red.logSince(mark)), []);
      // the deployed flow as the admin API exports it: the secret is stored, never exported
      const res = await red.api('GET', '/flows');
      assert.strictEqual(res.status, 200);
      assert.ok(res.json.some((n) => n.id === 'e2e-l-echo' && n.type === 'websocket-plus-listener'));
      assert.ok(!res.text.includes(SECRET), 'GET /flows must not contain the secret');
      const echo = res.json.find((n) => n.id === 'e2e-l-echo');
      assert.strictEqual(echo.credentials, undefined);
    });

    it('hs256: a valid token connects and its message is echoed', async function () {
      const token = await sign({ tenant_id: 'acme', sub: 'alice' });
      const r = await connectWhenReady(wsUrl('/ws/echo', token));
      assert.strictEqual(r.opened, true, `refused with HTTP ${r.status}`);
      sockets.push(r.ws);
      r.ws.send('hello over a real node-red');
      assert.deepStrictEqual(await waitForMessages(r.ws, 1), ['hello over a real node-red']);
      r.ws.send(Buffer.from([1, 2, 3]));
      const got = await waitForMessages(r.ws, 2);
      assert.ok(Buffer.isBuffer(got[1]) && got[1].equals(Buffer.from([1, 2, 3])), 'binary frame echoed as binary');
    });

    it('hs256: bad, wrongly signed, expired and missing tokens get HTTP 401 and no socket', async function () {
      const wrongKey = await signHS256(OTHER_SECRET, { tenant_id: 'acme' });
      const expired = await sign({ tenant_id: 'acme' }, { exp: Math.floor(Date.now() / 1000) - 3600 });
      const noTenant = await sign({ sub: 'bob' });
      tokens.push(wrongKey);
      for (const [what, token] of [
        ['garbage', 'not-a-jwt'],
        ['wrong key', wrongKey],
        ['expired', expired],
        ['no tenant claim', noTenant],
        ['missing', undefined],
      ]) {
        const r = await connect(wsUrl('/ws/echo', token));
        sockets.push(r.ws);
        assert.strictEqual(r.opened, false, `${what}: must not open`);
        assert.strictEqual(r.status, 401, `${what}: HTTP ${r.status}`);
      }
    });

    it('tenant scope: a message reaches every connection of its tenant and none of another tenant', async function () {
      const [a1, a2, g1] = await Promise.all([
        sign({ tenant_id: 'acme', sub: 'a1' }),
        sign({ tenant_id: 'acme', sub: 'a2' }),
        sign({ tenant_id: 'globex', sub: 'g1' }),
      ]).then((ts) => Promise.all(ts.map((t) => connectWhenReady(wsUrl('/ws/chat', t)))));
      for (const r of [a1, a2, g1]) {
        assert.strictEqual(r.opened, true, `refused with HTTP ${r.status}`);
        sockets.push(r.ws);
      }
      a1.ws.send('acme only');
      assert.deepStrictEqual(await waitForMessages(a1.ws, 1), ['acme only']);
      assert.deepStrictEqual(await waitForMessages(a2.ws, 1), ['acme only']);
      await expectNoMessage(g1.ws, 300);

      g1.ws.send('globex only');
      assert.deepStrictEqual(await waitForMessages(g1.ws, 1), ['globex only']);
      await expectNoMessage(a1.ws, 300);
      await expectNoMessage(a2.ws, 300);
    });

    it('paths that are not ours are left alone: the editor comms socket still works', async function () {
      const r = await connect(wsUrl('/comms'));
      assert.strictEqual(r.opened, true, `editor comms refused with HTTP ${r.status}`);
      closeAll([r.ws]);
    });

    it('a restart keeps the stored secret: the flow works again after node-red restarts', async function () {
      const open = sockets.filter((s) => s.readyState === 1);
      assert.ok(open.length >= 4, `open listener sockets: ${open.length}`);
      const closes = open.map((s) => waitForClose(s, 10000));
      await red.stop();
      earlierOutput += red.output;
      // listener sockets are closed with 1001 (going away) when the runtime stops
      const codes = (await Promise.all(closes)).map((c) => c.code);
      assert.deepStrictEqual(
        codes,
        open.map(() => 1001),
      );
      assert.ok(fs.existsSync(path.join(userDir, 'flows_cred.json')), 'credentials stored in the user dir');
      red = await startNodeRed({ runtime: 'node-red-4', userDir });
      const token = await sign({ tenant_id: 'acme', sub: 'alice' });
      const r = await connectWhenReady(wsUrl('/ws/echo', token));
      assert.strictEqual(r.opened, true, `refused with HTTP ${r.status}`);
      sockets.push(r.ws);
      r.ws.send('again');
      assert.deepStrictEqual(await waitForMessages(r.ws, 1), ['again']);
    });

    it('never logs a token', function () {
      assert.ok(tokens.length >= 5);
      const output = earlierOutput + red.output;
      assert.ok(/Started flows/.test(output));
      for (const t of tokens) {
        assert.ok(!output.includes(t), 'a token appeared in the node-red log');
        assert.ok(!output.includes(t.split('.')[2]), 'a token signature appeared in the node-red log');
      }
    });
  },
);
