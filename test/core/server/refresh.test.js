'use strict';
// In-band token refresh (listener `refresh: "message"`): a refresh frame is verified as at the
// handshake, moves the session's 4001 to the new exp and is answered; a failing token keeps the old
// expiry; another tenant or subject closes with 1008; refreshes faster than 1/s close with 1008; the
// frame never reaches the flow; "expiring" is announced once per expiry. Short-lived real tokens.
const assert = require('assert');
const WebSocket = require('ws');
const { built } = require('../../helpers/built');
const { startHttpServer, startListener } = require('../../helpers/listener');
const { connect, waitForClose, waitForMessages, closeAll, delay } = require('../../helpers/ws-client');
const { signHS256, now } = require('../../helpers/tokens');
const { waitFor } = require('../../helpers/wait');
const { trackTimers } = require('../../helpers/timers');

const { readRefreshFrame } = built('core/server/refresh');

const SECRET = 'refresh-test-secret-0123456789abcdef-xyz';
const refreshFrame = (token) => JSON.stringify({ type: 'websocket-plus:refresh', token });
const parsed = (ws) => ws.messages.map((m) => JSON.parse(m));
const ofType = (ws, type) => parsed(ws).filter((m) => m.type === `websocket-plus:${type}`);

describe('core/server/refresh', function () {
  this.timeout(20000);
  let srv;
  let rec;
  const sockets = [];
  let flowMessages;
  let refreshes;

  function start(options = {}) {
    rec = startListener(srv, '/r', {
      verifier: { mode: 'hs256', secret: SECRET, clockToleranceSeconds: 0 },
      refresh: 'message',
      refreshWindowMs: 0,
      ...options,
    });
    flowMessages = [];
    refreshes = [];
    rec.listener.on('message', (_s, data) => flowMessages.push(data));
    rec.listener.on('refresh', (_s, result) => refreshes.push(result));
  }

  async function open(claims, exp) {
    const token = await signHS256(SECRET, { tenant_id: 'acme', sub: 'alice', ...claims }, { exp });
    const { ws } = await connect(rec.url(`token=${token}`));
    sockets.push(ws);
    return ws;
  }

  const sign = (claims, exp) => signHS256(SECRET, { tenant_id: 'acme', sub: 'alice', ...claims }, { exp });

  beforeEach(async function () {
    srv = await startHttpServer();
  });

  afterEach(async function () {
    closeAll(sockets.splice(0));
    await rec?.listener.close();
    rec = undefined;
    await srv.close();
  });

  it('no 4001 while refreshed; 4001 at the last refreshed exp; _session unchanged', async function () {
    start();
    const first = now() + 2;
    const ws = await open({}, first);
    const session = rec.opens[0];
    const info = { ...session.info };
    const second = now() + 4;
    ws.send(refreshFrame(await sign({}, second)));
    await waitForMessages(ws, 1);
    assert.deepStrictEqual(parsed(ws)[0], { type: 'websocket-plus:refreshed', exp: second });
    assert.strictEqual(rec.listener.expiresAtOf(session), second * 1000);
    // Past the first exp: still open.
    await waitFor(() => Date.now() > first * 1000 + 300, 5000, 'first exp passed');
    assert.strictEqual(ws.readyState, WebSocket.OPEN);
    const closed = await waitForClose(ws, 6000);
    assert.strictEqual(closed.code, 4001);
    assert.ok(Date.now() >= second * 1000 - 5, 'closed before the refreshed exp');
    assert.deepStrictEqual({ ...session.info }, info);
    assert.deepStrictEqual(refreshes, ['refreshed']);
    assert.deepStrictEqual(flowMessages, []);
  });

  it('"expiring" arrives once, before exp, and again once per refreshed expiry', async function () {
    start({ refreshWindowMs: 1500 });
    const exp = now() + 3;
    const ws = await open({}, exp);
    await waitForMessages(ws, 1, 5000);
    assert.deepStrictEqual(parsed(ws)[0], { type: 'websocket-plus:expiring', exp });
    assert.strictEqual(ws.readyState, WebSocket.OPEN);
    const next = now() + 3;
    ws.send(refreshFrame(await sign({}, next)));
    await waitForMessages(ws, 3, 5000);
    assert.deepStrictEqual(parsed(ws).slice(1), [
      { type: 'websocket-plus:refreshed', exp: next },
      { type: 'websocket-plus:expiring', exp: next },
    ]);
    assert.strictEqual((await waitForClose(ws, 6000)).code, 4001);
    assert.strictEqual(ofType(ws, 'expiring').length, 2);
  });

  it('a token of another tenant closes with 1008 "identity changed"', async function () {
    start();
    const ws = await open({}, now() + 60);
    ws.send(refreshFrame(await sign({ tenant_id: 'other' }, now() + 120)));
    const closed = await waitForClose(ws);
    assert.deepStrictEqual(closed, { code: 1008, reason: 'identity changed' });
    assert.deepStrictEqual(ofType(ws, 'refreshed'), []);
    assert.deepStrictEqual(refreshes, ['identity_changed']);
  });

  it('a token of another subject closes with 1008 "identity changed"', async function () {
    start();
    const ws = await open({}, now() + 60);
    ws.send(refreshFrame(await sign({ sub: 'mallory' }, now() + 120)));
    assert.deepStrictEqual(await waitForClose(ws), { code: 1008, reason: 'identity changed' });
  });

  it('refresh-failed for a bad signature and for an expired token; the old expiry stays', async function () {
    start();
    const exp = now() + 60;
    const ws = await open({}, exp);
    const session = rec.opens[0];
    const forged = await signHS256('another-secret-0123456789abcdef-0123', { tenant_id: 'acme', sub: 'alice' });
    ws.send(refreshFrame(forged));
    await waitForMessages(ws, 1);
    assert.deepStrictEqual(parsed(ws)[0], { type: 'websocket-plus:refresh-failed', reason: 'bad signature' });
    assert.strictEqual(rec.listener.expiresAtOf(session), exp * 1000);
    await delay(1050);
    ws.send(refreshFrame(await sign({}, now() - 10)));
    await waitForMessages(ws, 2);
    assert.deepStrictEqual(parsed(ws)[1], { type: 'websocket-plus:refresh-failed', reason: 'expired' });
    assert.strictEqual(rec.listener.expiresAtOf(session), exp * 1000);
    await delay(1050);
    ws.send(JSON.stringify({ type: 'websocket-plus:refresh', token: 42 }));
    await waitForMessages(ws, 3);
    assert.deepStrictEqual(parsed(ws)[2], { type: 'websocket-plus:refresh-failed', reason: 'malformed token' });
    assert.strictEqual(ws.readyState, WebSocket.OPEN);
    assert.deepStrictEqual(refreshes, ['failed', 'failed', 'failed']);
    assert.deepStrictEqual(flowMessages, []);
  });

  it('a failed refresh keeps the old 4001', async function () {
    start();
    const exp = now() + 2;
    const ws = await open({}, exp);
    ws.send(refreshFrame(await signHS256('another-secret-0123456789abcdef-0123', { tenant_id: 'acme', sub: 'alice' })));
    const closed = await waitForClose(ws, 5000);
    assert.strictEqual(closed.code, 4001);
    assert.strictEqual(ofType(ws, 'refresh-failed').length, 1);
  });

  it('two refresh frames within a second close with 1008 "refresh too fast"', async function () {
    start();
    const ws = await open({}, now() + 60);
    const token = await sign({}, now() + 120);
    ws.send(refreshFrame(token));
    ws.send(refreshFrame(token));
    assert.deepStrictEqual(await waitForClose(ws), { code: 1008, reason: 'refresh too fast' });
    assert.ok(refreshes.includes('rate_limited'));
  });

  it('refresh frames count toward rateLimit', async function () {
    start({ rateLimit: 1 });
    const ws = await open({}, now() + 60);
    ws.send('hello');
    ws.send(refreshFrame(await sign({}, now() + 120)));
    assert.deepStrictEqual(await waitForClose(ws), { code: 1008, reason: 'rate limit exceeded' });
    assert.deepStrictEqual(refreshes, []);
  });

  it('refresh frames never reach the flow; ordinary messages (binary too) do', async function () {
    start();
    const ws = await open({}, now() + 60);
    const token = await sign({}, now() + 120);
    ws.send(`{"token":${JSON.stringify(token)},"type":"websocket-plus:refresh"}`);
    ws.send('{"type":"other","text":"websocket-plus:refresh"}');
    ws.send(Buffer.from(refreshFrame(token)));
    await waitFor(() => flowMessages.length === 2, 3000, 'two flow messages');
    await waitForMessages(ws, 1);
    assert.strictEqual(ofType(ws, 'refreshed').length, 1);
    assert.deepStrictEqual(String(flowMessages[0]), '{"type":"other","text":"websocket-plus:refresh"}');
    assert.ok(Buffer.isBuffer(flowMessages[1]), 'a binary frame is never a refresh frame');
  });

  it('with refresh "off" a refresh frame is an ordinary message and no expiring is sent', async function () {
    start({ refresh: 'off', refreshWindowMs: 60000 });
    const ws = await open({}, now() + 30);
    const frame = refreshFrame(await sign({}, now() + 120));
    ws.send(frame);
    await waitFor(() => flowMessages.length === 1, 3000, 'flow message');
    assert.strictEqual(flowMessages[0], frame);
    await delay(100);
    assert.deepStrictEqual(ws.messages, []);
  });

  it(
    'one verification at a time ("refresh in progress"); a ' + 'verification that ends after the close touches nothing',
    async function () {
      const pending = [];
      const verifyToken = (token) =>
        new Promise((resolve) =>
          pending.push(() =>
            resolve({ tenant_id: 'acme', sub: 'alice', exp: now() + (token === 'fourth' ? 600 : 60) }),
          ),
        );
      start({ verifier: { mode: 'custom', verifyToken } });
      // The handshake's own verification.
      const opening = connect(rec.url('token=first'));
      await waitFor(() => pending.length === 1, 3000, 'handshake verification');
      pending.shift()();
      const { ws } = await opening;
      sockets.push(ws);
      ws.send(refreshFrame('second'));
      await waitFor(() => pending.length === 1, 3000, 'refresh verification');
      await delay(1050);
      ws.send(refreshFrame('third'));
      await waitForMessages(ws, 1);
      assert.deepStrictEqual(parsed(ws)[0], { type: 'websocket-plus:refresh-failed', reason: 'refresh in progress' });
      assert.strictEqual(pending.length, 1, 'the second frame was not verified');
      pending.shift()();
      await waitForMessages(ws, 2);
      assert.strictEqual(parsed(ws)[1].type, 'websocket-plus:refreshed');
      // Now one in flight while the client goes away.
      await delay(1050);
      ws.send(refreshFrame('fourth'));
      await waitFor(() => pending.length === 1, 3000, 'third verification');
      ws.close(1000);
      await waitForClose(ws);
      await waitFor(() => rec.listener.connectionCount === 0, 3000, 'session gone');
      const before = refreshes.length;
      const expiresAt = rec.listener.expiresAtOf(rec.opens[0]);
      pending.shift()();
      await delay(50);
      assert.strictEqual(refreshes.length, before, 'a closed session is not refreshed');
      assert.strictEqual(rec.listener.expiresAtOf(rec.opens[0]), expiresAt);
    },
  );

  it(
    'leaves no timer behind: refresh deadlines and ' + 'expiring notices go with the session and the listener',
    async function () {
      const timers = trackTimers({ stacks: true });
      const ours = async () => {
        await timers.settled();
        return timers.where().filter((stack) => stack.includes('nodes/lib/'));
      };
      try {
        start({ refreshWindowMs: 30000 });
        const ws = await open({}, now() + 3600);
        ws.send(refreshFrame(await sign({}, now() + 7200)));
        await waitForMessages(ws, 1);
        await rec.listener.close();
        await delay(50);
        const left = await ours();
        assert.strictEqual(left.length, 0, left.join('\n'));
      } finally {
        timers.stop();
      }
    },
  );

  it('a refresh still being verified when the listener closes leaves no timer and answers nothing', async function () {
    const timers = trackTimers({ stacks: true });
    const ours = async () => {
      await timers.settled();
      return timers.where().filter((stack) => stack.includes('nodes/lib/'));
    };
    let handshakeDone = false;
    // The handshake verifies at once; the refresh never settles (a key server that hangs).
    const verifyToken = () => {
      if (handshakeDone) return new Promise(() => {});
      handshakeDone = true;
      return { tenant_id: 'acme', sub: 'alice', exp: now() + 3600 };
    };
    try {
      start({ verifier: { mode: 'custom', verifyToken } });
      const { ws } = await connect(rec.url('token=t'));
      sockets.push(ws);
      ws.send(refreshFrame('pending'));
      // The refresh deadline (4 s by default) is armed while the verification hangs.
      // Two of ours: the expiry schedule and the refresh deadline.
      await waitFor(async () => (await ours()).length === 2, 3000, 'refresh deadline armed');
      await rec.listener.close();
      await delay(50);
      const left = await ours();
      assert.strictEqual(left.length, 0, left.join('\n'));
      assert.deepStrictEqual(refreshes, []);
      assert.deepStrictEqual(ws.messages, []);
    } finally {
      timers.stop();
    }
  });

  it('readRefreshFrame: only the refresh object, cheaply recognised', function () {
    const b = (s) => Buffer.from(s);
    assert.deepStrictEqual(readRefreshFrame(b('{"type":"websocket-plus:refresh","token":"a.b.c"}'), 8192), {
      token: 'a.b.c',
    });
    assert.deepStrictEqual(readRefreshFrame(b('{"token":"a.b.c","type":"websocket-plus:refresh"}'), 8192), {
      token: 'a.b.c',
    });
    assert.deepStrictEqual(readRefreshFrame(b('{"type":"websocket-plus:refresh"}'), 8192), { token: undefined });
    assert.deepStrictEqual(readRefreshFrame(b('{"type":"websocket-plus:refresh","token":"x","more":1}'), 8192), {
      token: undefined,
    });
    assert.strictEqual(readRefreshFrame(b('hello'), 8192), undefined);
    assert.strictEqual(readRefreshFrame(b('{"type":"websocket-plus:refreshed"}'), 8192), undefined);
    assert.strictEqual(readRefreshFrame(b(' {"type":"websocket-plus:refresh","token":"x"}'), 8192), undefined);
    assert.strictEqual(readRefreshFrame(b('["websocket-plus:refresh"]'), 8192), undefined);
    // Only the compact JSON a client's JSON.stringify writes is recognised; anything else is a message.
    assert.strictEqual(readRefreshFrame(b('{ "type": "websocket-plus:refresh", "token": "x" }'), 8192), undefined);
    assert.strictEqual(readRefreshFrame(b('{"token":"x","more":1,"type":"websocket-plus:refreshx"}'), 8192), undefined);
    assert.strictEqual(readRefreshFrame(b('{"a":"websocket-plus:refresh"'), 8192), undefined);
    const big = `{"type":"websocket-plus:refresh","token":"${'x'.repeat(9000)}"}`;
    assert.deepStrictEqual(readRefreshFrame(b(big), 8192), { token: undefined, tooLarge: true });
    assert.strictEqual(
      readRefreshFrame(b(`{"payload":"${'x'.repeat(9000)}","type":"websocket-plus:refresh"}`), 8192),
      undefined,
    );
  });
});
