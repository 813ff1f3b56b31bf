'use strict';
// Token expiry on the listener's shared expiry schedule (one timer per listener, sessions due at
// the same time share a bucket): every session still closes at its own exp with 4001, a session
// that ends earlier leaves nothing behind, and a closed listener keeps no timer.
const assert = require('assert');
const http = require('http');
const WebSocket = require('ws');
const { createListener } = require('../../helpers/listener');
const { connect, waitForClose, closeAll, delay } = require('../../helpers/ws-client');
const { signHS256, now } = require('../../helpers/tokens');
const { trackTimers } = require('../../helpers/timers');

const SECRET = 'listener-expiry-secret-0123456789abcdef';

const { waitFor: until } = require('../../helpers/wait');

describe('core/listener token expiry schedule', function () {
  let server;
  let base;
  let listener;
  const sockets = [];

  beforeEach(async function () {
    server = http.createServer((req, res) => res.end('http'));
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `ws://127.0.0.1:${server.address().port}`;
    listener = createListener(server, '/exp', {
      verifier: { mode: 'hs256', secret: SECRET, clockToleranceSeconds: 0 },
    });
    listener.start();
  });

  afterEach(async function () {
    closeAll(sockets.splice(0));
    await listener.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  async function open(exp) {
    const token = await signHS256(SECRET, { tenant_id: 't' }, { exp });
    const { ws } = await connect(`${base}/exp?token=${token}`);
    sockets.push(ws);
    return ws;
  }

  it('closes every session sharing an exp, and a later exp only at its own time', async function () {
    const soon = now() + 2;
    const a = await open(soon);
    const b = await open(soon);
    const later = await open(soon + 2);
    const started = Date.now();
    const [ca, cb] = await Promise.all([waitForClose(a, 5000), waitForClose(b, 5000)]);
    assert.strictEqual(ca.code, 4001);
    assert.strictEqual(cb.code, 4001);
    // The session with the later exp is still open when the earlier bucket fired.
    assert.strictEqual(later.readyState, WebSocket.OPEN);
    const cl = await waitForClose(later, 6000);
    assert.strictEqual(cl.code, 4001);
    // Not before its exp (the schedule never fires early).
    assert.ok(Date.now() >= (soon + 2) * 1000 - 5, 'closed before exp');
    assert.ok(Date.now() - started < 6000);
    await until(() => listener.connectionCount === 0, 2000);
  });

  it('a session that closes before its exp is not closed again, others still expire', async function () {
    const exp = now() + 2;
    const early = await open(exp);
    const stays = await open(exp);
    early.close(1000, 'bye');
    const closedEarly = await waitForClose(early, 3000);
    assert.strictEqual(closedEarly.code, 1000);
    await delay(50);
    assert.strictEqual(listener.connectionCount, 1);
    assert.strictEqual((await waitForClose(stays, 5000)).code, 4001);
  });

  it('one timer for many sessions, and none once the listener is closed', async function () {
    const timers = trackTimers({ stacks: true });
    // Only the package's own timers (mocha and the ws clients keep theirs).
    const ours = async () => {
      await timers.settled();
      return timers.where().filter((stack) => stack.includes('nodes/lib/'));
    };
    try {
      const exp = now() + 3600;
      for (let i = 0; i < 20; i++) await open(exp + (i % 3));
      // 20 sessions, 3 distinct exps: one timer armed for the earliest.
      const live = await ours();
      assert.strictEqual(live.length, 1, live.join('\n'));
      await listener.close();
      await delay(50);
      const left = await ours();
      assert.strictEqual(left.length, 0, left.join('\n'));
    } finally {
      timers.stop();
    }
  });
});
