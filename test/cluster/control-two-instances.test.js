'use strict';
// ws.control+ across two real Node-RED processes sharing one real redis-server: each instance
// serves POST /control (http in → function → ws.control+ → function → http response), so a test
// can ask either instance to list, count or close the sessions of both.
const assert = require('assert');
const { startRedis } = require('../helpers/redis-server');
const { spawnInstance, printOutputOnFailure } = require('../helpers/nr-instance');
const { connect, waitForClose, waitForMessages, closeAll, delay } = require('../helpers/ws-client');
const { signHS256, now } = require('../helpers/tokens');
const { controlFlow, LISTENER_ID } = require('../helpers/control-flow');

const SECRET = 'control-two-instances-secret-0123456789abc';

// Refresh on, with no `expiring` notice, so a test can refresh a session and list it elsewhere.
const flow = () => controlFlow({ refresh: 'message', refreshWindow: '0' });

describe('cluster: ws.control+ on two Node-RED instances through Redis', function () {
  this.timeout(60000);
  let redis;
  let one;
  let two;
  let sockets = [];

  before(async function () {
    redis = await startRedis();
    const env = { NR_LOG_LEVEL: 'info' };
    const credentials = { [LISTENER_ID]: { secret: SECRET, redisUrl: redis.url } };
    [one, two] = await Promise.all([
      spawnInstance({ flows: flow(), credentials, env }),
      spawnInstance({ flows: flow(), credentials, env }),
    ]);
    for (const inst of [one, two]) await inst.waitForLines(/cluster connected/, 1);
  });

  after(async function () {
    closeAll(sockets);
    await Promise.all([one && one.stop(), two && two.stop()]);
    if (redis) await redis.close();
  });

  afterEach(async function () {
    printOutputOnFailure(this.currentTest, { one, two });
    closeAll(sockets);
    sockets = [];
  });

  async function open(inst, tenant, sub, exp) {
    const token = await signHS256(SECRET, { tenant_id: tenant, sub }, exp === undefined ? {} : { exp });
    const result = await connect(inst.url('/ws/app', `token=${token}`));
    sockets.push(result.ws);
    assert.strictEqual(result.opened, true, `connect refused with ${result.status}`);
    return result.ws;
  }

  async function control(inst, body) {
    const res = await fetch(`http://127.0.0.1:${inst.port}/control`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(20000),
    });
    assert.strictEqual(res.status, 200);
    return res.json();
  }

  /** Both instances have announced themselves (presence) and see each other's sessions. */
  async function untilBothAnswer(expectedTotal) {
    const deadline = Date.now() + 15000;
    for (;;) {
      const answer = await control(one, { action: 'count' });
      if (answer.result.total === expectedTotal && answer.partial === false) return answer;
      if (Date.now() > deadline) throw new Error(`count never reached ${expectedTotal}: ${JSON.stringify(answer)}`);
      await delay(200);
    }
  }

  it('lists and counts the sessions of both instances from either one', async function () {
    await open(one, 'acme', 'alice');
    await open(two, 'acme', 'bob');
    await open(two, 'globex', 'alice');
    const counted = await untilBothAnswer(3);
    assert.deepStrictEqual(counted.result, { total: 3, byTenant: { acme: 2, globex: 1 } });
    const listed = await control(two, { action: 'list', subject: 'alice' });
    assert.strictEqual(listed.partial, false);
    assert.deepStrictEqual(listed.result.map((s) => s.tenantId).sort(), ['acme', 'globex']);
    const instances = new Set(listed.result.map((s) => s.instance));
    assert.strictEqual(instances.size, 2, 'each session names the instance that holds it');
  });

  it('after a refresh on one instance, a list on the other shows the new expiresAt', async function () {
    const firstExp = now() + 120;
    const ws = await open(one, 'acme', 'hana', firstExp);
    await open(two, 'acme', 'ivan');
    await untilBothAnswer(2);
    const before = await control(two, { action: 'list', subject: 'hana' });
    assert.strictEqual(before.partial, false);
    assert.strictEqual(before.result.length, 1);
    assert.strictEqual(before.result[0].expiresAt, firstExp * 1000);
    const { id, openedAt, instance } = before.result[0];

    const newExp = now() + 900;
    const token = await signHS256(SECRET, { tenant_id: 'acme', sub: 'hana' }, { exp: newExp });
    ws.send(JSON.stringify({ type: 'websocket-plus:refresh', token }));
    const [answer] = await waitForMessages(ws, 1, 5000);
    assert.deepStrictEqual(JSON.parse(answer), { type: 'websocket-plus:refreshed', exp: newExp });

    const after = await control(two, { action: 'list', subject: 'hana' });
    assert.strictEqual(after.partial, false);
    assert.deepStrictEqual(
      after.result.map((s) => ({ id: s.id, openedAt: s.openedAt, instance: s.instance, expiresAt: s.expiresAt })),
      [{ id, openedAt, instance, expiresAt: newExp * 1000 }],
      'the same session, now expiring at the refreshed exp',
    );
  });

  it('a logout (close by subject) reaches the sockets on both instances', async function () {
    const a1 = await open(one, 'acme', 'dora');
    const a2 = await open(two, 'acme', 'dora');
    const other = await open(two, 'acme', 'erin');
    await untilBothAnswer(3);
    const answer = await control(one, {
      action: 'close',
      tenantId: 'acme',
      subject: 'dora',
      code: 4401,
      reason: 'logged out',
    });
    assert.deepStrictEqual(answer, { result: { closed: 2 }, partial: false });
    assert.deepStrictEqual(await waitForClose(a1), { code: 4401, reason: 'logged out' });
    assert.deepStrictEqual(await waitForClose(a2), { code: 4401, reason: 'logged out' });
    await delay(100);
    assert.strictEqual(other.readyState, 1);
  });

  it('an instance killed before answering makes the answer partial, not a hang', async function () {
    await open(one, 'acme', 'frank');
    await open(two, 'acme', 'gina');
    await untilBothAnswer(2);
    await two.kill();
    const started = Date.now();
    const answer = await control(one, { action: 'count' });
    const took = Date.now() - started;
    assert.strictEqual(answer.partial, true);
    assert.deepStrictEqual(answer.result, { total: 1, byTenant: { acme: 1 } });
    // The answer timeout is 1 s; the bound only says "settled", generous for a loaded machine.
    assert.ok(took < 10000, `answered after ${took} ms`);
  });
});
