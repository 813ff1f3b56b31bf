'use strict';
// The listener, ws.in+ and ws.out+ in a real Node-RED runtime, with real ws clients.
const assert = require('assert');
const http = require('http');
const WebSocket = require('ws');
const { helper, load, wsUrl, collect, listenerNode } = require('../helpers/red');
const { connect, waitForMessages, waitForClose, expectNoMessage, closeAll, delay } = require('../helpers/ws-client');
const { signHS256, makeKey, signWithKey, rawToken, now } = require('../helpers/tokens');
const { startJwksServer } = require('../helpers/jwks-server');
const { listenOnLoopback } = require('../helpers/loopback');
const { waitFor } = require('../helpers/wait');
const httpRequestNode = require('@node-red/nodes/core/network/21-httprequest.js');

const SECRET = 'node-test-secret-0123456789abcdef-xyz';
const tokenFor = (tenant, claims = {}, options = {}) =>
  signHS256(SECRET, { tenant_id: tenant, sub: `user-${tenant}`, ...claims }, options);

/** Listener l1 on `path` → ws.in+ → [helper h1, ws.out+] : every inbound message is echoed by scope. */
function echoFlow(props = {}, inProps = {}) {
  return [
    listenerNode('l1', { path: '/ws/t', authMode: 'hs256', ...props }),
    { id: 'in1', type: 'websocket-plus in', server: 'l1', client: '', wires: [['h1', 'out1']], ...inProps },
    { id: 'out1', type: 'websocket-plus out', server: 'l1', client: '' },
    { id: 'h1', type: 'helper' },
  ];
}
const creds = { l1: { secret: SECRET } };

describe('nodes/listener (real Node-RED runtime)', function () {
  const sockets = [];
  const open = async (query, path = '/ws/t') => {
    const result = await connect(wsUrl(path, query));
    if (result.ws) sockets.push(result.ws);
    return result;
  };

  before(() => helper.startServer());
  after(() => helper.stopServer());
  afterEach(async () => {
    closeAll(sockets.splice(0));
    await helper.unload();
  });

  describe('handshake', function () {
    it('refuses every bad token with 401 before any frame, naming only the category', async function () {
      await load(echoFlow(), creds);
      const cases = {
        missing: '',
        garbage: 'token=not-a-jwt',
        badSignature: `token=${await signHS256('another-secret-0123456789abcdef-xyz', { tenant_id: 'a' })}`,
        expired: `token=${await tokenFor('a', {}, { exp: now() - 120 })}`,
        algNone: `token=${rawToken({ alg: 'none', typ: 'JWT' }, { tenant_id: 'a' })}`,
        noTenant: `token=${await signHS256(SECRET, { sub: 'x' })}`,
        objectTenant: `token=${await signHS256(SECRET, { tenant_id: { id: 'a' } })}`,
        twoTokens: `token=${await tokenFor('a')}&token=${await tokenFor('b')}`,
      };
      const serverSide = [];
      helper.getNode('l1').listener.on('open', (s) => serverSide.push(s));
      for (const [name, query] of Object.entries(cases)) {
        const result = await open(query);
        assert.strictEqual(result.status, 401, name);
        assert.strictEqual(result.opened, false, name);
        assert.ok(!result.body.includes('eyJ'), `${name}: the token is never echoed`);
      }
      assert.strictEqual(serverSide.length, 0);
      assert.strictEqual(helper.getNode('l1').listener.connectionCount, 0);
    });

    it('never logs a token', async function () {
      await load(echoFlow(), creds);
      const token = await signHS256('another-secret-0123456789abcdef-xyz', { tenant_id: 'a' });
      await open(`token=${token}`);
      await delay(50);
      const logged = JSON.stringify(helper.log().args);
      assert.ok(logged.includes('bad signature'), 'the reason category is logged');
      assert.ok(!logged.includes(token.split('.')[2]), 'no part of the token is logged');
    });

    it(
      'serves under httpNodeRoot-relative paths, leading ' + 'slash optional, and leaves other paths alone',
      async function () {
        await load(echoFlow({ path: 'ws/noslash', authMode: 'none' }), creds);
        const { ws } = await open('', '/ws/noslash');
        assert.strictEqual(ws.readyState, WebSocket.OPEN);
        // An upgrade for a path that is not ours is not answered by us.
        const other = new WebSocket(wsUrl('/not-ours'), { handshakeTimeout: 500 });
        const outcome = await new Promise((resolve) => {
          other.on('open', () => resolve('open'));
          other.on('unexpected-response', (req, res) => resolve(res.statusCode));
          other.on('error', () => resolve('error'));
        });
        assert.notStrictEqual(outcome, 'open');
        other.terminate();
      },
    );

    it('refuses a second listener on the same path; the first keeps working', async function () {
      await load([
        listenerNode('l1', { path: '/ws/dup' }),
        listenerNode('l2', { path: '/ws/dup/' }),
        { id: 'in1', type: 'websocket-plus in', server: 'l1', client: '', wires: [['h1']] },
        { id: 'in2', type: 'websocket-plus in', server: 'l2', client: '', wires: [['h1']] },
        { id: 'h1', type: 'helper' },
      ]);
      const failed = ['l1', 'l2'].filter((id) => !helper.getNode(id).listener);
      assert.strictEqual(failed.length, 1, 'exactly one listener fails');
      const errors = helper
        .log()
        .args.filter((a) => a[0].level === 20)
        .map((a) => String(a[0].msg));
      assert.ok(
        errors.some((m) => m.includes('already used')),
        errors.join('|'),
      );
      const got = collect('h1');
      const { ws } = await open('', '/ws/dup');
      ws.send('still works');
      await delay(100);
      assert.strictEqual(got.length, 1);
    });

    it('a listener whose configuration failed answers 503 at once and frees the path on redeploy', async function () {
      await load(echoFlow({ path: '/ws/broken', authMode: 'hs256' }));
      assert.strictEqual(helper.getNode('l1').listener, undefined);
      const result = await open('', '/ws/broken');
      assert.strictEqual(result.status, 503);
      await helper.unload();
      await load(echoFlow({ path: '/ws/broken', authMode: 'none', scope: 'session' }));
      const { ws } = await open('', '/ws/broken');
      ws.send('fixed');
      assert.deepStrictEqual(await waitForMessages(ws, 1), ['fixed']);
    });

    it('refuses a path containing /debug/ws', async function () {
      await load(echoFlow({ path: '/x/debug/ws' }), creds);
      assert.strictEqual(helper.getNode('l1').listener, undefined);
      const errors = helper
        .log()
        .args.filter((a) => a[0].level === 20)
        .map((a) => String(a[0].msg));
      assert.ok(
        errors.some((m) => m.includes('reserved')),
        errors.join('|'),
      );
    });
  });

  describe("Node-RED's own upgrade paths", function () {
    afterEach(() => helper.settings({}));
    const errors = () =>
      helper
        .log()
        .args.filter((a) => a[0].level === 20)
        .map((a) => String(a[0].msg));

    it(
      'refuses the editor comms path computed from httpAdminRoot ' + 'and httpNodeRoot, and registers nothing there',
      async function () {
        const server = helper._server;
        const baseline = server.listenerCount('upgrade');
        const cases = [
          [{}, '/comms'],
          [{ httpAdminRoot: '/', httpNodeRoot: '/' }, 'comms/'],
          [{ httpAdminRoot: '/admin', httpNodeRoot: '/' }, '/admin/comms'],
          [{ httpAdminRoot: '/red/', httpNodeRoot: '/red' }, '/comms'],
        ];
        for (const [settings, path] of cases) {
          helper.settings(settings);
          await load(echoFlow({ path }), creds);
          assert.strictEqual(helper.getNode('l1').listener, undefined, path);
          assert.ok(
            errors().some((m) => m.includes('reserved') && m.includes('comms')),
            errors().join('|'),
          );
          // Not even the 503 of a misconfigured listener: the path stays Node-RED's.
          assert.strictEqual(server.listenerCount('upgrade'), baseline, `${path}: an upgrade handler was registered`);
          await helper.unload();
        }
        // "comms" is a listener's path where it does not meet Node-RED's comms.
        helper.settings({ httpAdminRoot: '/', httpNodeRoot: '/api' });
        await load(echoFlow({ path: 'comms', authMode: 'none', scope: 'session' }));
        const { ws } = await open('', '/api/comms');
        ws.send('mine');
        assert.deepStrictEqual(await waitForMessages(ws, 1), ['mine']);
      },
    );

    it('a static tenant id that is not well-formed UTF-16 is a configuration error', async function () {
      await load(echoFlow({ tenantFrom: 'static', tenantId: 'acme\uD800' }), creds);
      assert.strictEqual(helper.getNode('l1').listener, undefined);
      assert.ok(
        errors().some((m) => m.includes('tenantId')),
        errors().join('|'),
      );
      const refused = await open(`token=${await tokenFor('acme')}`);
      assert.strictEqual(refused.status, 503, 'a misconfigured listener answers 503');
    });
  });

  describe('jwks mode', function () {
    let jwks;
    let rsa;
    let ec;
    before(async function () {
      rsa = await makeKey('RS256', 'rsa-a');
      ec = await makeKey('ES256', 'ec-a');
      jwks = await startJwksServer([rsa, ec]);
    });
    after(() => jwks.close());

    it('accepts RS256 and ES256, refuses HS256 and unknown keys, and survives the JWKS going away', async function () {
      await load(echoFlow({ authMode: 'jwks', jwksUri: jwks.url, scope: 'session' }));
      for (const key of [rsa, ec]) {
        const { ws } = await open(`token=${await signWithKey(key, { tenant_id: 't', sub: key.kid })}`);
        ws.send(`via ${key.alg}`);
        assert.deepStrictEqual(await waitForMessages(ws, 1), [`via ${key.alg}`]);
      }
      const hs = await open(`token=${await signHS256(SECRET, { tenant_id: 't' }, { header: { kid: 'rsa-a' } })}`);
      assert.strictEqual(hs.status, 401);
      const stranger = await makeKey('RS256', 'stranger');
      assert.strictEqual((await open(`token=${await signWithKey(stranger, { tenant_id: 't' })}`)).status, 401);
      const fetchesBefore = jwks.fetches;
      for (let i = 0; i < 5; i++)
        await open(`token=${await signWithKey({ ...stranger, kid: `k${i}` }, { tenant_id: 't' })}`);
      assert.ok(jwks.fetches - fetchesBefore <= 1, 'random kids cause no fetch storm');
    });

    it('answers 401 (not a hang) when the JWKS is down', async function () {
      const down = await startJwksServer([rsa]);
      const url = down.url;
      await down.close();
      await load(echoFlow({ authMode: 'jwks', jwksUri: url }));
      const started = Date.now();
      const result = await open(`token=${await signWithKey(rsa, { tenant_id: 't' })}`);
      assert.strictEqual(result.status, 401);
      assert.ok(Date.now() - started < 8000);
    });
  });

  describe('routing', function () {
    async function tenantsConnected(props) {
      await load(echoFlow(props), creds);
      const a1 = (await open(`token=${await tokenFor('a')}`)).ws;
      const a2 = (await open(`token=${await tokenFor('a')}`)).ws;
      const b1 = (await open(`token=${await tokenFor('b')}`)).ws;
      return { a1, a2, b1 };
    }

    it('session scope replies only to the sender', async function () {
      const { a1, a2, b1 } = await tenantsConnected({ scope: 'session' });
      a1.send('mine');
      assert.deepStrictEqual(await waitForMessages(a1, 1), ['mine']);
      await expectNoMessage(a2);
      await expectNoMessage(b1);
    });

    it('tenant scope reaches every connection of the tenant and no other', async function () {
      const { a1, a2, b1 } = await tenantsConnected({ scope: 'tenant' });
      a1.send('for a');
      assert.deepStrictEqual(await waitForMessages(a1, 1), ['for a']);
      assert.deepStrictEqual(await waitForMessages(a2, 1), ['for a']);
      await expectNoMessage(b1);
      b1.send('for b');
      assert.deepStrictEqual(await waitForMessages(b1, 1), ['for b']);
      await expectNoMessage(a1);
    });

    it('global scope reaches everyone', async function () {
      const { a1, a2, b1 } = await tenantsConnected({ scope: 'global' });
      b1.send('all');
      for (const ws of [a1, a2, b1]) assert.deepStrictEqual(await waitForMessages(ws, 1), ['all']);
    });

    it('msg._session carries the verified identity', async function () {
      await load(echoFlow({ scope: 'tenant' }), creds);
      const got = collect('h1');
      const { ws } = await open(`token=${await tokenFor('a', { sub: 'alice' })}`);
      ws.send('x');
      await delay(100);
      const session = got[0]._session;
      assert.deepStrictEqual(Object.keys(session).sort(), [
        'authStatus',
        'id',
        'routingScope',
        'subject',
        'tenantId',
        'type',
      ]);
      assert.deepStrictEqual(
        [session.type, session.tenantId, session.subject, session.authStatus, session.routingScope],
        ['websocket', 'a', 'alice', 'verified', 'tenant'],
      );
    });

    it('a forged _session.tenantId cannot reach another tenant', async function () {
      const flow = echoFlow({ scope: 'tenant' });
      flow[1].wires = [['h1', 'forge']];
      flow.push({
        id: 'forge',
        type: 'function',
        func: 'msg._session.tenantId = "b"; msg._session.routingScope = "global"; msg.tenantId = "b"; return msg;',
        outputs: 1,
        wires: [['out1']],
      });
      const functionNode = require('@node-red/nodes/core/function/10-function.js');
      helper.settings({ functionExternalModules: false });
      await new Promise((resolve, reject) =>
        helper.load([require('../helpers/red').plusNodes, functionNode], flow, creds, (e) =>
          e ? reject(e) : resolve(),
        ),
      );
      const a1 = (await open(`token=${await tokenFor('a')}`)).ws;
      const b1 = (await open(`token=${await tokenFor('b')}`)).ws;
      a1.send('secret of a');
      assert.deepStrictEqual(await waitForMessages(a1, 1), ['secret of a']);
      await expectNoMessage(b1, 300);
    });

    it(
      'a message without a known _session is not sent ' + 'on tenant scope and warns; global sends to all',
      async function () {
        await load([
          listenerNode('lt', { path: '/ws/tenant', authMode: 'none', scope: 'tenant' }),
          listenerNode('lg', { path: '/ws/global', authMode: 'none', scope: 'global' }),
          { id: 'outT', type: 'websocket-plus out', server: 'lt', client: '' },
          { id: 'outG', type: 'websocket-plus out', server: 'lg', client: '' },
        ]);
        const t = (await open('', '/ws/tenant')).ws;
        const g = (await open('', '/ws/global')).ws;
        helper.getNode('outT').receive({ payload: 'orphan' });
        helper.getNode('outT').receive({ payload: 'forged', _session: { id: 'made-up', tenantId: 'default' } });
        helper.getNode('outG').receive({ payload: 'to all' });
        assert.deepStrictEqual(await waitForMessages(g, 1), ['to all']);
        await expectNoMessage(t);
        const warnings = helper.log().args.filter((a) => a[0].level === 30 && a[0].id === 'outT');
        assert.strictEqual(warnings.length, 2);
      },
    );

    it('a session that has just closed still routes to its tenant', async function () {
      await load(
        [
          listenerNode('l1', { path: '/ws/t', authMode: 'hs256', scope: 'tenant' }),
          { id: 'in1', type: 'websocket-plus in', server: 'l1', client: '', wires: [['h1']] },
          { id: 'out1', type: 'websocket-plus out', server: 'l1', client: '' },
          { id: 'h1', type: 'helper' },
        ],
        creds,
      );
      const got = collect('h1');
      const leaving = (await open(`token=${await tokenFor('a')}`)).ws;
      const staying = (await open(`token=${await tokenFor('a')}`)).ws;
      leaving.send('bye');
      await delay(100);
      leaving.close();
      await waitForClose(leaving);
      await delay(50);
      helper.getNode('out1').receive({ payload: 'late reply', _session: got[0]._session });
      assert.deepStrictEqual(await waitForMessages(staying, 1), ['late reply']);
    });
  });

  describe('messages', function () {
    it('payload mode: text → string, binary → Buffer, and back', async function () {
      await load(echoFlow({ scope: 'session' }), creds);
      const got = collect('h1');
      const { ws } = await open(`token=${await tokenFor('a')}`);
      ws.send('text');
      ws.send(Buffer.from([0, 1, 2]));
      const echoed = await waitForMessages(ws, 2);
      assert.strictEqual(typeof got[0].payload, 'string');
      assert.ok(Buffer.isBuffer(got[1].payload));
      assert.strictEqual(echoed[0], 'text');
      assert.deepStrictEqual([...echoed[1]], [0, 1, 2]);
    });

    it('entire-message mode parses JSON and never crashes on null, arrays, numbers or invalid JSON', async function () {
      await load(echoFlow({ scope: 'session', wholemsg: 'true' }), creds);
      const got = collect('h1');
      const { ws } = await open(`token=${await tokenFor('a')}`);
      for (const frame of [
        'null',
        '[1,2]',
        '42',
        '{bad json',
        '{"payload":"p","topic":"t","_session":{"id":"x","tenantId":"b"}}',
      ])
        ws.send(frame);
      const echoed = await waitForMessages(ws, 5);
      assert.deepStrictEqual(
        got.map((m) => m.payload),
        [null, [1, 2], 42, '{bad json', 'p'],
      );
      assert.strictEqual(got[4]._session.tenantId, 'a', 'the peer cannot set its own _session');
      const last = JSON.parse(echoed[4]);
      assert.strictEqual(last.topic, 't');
      assert.strictEqual(last._session, undefined, 'entire-message mode sends no _session');
    });

    it('emits connect/disconnect events when asked, with the close code', async function () {
      await load(echoFlow({ scope: 'session' }, { events: true }), creds);
      const got = collect('h1');
      const { ws } = await open(`token=${await tokenFor('a')}`);
      await delay(50);
      ws.close(4100, 'done here');
      await waitForClose(ws);
      await delay(100);
      assert.deepStrictEqual(
        got.map((m) => m.event),
        ['connect', 'disconnect'],
      );
      assert.strictEqual(got[1].code, 4100);
      assert.strictEqual(got[1].reason, 'done here');
      assert.strictEqual(got[1]._session.tenantId, 'a');
    });

    it('events stay off by default', async function () {
      await load(echoFlow({ scope: 'session' }), creds);
      const got = collect('h1');
      const { ws } = await open(`token=${await tokenFor('a')}`);
      await delay(50);
      ws.close();
      await waitForClose(ws);
      await delay(100);
      assert.strictEqual(got.length, 0);
    });

    it('shows the connected count on in and out nodes', async function () {
      await load(echoFlow({ scope: 'session' }), creds);
      const statuses = [];
      helper.getNode('in1').on('call:status', (call) => statuses.push(call.args[0]));
      await open(`token=${await tokenFor('a')}`);
      await open(`token=${await tokenFor('b')}`);
      await delay(250);
      assert.ok(statuses.length >= 1);
      assert.strictEqual(statuses[statuses.length - 1].fill, 'green');
      assert.strictEqual(helper.getNode('l1').listener.connectionCount, 2);
    });
  });

  describe('token refresh', function () {
    const refreshFrame = (token) => JSON.stringify({ type: 'websocket-plus:refresh', token });

    for (const wholemsg of ['false', 'true']) {
      it(
        `refresh "message" (${wholemsg === 'true' ? 'entire-message' : 'payload'} mode): ` +
          `a refresh frame never reaches the flow, is answered and moves the expiry`,
        async function () {
          await load(echoFlow({ refresh: 'message', refreshWindow: '0', scope: 'session', wholemsg }), creds);
          const received = collect('h1');
          const { ws } = await open(`token=${await tokenFor('a', {}, { exp: now() + 60 })}`);
          const exp = now() + 600;
          const token = await tokenFor('a', {}, { exp });
          ws.send(refreshFrame(token));
          ws.send(wholemsg === 'true' ? '{"payload":"after"}' : 'after');
          // The echo of "after" may come first: the refresh is verified asynchronously.
          await waitForMessages(ws, 2);
          const answers = ws.messages.filter((m) => m.includes('websocket-plus:'));
          assert.deepStrictEqual(
            answers.map((m) => JSON.parse(m)),
            [{ type: 'websocket-plus:refreshed', exp }],
          );
          await waitFor(() => received.length === 1, 3000, 'the ordinary message');
          assert.strictEqual(received[0].payload, 'after');
          await delay(100);
          assert.strictEqual(received.length, 1);
          assert.ok(!JSON.stringify(received).includes(token), 'the token reached the flow');
          const session = [...helper.getNode('l1').listener.registry.all()][0];
          assert.strictEqual(helper.getNode('l1').listener.expiresAtOf(session), exp * 1000);
        },
      );
    }

    it('refresh "off" (the default) passes a refresh frame to the flow as an ordinary message', async function () {
      await load(echoFlow({ scope: 'session' }), creds);
      const received = collect('h1');
      const { ws } = await open(`token=${await tokenFor('a')}`);
      const frame = refreshFrame(await tokenFor('a', {}, { exp: now() + 600 }));
      ws.send(frame);
      await waitFor(() => received.length === 1, 3000, 'the frame as a message');
      assert.strictEqual(received[0].payload, frame);
    });

    it('a refresh with another subject closes with 1008 "identity changed"', async function () {
      await load(echoFlow({ refresh: 'message' }), creds);
      const { ws } = await open(`token=${await tokenFor('a')}`);
      ws.send(refreshFrame(await tokenFor('a', { sub: 'someone-else' })));
      assert.deepStrictEqual(await waitForClose(ws), { code: 1008, reason: 'identity changed' });
    });
  });

  describe('lifecycle and close codes', function () {
    it('closes at token exp with 4001 when onExpiry is disconnect', async function () {
      await load(echoFlow({ onExpiry: 'disconnect' }), creds);
      const { ws } = await open(`token=${await tokenFor('a', {}, { exp: now() + 2 })}`);
      const closed = await waitForClose(ws, 5000);
      assert.strictEqual(closed.code, 4001);
    });

    it('keeps the session past exp when onExpiry is allow', async function () {
      await load(echoFlow({ onExpiry: 'allow', scope: 'session' }), creds);
      const { ws } = await open(`token=${await tokenFor('a', {}, { exp: now() + 1 })}`);
      await delay(2200);
      assert.strictEqual(ws.readyState, WebSocket.OPEN);
      ws.send('still here');
      assert.deepStrictEqual(await waitForMessages(ws, 1), ['still here']);
    });

    it('closes after sessionTimeout with 4002', async function () {
      await load(echoFlow({ sessionTimeout: '1' }), creds);
      const { ws } = await open(`token=${await tokenFor('a')}`);
      const closed = await waitForClose(ws, 4000);
      assert.strictEqual(closed.code, 4002);
    });

    it('a client caught mid-handshake by a redeploy gets 503 "listener closing", not a hang-up', async function () {
      const rsa = await makeKey('RS256', 'rsa-r');
      const jwks = await startJwksServer([rsa]);
      jwks.state.mode = 'hang';
      try {
        await load(echoFlow({ authMode: 'jwks', jwksUri: jwks.url }));
        const pending = open(`token=${await signWithKey(rsa, { tenant_id: 't' })}`);
        const deadline = Date.now() + 2000;
        while (jwks.fetches === 0 && Date.now() < deadline) await delay(10);
        assert.strictEqual(jwks.fetches, 1, 'the handshake is waiting on the JWKS');
        await helper.unload();
        const result = await pending;
        assert.strictEqual(result.status, 503);
        assert.strictEqual(result.body, 'listener closing');
      } finally {
        await jwks.close();
      }
    });

    it('closes every socket with 1001 on redeploy, and leaves no upgrade listener behind', async function () {
      const server = helper._server;
      const baseline = server.listenerCount('upgrade');
      for (let i = 0; i < 20; i++) {
        await load(echoFlow({ path: `/ws/r${i % 3}` }), creds);
        const { ws } = await open(`token=${await tokenFor('a')}`, `/ws/r${i % 3}`);
        const closing = waitForClose(ws);
        await helper.unload();
        assert.strictEqual((await closing).code, 1001);
        assert.strictEqual(server.listenerCount('upgrade'), baseline);
      }
    });
  });

  describe('peerProps: what a peer may set in entire-message mode', function () {
    // Control properties other nodes read from msg, sent by a peer together with payload and topic.
    const HOSTILE = {
      payload: 'x',
      topic: 't',
      url: 'http://169.254.169.254/latest/meta-data/',
      method: 'DELETE',
      headers: { authorization: 'Bearer stolen' },
      filename: '/etc/passwd',
      reset: true,
      delay: 86400000,
      _msgid: 'forged',
    };
    const keysOf = (msg) =>
      Object.keys(msg)
        .filter((k) => k !== '_msgid')
        .sort();

    it(
      'with "payload,topic" a peer\'s url, method, ' + 'headers and other properties never reach the flow',
      async function () {
        await load(echoFlow({ scope: 'session', wholemsg: 'true', peerProps: 'payload, topic' }), creds);
        const got = collect('h1');
        const { ws } = await open(`token=${await tokenFor('a')}`);
        ws.send(JSON.stringify(HOSTILE));
        ws.send(
          '{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":1}},' +
            '"prototype":{"polluted":1},"payload":2}',
        );
        ws.send('[1,2]');
        await waitFor(() => got.length >= 3, 3000, 'three messages at the helper');
        assert.deepStrictEqual(keysOf(got[0]), ['_session', 'payload', 'topic']);
        assert.strictEqual(got[0].payload, 'x');
        assert.strictEqual(got[0].topic, 't');
        assert.strictEqual(got[0]._session.tenantId, 'a');
        assert.notStrictEqual(got[0]._msgid, 'forged');
        assert.deepStrictEqual(keysOf(got[1]), ['_session', 'payload']);
        assert.strictEqual(Object.getPrototypeOf(got[1]), Object.prototype);
        assert.strictEqual({}.polluted, undefined);
        assert.deepStrictEqual(got[2].payload, [1, 2], 'a frame that is not an object is still the payload');
        // The echo (entire-message mode sends the message back as JSON) carries the filtered message.
        const echoed = JSON.parse((await waitForMessages(ws, 1))[0]);
        assert.strictEqual(echoed.url, undefined);
      },
    );

    it('with "*" (the default) every property a peer sends reaches the flow, as before', async function () {
      for (const peerProps of ['*', undefined]) {
        const flow = echoFlow({ scope: 'session', wholemsg: 'true', peerProps });
        if (peerProps === undefined) delete flow[0].peerProps; // a flow saved before the property existed
        await load(flow, creds);
        const got = collect('h1');
        const { ws } = await open(`token=${await tokenFor('a')}`);
        ws.send(JSON.stringify(HOSTILE));
        await waitFor(() => got.length >= 1, 3000, 'a message at the helper');
        assert.deepStrictEqual(
          keysOf(got[0]),
          ['_session', 'delay', 'filename', 'headers', 'method', 'payload', 'reset', 'topic', 'url'],
          String(peerProps),
        );
        assert.strictEqual(got[0].url, HOSTILE.url);
        assert.strictEqual(got[0].method, 'DELETE');
        assert.notStrictEqual(got[0]._msgid, 'forged', "never a peer's _msgid");
        closeAll(sockets.splice(0));
        await helper.unload();
      }
    });

    it(
      'an http request node without a URL fetches what the ' +
        'peer names under "*", and nothing under "payload,topic"',
      async function () {
        // A loopback server stands in for an internal address (cloud metadata, an admin API).
        const hits = [];
        const internal = await listenOnLoopback(
          http.createServer((req, res) => {
            hits.push({ method: req.method, url: req.url });
            res.end('secret');
          }),
        );
        const flow = (peerProps) => [
          listenerNode('l1', { path: '/ws/t', authMode: 'hs256', wholemsg: 'true', peerProps }),
          { id: 'in1', type: 'websocket-plus in', server: 'l1', client: '', wires: [['req']] },
          {
            id: 'req',
            type: 'http request',
            method: 'use',
            ret: 'txt',
            paytoqs: 'ignore',
            url: '',
            tls: '',
            persist: false,
            proxy: '',
            authType: '',
            senderr: false,
            headers: [],
            wires: [['h1']],
          },
          { id: 'h1', type: 'helper' },
        ];
        const frame = JSON.stringify({
          payload: 'x',
          topic: 't',
          url: `http://127.0.0.1:${internal.port}/latest/meta-data/`,
          method: 'PUT',
        });
        try {
          await load(flow('*'), creds, [httpRequestNode]);
          let got = collect('h1');
          let { ws } = await open(`token=${await tokenFor('a')}`);
          ws.send(frame);
          await waitFor(() => got.length >= 1, 5000, 'the response of the internal server');
          assert.deepStrictEqual(hits, [{ method: 'PUT', url: '/latest/meta-data/' }], 'the peer chose URL and method');
          assert.strictEqual(got[0].payload, 'secret');
          closeAll(sockets.splice(0));
          await helper.unload();

          await load(flow('payload,topic'), creds, [httpRequestNode]);
          got = collect('h1');
          ({ ws } = await open(`token=${await tokenFor('a')}`));
          ws.send(frame);
          const noUrl = () => helper.log().args.some((a) => a[0].id === 'req' && a[0].level === 20);
          // Either the node refuses the message for want of a URL, or (unfiltered) it fetches the peer's URL.
          await waitFor(() => noUrl() || hits.length > 1 || got.length > 0, 5000, 'the http request node to act');
          assert.deepStrictEqual(hits.slice(1), [], 'no request reached the internal server');
          assert.ok(noUrl(), 'the http request node had no URL to fetch');
          assert.strictEqual(got.length, 0);
        } finally {
          await internal.close();
        }
      },
    );

    it('payload mode is unaffected: the frame is msg.payload whatever the list says', async function () {
      await load(echoFlow({ scope: 'session', wholemsg: 'false', peerProps: 'topic' }), creds);
      const got = collect('h1');
      const { ws } = await open(`token=${await tokenFor('a')}`);
      ws.send(JSON.stringify(HOSTILE));
      await waitFor(() => got.length >= 1, 3000, 'a message at the helper');
      assert.deepStrictEqual(keysOf(got[0]), ['_session', 'payload']);
      assert.strictEqual(got[0].payload, JSON.stringify(HOSTILE));
    });

    it('an invalid list is a configuration error: the node says why and the path answers 503', async function () {
      await load(echoFlow({ wholemsg: 'true', peerProps: 'payload,__proto__' }), creds);
      const errors = helper
        .log()
        .args.filter((a) => a[0].id === 'l1' && a[0].level === 20)
        .map((a) => String(a[0].msg));
      assert.ok(
        errors.some((m) => m.includes('peerProps: "__proto__" can never be set by a peer')),
        errors.join('\n'),
      );
      const result = await open(`token=${await tokenFor('a')}`);
      assert.strictEqual(result.status, 503);
      assert.strictEqual(result.opened, false);
    });
  });
});
