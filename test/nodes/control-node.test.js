'use strict';
// ws.control+ in a real Node-RED runtime: a listener with real ws clients (tokens signed with jose)
// and a websocket-plus client connected to it, listed, counted and closed from the flow.
const assert = require('assert');
const WebSocket = require('ws');
const { helper, load, wsUrl, collect, listenerNode, clientNode } = require('../helpers/red');
const { connect, waitForClose, closeAll, delay } = require('../helpers/ws-client');
const { signHS256, now } = require('../helpers/tokens');
const { waitFor } = require('../helpers/wait');
const { built } = require('../helpers/built');
const { INSTANCE_ID } = built('core/server/session-control');

const SECRET = 'control-node-secret-0123456789abcdef-xyz';
const creds = { l1: { secret: SECRET } };

/**
 * Listener l1 (entire-message mode, so a peer's {"action":"close"} reaches the flow as msg.action)
 * → ws.in+ → [control ctl-reply → helper hr]; a control node ctl → helper h1 fed by the tests.
 */
function controlFlow(extra = []) {
  return [
    listenerNode('l1', { path: '/ws/ctl', authMode: 'hs256', wholemsg: 'true', peerProps: 'action,payload' }),
    { id: 'in1', type: 'websocket-plus in', server: 'l1', client: '', wires: [['ctl-reply']] },
    { id: 'ctl-reply', type: 'websocket-plus control', server: 'l1', client: '', wires: [['hr']] },
    { id: 'hr', type: 'helper' },
    { id: 'ctl', type: 'websocket-plus control', name: 'ops', server: 'l1', client: '', wires: [['h1']] },
    { id: 'h1', type: 'helper' },
    ...extra,
  ];
}

const logsOf = (id, level) =>
  helper
    .log()
    .args.filter((a) => a[0].id === id && a[0].level === level)
    .map((a) => String(a[0].msg));

describe('nodes/control (real Node-RED runtime)', function () {
  const sockets = [];
  /** A client of tenant/sub on the listener; resolves the open ws once the server holds its session. */
  const open = async (tenant, sub, options) => {
    const listener = helper.getNode('l1').listener;
    const before = listener.connectionCount;
    const { ws } = await connect(
      wsUrl('/ws/ctl', `token=${await signHS256(SECRET, { tenant_id: tenant, sub }, options)}`),
    );
    sockets.push(ws);
    await waitFor(() => listener.connectionCount > before, 3000, 'session registered');
    return ws;
  };
  /** Sends msg to node `id` and resolves with what its helper `out` receives next. */
  const ask = (id, out, msg) => {
    const received = collect(out);
    helper.getNode(id).receive(msg);
    return waitFor(() => received.length > 0, 3000, `${id} output`).then(() => received[0]);
  };

  before(() => helper.startServer());
  after(() => helper.stopServer());
  afterEach(async () => {
    closeAll(sockets.splice(0));
    await helper.unload();
  });

  it('lists the sessions with filters, keeping the other message properties', async function () {
    await load(controlFlow(), creds);
    const exp = now() + 900;
    await open('acme', 'alice', { exp });
    await open('acme', 'bob');
    await open('globex', 'alice');
    const res = { marker: 'http response object' };
    const out = await ask('ctl', 'h1', { action: 'list', topic: 'who', res, payload: 'ignored' });
    assert.strictEqual(out.topic, 'who');
    assert.deepStrictEqual(out.res, res);
    assert.strictEqual(out.action, 'list');
    assert.strictEqual(out.payload.length, 3);
    const alice = out.payload.find((s) => s.tenantId === 'acme' && s.subject === 'alice');
    assert.strictEqual(alice.expiresAt, exp * 1000);
    assert.strictEqual(alice.instance, INSTANCE_ID);
    assert.strictEqual(alice.authStatus, 'verified');
    assert.strictEqual(alice.routingScope, 'tenant');
    assert.strictEqual(typeof alice.openedAt, 'number');
    assert.strictEqual(typeof alice.id, 'string');

    const acme = await ask('ctl', 'h1', { action: 'list', tenantId: 'acme' });
    assert.deepStrictEqual(acme.payload.map((s) => s.subject).sort(), ['alice', 'bob']);
    const alices = await ask('ctl', 'h1', { action: 'list', subject: 'alice' });
    assert.deepStrictEqual(alices.payload.map((s) => s.tenantId).sort(), ['acme', 'globex']);
  });

  it('counts in total and by tenant, with the same filters, and shows the result as status', async function () {
    await load(controlFlow(), creds);
    await open('acme', 'alice');
    await open('acme', 'bob');
    await open('globex', 'alice');
    const all = await ask('ctl', 'h1', { action: 'count', topic: 't' });
    assert.deepStrictEqual(all.payload, { total: 3, byTenant: { acme: 2, globex: 1 } });
    assert.strictEqual(all.topic, 't');
    const alice = await ask('ctl', 'h1', { action: 'count', subject: 'alice' });
    assert.deepStrictEqual(alice.payload, { total: 2, byTenant: { acme: 1, globex: 1 } });
    const statusCalls = helper._NodePrototype.status.getCalls().filter((c) => c.thisValue === helper.getNode('ctl'));
    assert.ok(
      statusCalls.some((c) => /2/.test(String(c.args[0].text))),
      JSON.stringify(statusCalls.map((c) => c.args[0])),
    );
  });

  it('logs a subject out of every socket with the flow’s code and reason; others stay open', async function () {
    await load(controlFlow(), creds);
    const a1 = await open('acme', 'alice');
    const a2 = await open('acme', 'alice');
    const bob = await open('acme', 'bob');
    const out = await ask('ctl', 'h1', {
      action: 'close',
      tenantId: 'acme',
      subject: 'alice',
      code: 4401,
      reason: 'logged out',
      topic: 'logout',
    });
    assert.deepStrictEqual(out.payload, { closed: 2 });
    assert.strictEqual(out.topic, 'logout');
    assert.deepStrictEqual(await waitForClose(a1), { code: 4401, reason: 'logged out' });
    assert.deepStrictEqual(await waitForClose(a2), { code: 4401, reason: 'logged out' });
    await delay(100);
    assert.strictEqual(bob.readyState, WebSocket.OPEN);
    const count = await ask('ctl', 'h1', { action: 'count' });
    assert.deepStrictEqual(count.payload, { total: 1, byTenant: { acme: 1 } });
  });

  it('closes by msg.sessionId with 4003 "closed by control" by default', async function () {
    await load(controlFlow(), creds);
    const a = await open('acme', 'alice');
    const b = await open('acme', 'bob');
    const [bob] = (await ask('ctl', 'h1', { action: 'list', subject: 'bob' })).payload;
    const out = await ask('ctl', 'h1', { action: 'close', sessionId: bob.id });
    assert.deepStrictEqual(out.payload, { closed: 1 });
    assert.deepStrictEqual(await waitForClose(b), { code: 4003, reason: 'closed by control' });
    assert.strictEqual(a.readyState, WebSocket.OPEN);
  });

  it(
    'reply pattern: a message from a session, sent to ' + 'control with action close, closes the sender only',
    async function () {
      await load(controlFlow(), creds);
      const sender = await open('acme', 'alice');
      const other = await open('acme', 'alice');
      const replies = collect('hr');
      sender.send(JSON.stringify({ action: 'close', payload: 'bye' }));
      assert.deepStrictEqual(await waitForClose(sender), { code: 4003, reason: 'closed by control' });
      await waitFor(() => replies.length === 1, 3000, 'control output');
      assert.deepStrictEqual(replies[0].payload, { closed: 1 });
      assert.strictEqual(typeof replies[0]._session.id, 'string', 'the message keeps its _session');
      await delay(100);
      assert.strictEqual(other.readyState, WebSocket.OPEN, 'the same user on another socket stays');
    },
  );

  it(
    'refuses a close without selector, or with a bad code ' + 'or reason: a warning, nothing closed, no output',
    async function () {
      await load(controlFlow(), creds);
      const a = await open('acme', 'alice');
      const received = collect('h1');
      const bad = [
        { action: 'close' },
        { action: 'close', all: 'yes' },
        { action: 'close', subject: 'alice', code: 1000 },
        { action: 'close', subject: 'alice', code: 5000 },
        { action: 'close', subject: 'alice', reason: 'x'.repeat(124) },
        { action: 'close', subject: 42 },
      ];
      for (const msg of bad) helper.getNode('ctl').receive(msg);
      await waitFor(() => logsOf('ctl', 30).length === bad.length, 3000, 'one warning per request');
      const warnings = logsOf('ctl', 30);
      assert.match(warnings[0], /msg\.all = true/);
      assert.match(warnings[2], /4000 to 4999/);
      assert.match(warnings[4], /123 bytes/);
      await delay(100);
      assert.strictEqual(received.length, 0);
      assert.strictEqual(a.readyState, WebSocket.OPEN);
    },
  );

  it('closes everyone only with msg.all === true', async function () {
    await load(controlFlow(), creds);
    const a = await open('acme', 'alice');
    const b = await open('globex', 'bob');
    const out = await ask('ctl', 'h1', { action: 'close', all: true, reason: 'maintenance' });
    assert.deepStrictEqual(out.payload, { closed: 2 });
    assert.deepStrictEqual(await waitForClose(a), { code: 4003, reason: 'maintenance' });
    assert.strictEqual((await waitForClose(b)).code, 4003);
  });

  it('reports an unknown action as an error the flow can catch, and sends nothing', async function () {
    await load(
      controlFlow([
        { id: 'catch1', type: 'catch', scope: ['ctl'], uncaught: false, wires: [['hc']] },
        { id: 'hc', type: 'helper' },
      ]),
      creds,
    );
    const a = await open('acme', 'alice');
    const received = collect('h1');
    const caught = collect('hc');
    helper.getNode('ctl').receive({ action: 'kick', topic: 'x' });
    helper.getNode('ctl').receive({ topic: 'no action' });
    await waitFor(() => caught.length === 2, 3000, 'two caught errors');
    assert.match(caught[0].error.message, /unknown action: kick/);
    assert.match(caught[1].error.message, /unknown action: undefined/);
    assert.strictEqual(caught[0].topic, 'x');
    await delay(100);
    assert.strictEqual(received.length, 0);
    assert.strictEqual(a.readyState, WebSocket.OPEN);
  });

  it(
    'on a client: reconnect drops the socket and connects ' + 'again at once; close stays away until reconnect',
    async function () {
      const flow = controlFlow([
        clientNode('c1', { path: wsUrl('/ws/ctl') }),
        { id: 'ctlc', type: 'websocket-plus control', server: '', client: 'c1', wires: [['hc']] },
        { id: 'hc', type: 'helper' },
      ]);
      await load(flow, { ...creds, c1: { token: await signHS256(SECRET, { tenant_id: 'acme', sub: 'robot' }) } });
      const listener = helper.getNode('l1').listener;
      const closes = [];
      listener.on('close', (session, code, reason) => closes.push({ code, reason }));
      const connection = helper.getNode('c1').connection;
      await waitFor(() => connection.connected && listener.connectionCount === 1, 5000, 'client connected');
      const firstId = connection.id;

      const reconnected = await ask('ctlc', 'hc', { action: 'reconnect', topic: 'r' });
      assert.deepStrictEqual(reconnected.payload, { reconnecting: true });
      assert.strictEqual(reconnected.topic, 'r');
      await waitFor(
        () => connection.connected && connection.id !== firstId && listener.connectionCount === 1,
        5000,
        'connected again',
      );
      assert.deepStrictEqual(closes, [{ code: 1000, reason: 'reconnecting' }]);

      const closed = await ask('ctlc', 'hc', { action: 'close', code: 4010, reason: 'paused' });
      assert.deepStrictEqual(closed.payload, { closed: 1 });
      await waitFor(() => closes.length === 2, 3000, 'server saw the close');
      assert.deepStrictEqual(closes[1], { code: 4010, reason: 'paused' });
      // The client's first retry comes within 1 s (default backoff): still away after 1.5 s means it is not retrying.
      await delay(1500);
      assert.strictEqual(listener.connectionCount, 0);
      assert.strictEqual(connection.connected, false);

      await ask('ctlc', 'hc', { action: 'reconnect' });
      await waitFor(() => connection.connected && listener.connectionCount === 1, 5000, 'connected after reconnect');

      // list/count are listener actions: on a client they are an error, not a silent no-op.
      const caughtErrors = () => logsOf('ctlc', 20);
      helper.getNode('ctlc').receive({ action: 'list' });
      await waitFor(() => caughtErrors().length === 1, 3000, 'error for list on a client');
      assert.match(caughtErrors()[0], /unknown action: list \(a client takes token, reconnect, close\)/);
    },
  );

  it(
    'on a client: token sends a refresh frame on the open socket ' +
      '("refreshed" comes back) and the next connect uses it',
    async function () {
      const flow = [
        listenerNode('l2', { path: '/ws/refresh', authMode: 'hs256', refresh: 'message', refreshWindow: '0' }),
        clientNode('c1', { path: wsUrl('/ws/refresh') }),
        { id: 'cin', type: 'websocket-plus in', server: '', client: 'c1', wires: [['hin']] },
        { id: 'hin', type: 'helper' },
        { id: 'ctlc', type: 'websocket-plus control', server: '', client: 'c1', wires: [['hc']] },
        { id: 'hc', type: 'helper' },
      ];
      const claims = { tenant_id: 'acme', sub: 'robot' };
      await load(flow, { l2: { secret: SECRET }, c1: { token: await signHS256(SECRET, claims, { exp: now() + 60 }) } });
      const listener = helper.getNode('l2').listener;
      const connection = helper.getNode('c1').connection;
      await waitFor(() => connection.connected && listener.connectionCount === 1, 5000, 'client connected');
      const firstId = connection.id;
      const fromServer = collect('hin');

      const exp = now() + 900;
      const token = await signHS256(SECRET, claims, { exp });
      const replaced = await ask('ctlc', 'hc', { action: 'token', token, topic: 't' });
      assert.deepStrictEqual(replaced.payload, { replaced: true, sent: true });
      assert.strictEqual(replaced.topic, 't');
      assert.strictEqual(replaced.token, undefined, 'the token travels on with the message');
      await waitFor(() => fromServer.length === 1, 3000, 'the listener answer');
      assert.deepStrictEqual(JSON.parse(fromServer[0].payload), { type: 'websocket-plus:refreshed', exp });
      // Same socket, expiry moved.
      assert.strictEqual(connection.id, firstId);
      const session = () => [...listener.registry.all()][0];
      assert.strictEqual(listener.expiresAtOf(session()), exp * 1000);

      // The next connect uses the new token: the new session's expiry is the new token's exp.
      await ask('ctlc', 'hc', { action: 'reconnect' });
      await waitFor(
        () => connection.connected && connection.id !== firstId && listener.connectionCount === 1,
        5000,
        'connected again',
      );
      assert.strictEqual(listener.expiresAtOf(session()), exp * 1000);

      // No token, or an empty one: a warning, the token is kept, nothing is sent on.
      const received = collect('hc');
      helper.getNode('ctlc').receive({ action: 'token', token: '' });
      helper.getNode('ctlc').receive({ action: 'token' });
      await waitFor(() => logsOf('ctlc', 30).length === 2, 3000, 'two warnings');
      assert.match(logsOf('ctlc', 30)[0], /msg.token must be a non-empty string/);
      await delay(100);
      assert.strictEqual(received.length, 0);
    },
  );

  it('without a running listener, an action is an error', async function () {
    await load([
      { id: 'ctl', type: 'websocket-plus control', server: 'missing', client: '', wires: [['h1']] },
      { id: 'h1', type: 'helper' },
    ]);
    helper.getNode('ctl').receive({ action: 'list' });
    await waitFor(() => logsOf('ctl', 20).length === 1, 3000, 'error');
    assert.match(logsOf('ctl', 20)[0], /no listener or client configured/);
  });
});
