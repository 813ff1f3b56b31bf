'use strict';
// Listing, counting and closing live sessions of a real core listener, with real ws clients whose
// tokens (signed with jose) carry different tenants and subjects.
const assert = require('assert');
const { built } = require('../../helpers/built');
const { startHttpServer, startListener } = require('../../helpers/listener');
const { connect, waitForClose, closeAll, delay } = require('../../helpers/ws-client');
const { waitFor } = require('../../helpers/wait');
const { signHS256, now } = require('../../helpers/tokens');
const control = built('core/server/session-control');
const { ControlError, SessionClose } = built('core/errors');

const SECRET = 'session-control-secret-0123456789abcdef';
const WebSocket = require('ws');

describe('core/server/session-control', function () {
  let srv;
  let rec;
  const sockets = [];
  /** Opens a client as `sub` of `tenant`; resolves { ws, session } with the server-side session. */
  const open = async (tenant, sub, options = {}) => {
    const claims = { tenant_id: tenant };
    if (sub !== undefined) claims.sub = sub;
    const before = rec.opens.length;
    const { ws } = await connect(rec.url(`token=${await signHS256(SECRET, claims, options)}`));
    sockets.push(ws);
    await waitFor(() => rec.opens.length > before, 3000, 'server-side open');
    return { ws, session: rec.opens[rec.opens.length - 1] };
  };
  const isOpen = (ws) => ws.readyState === WebSocket.OPEN;

  beforeEach(async function () {
    srv = await startHttpServer();
    rec = startListener(srv, '/ctl', { verifier: { mode: 'hs256', secret: SECRET } });
  });
  afterEach(async function () {
    closeAll(sockets.splice(0));
    await rec.listener.close();
    await srv.close();
  });

  it('names this process with a stable id of host name, pid and a random part', function () {
    assert.match(control.INSTANCE_ID, new RegExp(`^.+:${process.pid}:[0-9a-f]{8}$`));
    assert.strictEqual(built('core/server/session-control').INSTANCE_ID, control.INSTANCE_ID);
  });

  it('lists every session with its identity, times and instance, filtered by tenant and subject', async function () {
    const exp = now() + 600;
    const a1 = await open('a', 'alice', { exp });
    await open('a', 'bob');
    await open('b', 'alice');
    const all = control.listSessions(rec.listener, {});
    assert.strictEqual(all.length, 3);
    const first = all.find((s) => s.id === a1.session.id);
    assert.deepStrictEqual(Object.keys(first).sort(), [
      'authStatus',
      'expiresAt',
      'id',
      'instance',
      'openedAt',
      'routingScope',
      'subject',
      'tenantId',
    ]);
    assert.strictEqual(first.tenantId, 'a');
    assert.strictEqual(first.subject, 'alice');
    assert.strictEqual(first.authStatus, 'verified');
    assert.strictEqual(first.routingScope, 'tenant');
    assert.strictEqual(first.openedAt, a1.session.openedAt);
    assert.ok(first.openedAt > Date.now() - 60_000 && first.openedAt <= Date.now());
    assert.strictEqual(first.expiresAt, exp * 1000);
    assert.strictEqual(first.instance, control.INSTANCE_ID);
    // JSON-safe: a list travels through Redis and HTTP responses unchanged.
    assert.deepStrictEqual(JSON.parse(JSON.stringify(all)), all);

    const pick = (filter) =>
      control
        .listSessions(rec.listener, filter)
        .map((s) => `${s.tenantId}/${s.subject}`)
        .sort();
    assert.deepStrictEqual(pick({ tenantId: 'a' }), ['a/alice', 'a/bob']);
    assert.deepStrictEqual(pick({ subject: 'alice' }), ['a/alice', 'b/alice']);
    assert.deepStrictEqual(pick({ tenantId: 'b', subject: 'alice' }), ['b/alice']);
    assert.deepStrictEqual(pick({ tenantId: 'nobody' }), []);
  });

  it('reports a session without sub or enforced expiry with null subject and expiresAt', async function () {
    await rec.listener.close();
    rec = startListener(srv, '/ctl2', { verifier: { mode: 'hs256', secret: SECRET }, onExpiry: 'allow' });
    await open('c', undefined);
    const [only] = control.listSessions(rec.listener);
    assert.strictEqual(only.subject, null);
    assert.strictEqual(only.expiresAt, null);
  });

  it('counts sessions in total and by tenant, with the same filters', async function () {
    await open('a', 'alice');
    await open('a', 'bob');
    await open('b', 'alice');
    assert.deepStrictEqual(control.countSessions(rec.listener, {}), { total: 3, byTenant: { a: 2, b: 1 } });
    assert.deepStrictEqual(control.countSessions(rec.listener, { tenantId: 'a' }), { total: 2, byTenant: { a: 2 } });
    assert.deepStrictEqual(control.countSessions(rec.listener, { subject: 'alice' }), {
      total: 2,
      byTenant: { a: 1, b: 1 },
    });
    assert.deepStrictEqual(control.countSessions(rec.listener, { tenantId: 'x' }), { total: 0, byTenant: {} });
  });

  it('closes one session by id with the default code and reason, through the listener close path', async function () {
    const a = await open('a', 'alice');
    const b = await open('a', 'bob');
    const closes = [];
    rec.listener.on('close', (s, code, reason) => closes.push({ id: s.id, code, reason }));
    const frame = control.closeFrameFrom({});
    assert.deepStrictEqual(frame, { code: 4003, reason: 'closed by control' });
    assert.deepStrictEqual(frame, { ...SessionClose.CONTROL_CLOSED });
    assert.deepStrictEqual(control.closeSessions(rec.listener, { sessionId: a.session.id }, frame), { closed: 1 });
    assert.deepStrictEqual(await waitForClose(a.ws), { code: 4003, reason: 'closed by control' });
    assert.deepStrictEqual(rec.enforced, ['CONTROL_CLOSED']);
    await waitFor(() => closes.length === 1, 3000, 'close event');
    assert.deepStrictEqual(closes[0], { id: a.session.id, code: 4003, reason: 'closed by control' });
    assert.ok(isOpen(b.ws));
    // Closing it again (or an unknown id) closes nothing.
    assert.deepStrictEqual(control.closeSessions(rec.listener, { sessionId: a.session.id }, frame), { closed: 0 });
    assert.deepStrictEqual(control.closeSessions(rec.listener, { sessionId: 'no-such-session' }, frame), { closed: 0 });
  });

  it(
    'closes every socket of a subject (logout) with ' + 'the flow’s code and reason, in one tenant or all',
    async function () {
      const a1 = await open('a', 'alice');
      const a2 = await open('a', 'alice');
      const other = await open('a', 'bob');
      const bAlice = await open('b', 'alice');
      const frame = control.closeFrameFrom({ code: 4100, reason: 'logged out ✓' });
      const sel = control.closeSelectionFrom({ subject: 'alice', tenantId: 'a' });
      assert.deepStrictEqual(control.closeSessions(rec.listener, sel, frame), { closed: 2 });
      for (const c of [a1, a2])
        assert.deepStrictEqual(await waitForClose(c.ws), { code: 4100, reason: 'logged out ✓' });
      await delay(50);
      assert.ok(isOpen(other.ws));
      assert.ok(isOpen(bAlice.ws), 'the same subject in another tenant is another user');
      assert.deepStrictEqual(
        control.closeSessions(rec.listener, control.closeSelectionFrom({ subject: 'alice' }), frame),
        { closed: 1 },
      );
      assert.strictEqual((await waitForClose(bAlice.ws)).code, 4100);
    },
  );

  it('closes a whole tenant, and everyone only with all === true', async function () {
    const a = await open('a', 'alice');
    const b1 = await open('b', 'bob');
    const b2 = await open('b', 'carol');
    const frame = control.closeFrameFrom({});
    assert.deepStrictEqual(control.closeSessions(rec.listener, control.closeSelectionFrom({ tenantId: 'b' }), frame), {
      closed: 2,
    });
    await waitForClose(b1.ws);
    await waitForClose(b2.ws);
    assert.ok(isOpen(a.ws));
    const c = await open('c', 'dave');
    assert.deepStrictEqual(control.closeSelectionFrom({ all: true }), { all: true });
    assert.deepStrictEqual(control.closeSessions(rec.listener, { all: true }, frame), { closed: 2 });
    assert.strictEqual((await waitForClose(a.ws)).code, 4003);
    assert.strictEqual((await waitForClose(c.ws)).code, 4003);
    await waitFor(() => rec.listener.connectionCount === 0, 3000, 'registry empty');
  });

  it('picks the selectors: explicit ones first, then the message’s own session, then all', function () {
    const own = { id: 'own-session', tenantId: 'a' };
    assert.deepStrictEqual(control.closeSelectionFrom({ _session: own }), { sessionId: 'own-session' });
    assert.deepStrictEqual(control.closeSelectionFrom({ _session: own, sessionId: 's2' }), { sessionId: 's2' });
    assert.deepStrictEqual(control.closeSelectionFrom({ _session: own, subject: 'alice', tenantId: 'a' }), {
      subject: 'alice',
      tenantId: 'a',
    });
    assert.deepStrictEqual(control.closeSelectionFrom({ _session: own, all: true }), { sessionId: 'own-session' });
    assert.deepStrictEqual(control.closeSelectionFrom({ sessionId: 's', tenantId: 't' }), {
      sessionId: 's',
      tenantId: 't',
    });
  });

  it('refuses a close without selector, and closes nobody', async function () {
    const a = await open('a', 'alice');
    for (const msg of [{}, { all: 'true' }, { all: 1 }, { _session: {} }, { _session: { id: '' } }]) {
      assert.throws(
        () => control.closeSelectionFrom(msg),
        (err) => err instanceof ControlError && err.code === 'SELECTOR_MISSING',
        JSON.stringify(msg),
      );
    }
    assert.throws(
      () => control.closeSessions(rec.listener, {}, control.closeFrameFrom({})),
      (err) => err.code === 'SELECTOR_MISSING',
    );
    for (const msg of [{ sessionId: 42 }, { subject: '' }, { tenantId: { id: 'a' } }, { subject: ['alice'] }]) {
      assert.throws(
        () => control.closeSelectionFrom(msg),
        (err) => err.code === 'SELECTOR_INVALID',
        JSON.stringify(msg),
      );
    }
    assert.throws(
      () => control.filterFrom({ tenantId: 7 }),
      (err) => err.code === 'SELECTOR_INVALID',
    );
    await delay(50);
    assert.ok(isOpen(a.ws));
    assert.deepStrictEqual(rec.enforced, []);
  });

  it('refuses a close code outside 4000–4999 and a reason that is not a string of at most 123 bytes', function () {
    for (const code of [1000, 1008, 3999, 5000, 4000.5, '4003', NaN, -1]) {
      assert.throws(
        () => control.closeFrameFrom({ code }),
        (err) => err instanceof ControlError && err.code === 'CODE_INVALID',
        String(code),
      );
    }
    assert.strictEqual(control.closeFrameFrom({ code: 4000 }).code, 4000);
    assert.strictEqual(control.closeFrameFrom({ code: 4999 }).code, 4999);
    assert.strictEqual(control.closeFrameFrom({ reason: 'x'.repeat(123) }).reason.length, 123);
    // 41 three-byte characters = 123 bytes; one more is 126.
    assert.strictEqual(control.closeFrameFrom({ reason: '€'.repeat(41) }).reason, '€'.repeat(41));
    for (const reason of ['x'.repeat(124), '€'.repeat(42), 42, { text: 'x' }, 'lone \uD800 surrogate']) {
      assert.throws(
        () => control.closeFrameFrom({ reason }),
        (err) => err.code === 'REASON_INVALID',
        String(reason).slice(0, 20),
      );
    }
    assert.strictEqual(control.closeFrameFrom({ reason: '' }).reason, '');
  });
});
