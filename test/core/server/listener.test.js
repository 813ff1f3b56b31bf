'use strict';
// The core listener on a plain http server: no Node-RED involved.
const assert = require('assert');
const http = require('http');
const { createListener } = require('../../helpers/listener');
const { built } = require('../../helpers/built');
const { deliveryProblem } = built('core/server/listener');
const { connect, waitForMessages, waitForClose, closeAll, delay } = require('../../helpers/ws-client');
const { signHS256 } = require('../../helpers/tokens');

const SECRET = 'core-listener-secret-0123456789abcdef';

function makeListener(server, path, extra = {}) {
  return createListener(server, path, { verifier: { mode: 'hs256', secret: SECRET }, ...extra });
}

describe('core/listener', function () {
  let server;
  let base;
  const sockets = [];
  beforeEach(async function () {
    server = http.createServer((req, res) => res.end('http'));
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `ws://127.0.0.1:${server.address().port}`;
  });
  afterEach(async function () {
    closeAll(sockets.splice(0));
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('many listeners share one upgrade handler, removed with the last', async function () {
    const listeners = [];
    for (let i = 0; i < 5; i++) {
      const l = makeListener(server, `/p${i}`);
      l.start();
      listeners.push(l);
    }
    assert.strictEqual(server.listenerCount('upgrade'), 1);
    const token = await signHS256(SECRET, { tenant_id: 't' });
    const { ws } = await connect(`${base}/p3?token=${token}`);
    sockets.push(ws);
    assert.strictEqual(listeners[3].connectionCount, 1);
    for (const l of listeners) await l.close();
    assert.strictEqual(server.listenerCount('upgrade'), 0);
  });

  it('delivers text as text and binary as binary, encoding a broadcast once', async function () {
    const listener = makeListener(server, '/x', { scope: 'global' });
    listener.start();
    const a = (await connect(`${base}/x?token=${await signHS256(SECRET, { tenant_id: 'a' })}`)).ws;
    const b = (await connect(`${base}/x?token=${await signHS256(SECRET, { tenant_id: 'b' })}`)).ws;
    sockets.push(a, b);
    assert.strictEqual(listener.deliver(undefined, 'hello').delivered, 2);
    listener.deliver(undefined, Buffer.from([9]));
    const [textA, binA] = await waitForMessages(a, 2);
    assert.strictEqual(textA, 'hello');
    assert.ok(Buffer.isBuffer(binA));
    await waitForMessages(b, 2);
    await listener.close();
  });

  it('frees a tenant slot when the client vanishes during verification', async function () {
    let release;
    const gate = new Promise((resolve) => (release = resolve));
    const listener = createListener(server, '/slow', {
      verifier: {
        mode: 'custom',
        keySetFetches: 0,
        async verify() {
          await gate;
          return { claims: { tenant_id: 't' }, subject: undefined, expiresAt: undefined, authStatus: 'verified' };
        },
      },
      maxConnectionsPerTenant: 1,
    });
    listener.start();
    const WebSocket = require('ws');
    const early = new WebSocket(`${base}/slow?token=x`);
    early.on('error', () => {});
    await delay(100);
    early.terminate();
    await delay(50);
    release();
    await delay(100);
    const { ws } = await connect(`${base}/slow?token=x`);
    sockets.push(ws);
    assert.strictEqual(ws.readyState, WebSocket.OPEN, 'the slot of the vanished client was released');
    const second = await connect(`${base}/slow?token=x`);
    assert.strictEqual(second.status, 429);
    await listener.close();
  });

  it('closes sessions with 1001 and refuses handshakes while closing', async function () {
    const listener = makeListener(server, '/c');
    listener.start();
    const { ws } = await connect(`${base}/c?token=${await signHS256(SECRET, { tenant_id: 'a' })}`);
    sockets.push(ws);
    const closing = waitForClose(ws);
    await listener.close();
    assert.strictEqual((await closing).code, 1001);
    assert.strictEqual(listener.connectionCount, 0);
  });

  it(
    'a message listener that throws closes only that session ' + 'with 1011; the process and other sessions carry on',
    async function () {
      const listener = makeListener(server, '/throws', { scope: 'session' });
      const enforced = [];
      listener.on('enforced', (_s, reason) => enforced.push(reason));
      listener.on('message', (session, data) => {
        if (data === 'boom') throw new RangeError('Maximum call stack size exceeded');
        listener.deliver(session.id, `echo ${data}`);
      });
      listener.start();
      const a = (await connect(`${base}/throws?token=${await signHS256(SECRET, { tenant_id: 'a' })}`)).ws;
      const b = (await connect(`${base}/throws?token=${await signHS256(SECRET, { tenant_id: 'b' })}`)).ws;
      sockets.push(a, b);
      const closed = waitForClose(a);
      a.send('boom');
      assert.deepStrictEqual(await closed, { code: 1011, reason: 'delivery failed' });
      assert.deepStrictEqual(enforced, ['DELIVERY_FAILED']);
      b.send('still here');
      assert.deepStrictEqual(await waitForMessages(b, 1), ['echo still here']);
      assert.strictEqual(listener.connectionCount, 1);
      await listener.close();
    },
  );

  it('counts its own traffic: messages and UTF-8 bytes in, one frame and its bytes per recipient out', async function () {
    const listener = makeListener(server, '/traffic', { scope: 'global' });
    listener.start();
    const received = [];
    listener.on('message', (session, data) => received.push(data));
    const a = (await connect(`${base}/traffic?token=${await signHS256(SECRET, { tenant_id: 'a' })}`)).ws;
    const b = (await connect(`${base}/traffic?token=${await signHS256(SECRET, { tenant_id: 'b' })}`)).ws;
    sockets.push(a, b);
    assert.deepStrictEqual(listener.traffic, { messagesIn: 0, bytesIn: 0, messagesOut: 0, bytesOut: 0 });
    a.send('h\u00e9llo'); // 6 bytes of UTF-8, 5 characters
    b.send(Buffer.from([1, 2, 3]));
    const deadline = Date.now() + 5000;
    while (received.length < 2 && Date.now() < deadline) await delay(10);
    assert.strictEqual(received.length, 2);
    assert.strictEqual(listener.traffic.messagesIn, 2);
    assert.strictEqual(listener.traffic.bytesIn, 9);
    assert.strictEqual(listener.deliver(undefined, '\u00e9\u00e9').delivered, 2); // 4 bytes to each
    await waitForMessages(a, 1);
    await waitForMessages(b, 1);
    assert.strictEqual(listener.traffic.messagesOut, 2);
    assert.strictEqual(listener.traffic.bytesOut, 8);
    await listener.close();
  });

  it('every session shares the same socket event handlers (no closures per connection)', async function () {
    const listener = makeListener(server, '/shared');
    listener.start();
    const a = (await connect(`${base}/shared?token=${await signHS256(SECRET, { tenant_id: 'a' })}`)).ws;
    const b = (await connect(`${base}/shared?token=${await signHS256(SECRET, { tenant_id: 'b' })}`)).ws;
    sockets.push(a, b);
    const [first, second] = [...listener.registry.all()].map((s) => s.connection);
    assert.ok(first && second && first !== second);
    for (const event of ['message', 'ping', 'pong', 'error', 'close']) {
      assert.strictEqual(first.listenerCount(event), 1, event);
      assert.strictEqual(first.listeners(event)[0], second.listeners(event)[0], `${event}: one handler for both`);
    }
    // The shared handlers still reach each session's own state: an echo per session.
    listener.on('message', (session, data) => listener.deliver(session.id, `${session.tenantId}:${data}`));
    a.send('x');
    b.send('y');
    assert.deepStrictEqual(await waitForMessages(a, 1), ['a:x']);
    assert.deepStrictEqual(await waitForMessages(b, 1), ['b:y']);
    await listener.close();
  });

  it("session scope: a reply reaches its own session only, misses are explained, and 'sent' reports each frame", async function () {
    const listener = makeListener(server, '/reply', { scope: 'session' });
    listener.start();
    const sent = [];
    listener.on('sent', (recipients, bytes) => sent.push([recipients, bytes]));
    const a = (await connect(`${base}/reply?token=${await signHS256(SECRET, { tenant_id: 'a' })}`)).ws;
    const b = (await connect(`${base}/reply?token=${await signHS256(SECRET, { tenant_id: 'b' })}`)).ws;
    sockets.push(a, b);
    const [sa, sb] = [...listener.registry.all()];
    const toA = listener.deliver(sa.id, 'h\u00e9');
    assert.deepStrictEqual([toA.delivered, toA.miss, toA.tenantId], [1, undefined, 'a']);
    const toB = listener.deliver(sb.id, Buffer.from([1, 2]));
    assert.deepStrictEqual([toB.delivered, toB.miss, toB.tenantId], [1, undefined, 'b']);
    assert.deepStrictEqual(await waitForMessages(a, 1), ['h\u00e9']);
    const [bin] = await waitForMessages(b, 1);
    assert.deepStrictEqual([...bin], [1, 2]);
    assert.deepStrictEqual(sent, [
      [1, 3],
      [1, 2],
    ]);
    assert.strictEqual(listener.deliver('', 'x').miss, 'no-session');
    assert.strictEqual(listener.deliver(undefined, 'x').miss, 'no-session');
    assert.strictEqual(listener.deliver('not-a-session', 'x').miss, 'unknown-session');
    const closedId = sb.id;
    b.close();
    await waitForClose(b);
    const deadline = Date.now() + 5000;
    while (listener.registry.get(closedId) && Date.now() < deadline) await delay(10);
    const late = listener.deliver(closedId, 'late');
    assert.deepStrictEqual([late.delivered, late.miss, late.tenantId], [0, 'session-closed', 'b']);
    assert.strictEqual(sent.length, 2, 'nothing reported for deliveries that reached nobody');
    assert.deepStrictEqual(listener.traffic.messagesOut, 2);
    await listener.close();
  });

  it('deliveryProblem: what the flow is told when a delivery reached nobody', function () {
    assert.strictEqual(deliveryProblem({ delivered: 1 }), undefined);
    assert.strictEqual(deliveryProblem({ delivered: 0, miss: 'no-session' }), 'no-session');
    assert.strictEqual(deliveryProblem({ delivered: 0, miss: 'unknown-session' }), 'no-session');
    assert.strictEqual(deliveryProblem({ delivered: 0, miss: 'session-closed' }), 'session-closed');
    // An unknown session may live on another instance: the cluster routes it, the flow is not warned.
    assert.strictEqual(deliveryProblem({ delivered: 0, miss: 'unknown-session', published: true }), undefined);
  });
});
