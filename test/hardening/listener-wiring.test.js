'use strict';
// The hardening fields reach the listener through a real Node-RED runtime: origins, clockTolerance,
// publicKey (PEM text property), custom mode via settings.websocketPlusListener.verifyToken,
// per-URL JWKS caches, and the short-secret warning.
const assert = require('assert');
const { helper, load, wsUrl, collect, listenerNode } = require('../helpers/red');
const { connect, waitForMessages, waitForClose, closeAll } = require('../helpers/ws-client');
const { signHS256, makeKey, signWithKey, now } = require('../helpers/tokens');
const { startJwksServer } = require('../helpers/jwks-server');
const { spawnInstance } = require('../helpers/nr-instance');

const SECRET = 'wiring-secret-0123456789abcdef-0123456789ab';

function echo(props, id = 'l1', path = '/ws/wire') {
  return [
    listenerNode(id, { path, scope: 'session', ...props }),
    { id: `in-${id}`, type: 'websocket-plus in', server: id, client: '', wires: [[`out-${id}`, `h-${id}`]] },
    { id: `out-${id}`, type: 'websocket-plus out', server: id, client: '' },
    { id: `h-${id}`, type: 'helper' },
  ];
}

const errorsOf = (id) =>
  helper
    .log()
    .args.filter((a) => a[0].level === 20 && a[0].id === id)
    .map((a) => String(a[0].msg));
const warningsOf = (id) =>
  helper
    .log()
    .args.filter((a) => a[0].level === 30 && a[0].id === id)
    .map((a) => String(a[0].msg));

/** The HTTP answer a handshake attempt got ({status, body, ms}), compared on status and body. */
function assertAnswer(attempt, status, body) {
  assert.deepStrictEqual({ status: attempt.status, body: attempt.body }, { status, body }, JSON.stringify(attempt));
}

describe('hardening: listener node wiring', function () {
  this.timeout(20000);
  const open = [];
  before(() => helper.startServer());
  after(() => helper.stopServer());
  afterEach(async () => {
    closeAll(open.splice(0));
    helper.settings({});
    await helper.unload();
  });

  async function opened(path, query, headers) {
    const r = await connect(wsUrl(path, query), { ws: { headers } });
    if (r.ws) open.push(r.ws);
    return r;
  }

  it('origins: listed origin and no Origin connect, an unlisted one gets 403', async function () {
    await load(echo({ authMode: 'hs256', origins: 'https://app.example, https://admin.example:8443' }), {
      l1: { secret: SECRET },
    });
    const t = await signHS256(SECRET, { tenant_id: 'a' });
    assert.strictEqual((await opened('/ws/wire', `token=${t}`, { Origin: 'https://evil.example' })).status, 403);
    assert.strictEqual((await opened('/ws/wire', `token=${t}`, { Origin: 'https://admin.example' })).status, 403);
    assert.ok((await opened('/ws/wire', `token=${t}`, { Origin: 'https://admin.example:8443' })).opened);
    assert.ok((await opened('/ws/wire', `token=${t}`, { Origin: 'https://app.example' })).opened);
    assert.ok((await opened('/ws/wire', `token=${t}`)).opened);
  });

  it('origins: an entry that is not an origin (no scheme, "*", "null") is a configuration error', async function () {
    for (const bad of ['app.example', '*', 'null']) {
      await load(echo({ authMode: 'hs256', origins: `https://ok.example ${bad}` }), { l1: { secret: SECRET } });
      assert.strictEqual(helper.getNode('l1').listener, undefined, bad);
      assert.ok(
        errorsOf('l1').some((m) => /origins/.test(m)),
        JSON.stringify(errorsOf('l1')),
      );
      await helper.unload();
    }
  });

  it('clockTolerance: a token 3 s past exp passes with 10 s and is refused with 0 s', async function () {
    const t = await signHS256(SECRET, { tenant_id: 'a' }, { exp: now() - 3 });
    await load(echo({ authMode: 'hs256', clockTolerance: '0' }), { l1: { secret: SECRET } });
    assert.strictEqual((await opened('/ws/wire', `token=${t}`)).status, 401);
    await helper.unload();
    await load(echo({ authMode: 'hs256', clockTolerance: '10' }), { l1: { secret: SECRET } });
    const r = await opened('/ws/wire', `token=${t}`);
    assert.ok(r.opened, `status ${r.status}`);
    // accepted within the tolerance, the session still ends at exp (already past): 4001
    assert.strictEqual((await waitForClose(r.ws)).code, 4001);
  });

  it('clockTolerance: a negative or non-numeric value is a configuration error', async function () {
    await load(echo({ authMode: 'hs256', clockTolerance: '-1' }), { l1: { secret: SECRET } });
    assert.ok(
      errorsOf('l1').some((m) => /clockTolerance/.test(m)),
      JSON.stringify(errorsOf('l1')),
    );
    assert.strictEqual(helper.getNode('l1').listener, undefined);
  });

  it(
    'publickey: the PEM text property verifies ES256; ' + 'HS256 with the PEM and other keys are refused',
    async function () {
      const key = await makeKey('ES256', undefined);
      const other = await makeKey('ES256', undefined);
      await load(echo({ authMode: 'publickey', publicKey: key.publicPem }));
      const got = collect('h-l1');
      const r = await opened('/ws/wire', `token=${await signWithKey(key, { tenant_id: 'pk', sub: 'p' })}`);
      assert.ok(r.opened, `status ${r.status}`);
      r.ws.send('hi');
      await waitForMessages(r.ws, 1);
      assert.strictEqual(got[0]._session.tenantId, 'pk');
      assert.strictEqual(got[0]._session.authStatus, 'verified');
      assert.strictEqual(
        (await opened('/ws/wire', `token=${await signHS256(key.publicPem, { tenant_id: 'pk' })}`)).status,
        401,
      );
      assert.strictEqual(
        (await opened('/ws/wire', `token=${await signWithKey(other, { tenant_id: 'pk' })}`)).status,
        401,
      );
    },
  );

  it('publickey: RSA PEM accepts RS256', async function () {
    const key = await makeKey('RS256', undefined);
    await load(echo({ authMode: 'publickey', publicKey: key.publicPem }));
    assert.ok((await opened('/ws/wire', `token=${await signWithKey(key, { tenant_id: 'r' })}`)).opened);
  });

  it('publickey: a private key PEM is refused as configuration (never derived from)', async function () {
    const jose = require('jose');
    const key = await makeKey('ES256', undefined);
    const privatePem = await jose.exportPKCS8(key.privateKey);
    await load(echo({ authMode: 'publickey', publicKey: privatePem }));
    assert.strictEqual(helper.getNode('l1').listener, undefined);
    assert.ok(errorsOf('l1').length >= 1);
    // nothing serves the path: the handshake is not answered by us
    const r = await connect(wsUrl('/ws/wire', `token=${await signWithKey(key, { tenant_id: 'x' })}`), {
      ws: { handshakeTimeout: 500 },
    }).catch((e) => ({ error: e }));
    assert.ok(!r.opened);
    if (r.ws) r.ws.terminate();
  });

  it('publickey: an RSA key under 2048 bits is refused as configuration', async function () {
    const { publicKey } = require('crypto').generateKeyPairSync('rsa', { modulusLength: 1024 });
    await load(echo({ authMode: 'publickey', publicKey: publicKey.export({ type: 'spki', format: 'pem' }) }));
    assert.strictEqual(helper.getNode('l1').listener, undefined);
    assert.ok(
      errorsOf('l1').some((m) => /2048/.test(m)),
      JSON.stringify(errorsOf('l1')),
    );
  });

  it('custom: settings.websocketPlusListener.verifyToken decides; the tenant comes from its claims', async function () {
    const seen = [];
    helper.settings({
      websocketPlusListener: {
        verifyToken: async (token, req) => {
          seen.push({ token, url: req.url, host: req.headers.host });
          if (token === 'boom') throw new Error('verifier failure');
          if (token.startsWith('ok-')) return { sub: 'custom-user', tenant_id: token.slice(3) };
          return null;
        },
      },
    });
    await load(echo({ authMode: 'custom', scope: 'tenant' }));
    const got = collect('h-l1');
    const r = await opened('/ws/wire', 'token=ok-acme');
    assert.ok(r.opened, `status ${r.status}`);
    r.ws.send('x');
    await waitForMessages(r.ws, 1);
    assert.strictEqual(got[0]._session.tenantId, 'acme');
    assert.strictEqual(got[0]._session.subject, 'custom-user');
    assert.strictEqual(seen[0].token, 'ok-acme');
    assert.ok(seen[0].url.startsWith('/ws/wire?'));
    assert.strictEqual((await opened('/ws/wire', 'token=nope')).status, 401);
    assert.strictEqual((await opened('/ws/wire', 'token=boom')).status, 401);
    assert.strictEqual((await opened('/ws/wire', 'token=ok-')).status, 401, 'empty tenant from the verifier');
    assert.strictEqual((await opened('/ws/wire')).status, 401, 'no token never reaches the function');
    assert.strictEqual(seen.length, 4);
  });

  it('custom: without the settings function the listener reports an error and serves nothing', async function () {
    await load(echo({ authMode: 'custom' }));
    assert.strictEqual(helper.getNode('l1').listener, undefined);
    assert.ok(
      errorsOf('l1').some((m) => /custom/i.test(m)),
      JSON.stringify(errorsOf('l1')),
    );
  });

  it('jwks: two listeners with different JWKS URLs keep separate key caches (same kid)', async function () {
    const a = await makeKey('RS256', 'shared-kid');
    const b = await makeKey('RS256', 'shared-kid');
    const setA = await startJwksServer([a]);
    const setB = await startJwksServer([b]);
    try {
      await load([
        ...echo({ authMode: 'jwks', jwksUri: setA.url }, 'la', '/ws/a'),
        ...echo({ authMode: 'jwks', jwksUri: setB.url }, 'lb', '/ws/b'),
      ]);
      const ta = await signWithKey(a, { tenant_id: 't' });
      const tb = await signWithKey(b, { tenant_id: 't' });
      assert.ok((await opened('/ws/a', `token=${ta}`)).opened);
      assert.ok((await opened('/ws/b', `token=${tb}`)).opened);
      assert.strictEqual((await opened('/ws/a', `token=${tb}`)).status, 401);
      assert.strictEqual((await opened('/ws/b', `token=${ta}`)).status, 401);
      assert.strictEqual(setA.fetches, 1);
      assert.strictEqual(setB.fetches, 1);
    } finally {
      await setA.close();
      await setB.close();
    }
  });

  it('hs256: a secret shorter than 32 bytes works but warns (RFC 8725 §3.5)', async function () {
    await load(echo({ authMode: 'hs256' }), { l1: { secret: 'short-secret' } });
    assert.ok(
      warningsOf('l1').some((m) => /32/.test(m)),
      JSON.stringify(warningsOf('l1')),
    );
    assert.ok((await opened('/ws/wire', `token=${await signHS256('short-secret', { tenant_id: 'a' })}`)).opened);
    await helper.unload();
    await load(echo({ authMode: 'hs256' }), { l1: { secret: SECRET } });
    assert.deepStrictEqual(warningsOf('l1'), []);
  });
});

// Node-RED destroys an upgrade that nothing answered within settings.inboundWebSocketTimeout (5 s by
// default). Real Node-RED processes, each with its own setting: every handshake answer must be an
// HTTP status that arrives before that cut, never a bare hang-up.
describe('hardening: handshake answers arrive before Node-RED cuts the upgrade', function () {
  this.timeout(60000);
  let jwks;
  const runtimes = {};
  const attempts = {};
  const TOKEN = 'any-token';
  let jwt;

  function listener(id, path, props) {
    return [
      listenerNode(id, { path, scope: 'session', ...props }),
      { id: `in-${id}`, type: 'websocket-plus in', z: 'tab1', server: id, client: '', wires: [[`out-${id}`]] },
      { id: `out-${id}`, type: 'websocket-plus out', z: 'tab1', server: id, client: '', wires: [] },
    ];
  }
  // A site verifier that never settles: only the listener's handshake deadline can answer.
  const settingsModule = (extra) =>
    `module.exports = Object.assign(${JSON.stringify(extra)}, ` +
    '{ websocketPlusListener: { verifyToken: () => new Promise(() => {}) } });';

  /** One handshake: its HTTP status and body, or the error a client sees when the socket is cut. */
  async function attempt(url) {
    const started = Date.now();
    try {
      const r = await connect(url, { ws: { handshakeTimeout: 20000 } });
      r.ws.terminate();
      return { status: r.opened ? 101 : r.status, body: r.body, ms: Date.now() - started };
    } catch (err) {
      return { error: err.message, ms: Date.now() - started };
    }
  }

  before(async function () {
    const key = await makeKey('RS256', 'deadline-kid');
    jwt = await signWithKey(key, { tenant_id: 't' });
    jwks = await startJwksServer([key]);
    jwks.state.mode = 'hang';
    const flows = (withComms) => [
      { id: 'tab1', type: 'tab', label: 'deadline' },
      ...listener('lj', '/ws/jwks', { authMode: 'jwks', jwksUri: jwks.url }),
      ...listener('lc', '/ws/custom', { authMode: 'custom' }),
      ...(withComms ? listener('lcomms', '/comms', { authMode: 'none' }) : []),
    ];
    const started = await Promise.all([
      // Node-RED's defaults: inboundWebSocketTimeout unset (5 s), editor comms at /comms.
      spawnInstance({ flows: flows(true), settingsModule: settingsModule({ httpAdminRoot: '/', httpNodeRoot: '/' }) }),
      spawnInstance({ flows: flows(false), settingsModule: settingsModule({ inboundWebSocketTimeout: 2000 }) }),
    ]);
    [runtimes.standard, runtimes.short] = started;
    // READY comes before the flows have started: wait until every listener has shown its status.
    for (const nr of started) {
      for (const id of ['in-lj', 'in-lc']) await nr.waitForStatus(id, (s) => s.fill === 'green');
    }
    // All handshakes at once: the suite takes as long as the longest deadline, not their sum.
    attempts.standard = Promise.all([
      attempt(runtimes.standard.url('/ws/jwks', `token=${jwt}`)),
      attempt(runtimes.standard.url('/ws/custom', `token=${TOKEN}`)),
    ]);
    attempts.short = Promise.all([
      attempt(runtimes.short.url('/ws/jwks', `token=${jwt}`)),
      attempt(runtimes.short.url('/ws/custom', `token=${TOKEN}`)),
    ]);
  });

  after(async function () {
    await Promise.all(Object.values(runtimes).map((r) => r.stop()));
    await jwks?.close();
  });

  it(
    'default setting (5 s): a JWKS that never answers ' + 'gets 401 "keys unavailable", a hanging verifier 503',
    async function () {
      const [keys, deadline] = await attempts.standard;
      assertAnswer(keys, 401, 'keys unavailable');
      assertAnswer(deadline, 503, 'verification timed out');
      // The deadlines that answered: JWKS 3 s, handshake 4 s (a timer never fires early).
      assert.ok(keys.ms >= 2900, `JWKS timeout after ${keys.ms} ms`);
      assert.ok(deadline.ms >= 3900, `handshake deadline after ${deadline.ms} ms`);
    },
  );

  it('inboundWebSocketTimeout 2000: the deadline follows it down (503 at 1.5 s, JWKS 401 at 1.1 s)', async function () {
    const [keys, deadline] = await attempts.short;
    assertAnswer(keys, 401, 'keys unavailable');
    assertAnswer(deadline, 503, 'verification timed out');
    assert.ok(deadline.ms >= 1400, `handshake deadline after ${deadline.ms} ms`);
  });

  it("a listener on the editor's /comms is refused at deploy and the editor's comms keeps working", async function () {
    const nr = runtimes.standard;
    const status = await nr.waitForStatus('in-lcomms', (s) => s.fill === 'red');
    assert.match(status.text, /comms/);
    // The editor's own socket: Node-RED answers it alone, and replays the retained node statuses.
    const { ws, opened } = await connect(nr.url('/comms'));
    try {
      assert.strictEqual(opened, true);
      ws.send(JSON.stringify({ subscribe: 'status/#' }));
      const [first] = await waitForMessages(ws, 1, 5000);
      const batch = JSON.parse(first);
      assert.ok(Array.isArray(batch), first);
      const mine = batch.find((m) => m.topic === 'status/in-lcomms');
      assert.ok(mine && mine.data.fill === 'red', first);
    } finally {
      ws.terminate();
    }
  });
});
