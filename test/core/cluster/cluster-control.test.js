'use strict';
// Session control across instances: two (or three) core listeners, each with its own ClusterBus on
// one real redis-server, real ws clients with jose-signed tokens, list/count/close from either side.
const assert = require('assert');
const Redis = require('ioredis');
const { startRedis } = require('../../helpers/redis-server');
const { startHttpServer, startListener } = require('../../helpers/listener');
const { connect, waitForClose, closeAll, delay } = require('../../helpers/ws-client');
const { waitFor } = require('../../helpers/wait');
const { signHS256 } = require('../../helpers/tokens');
const { trackTimers } = require('../../helpers/timers');
const { built } = require('../../helpers/built');
const { ClusterBus } = built('core/cluster/cluster-bus');
const { ClusterSessionControl } = built('core/cluster/cluster-control');
const { closeFrameFrom } = built('core/server/session-control');

const SECRET = 'cluster-control-secret-0123456789abcdef';
const PREFIX = 'wsplus-control-test';
// Generous for a loaded 2-core machine; the tests never assert on speed, only on settling.
const ANSWER_MS = 2000;
const PRESENCE_MS = 300;

describe('core/cluster/cluster-control (real Redis, instances in one process)', function () {
  let redis;
  let admin;
  const instances = [];
  const sockets = [];

  /** One instance: HTTP server, listener with its own bus, and its cluster control labelled `label`. */
  async function startInstance(label, options = {}) {
    const srv = await startHttpServer();
    const bus = new ClusterBus({ url: redis.url, prefix: PREFIX, maxReconnectDelayMs: 200 });
    bus.on('connectionError', () => {});
    const rec = startListener(srv, '/c', { verifier: { mode: 'hs256', secret: SECRET }, cluster: bus });
    await waitFor(() => bus.state === 'ready', 8000, `${label} bus ready`);
    const control = new ClusterSessionControl(bus, rec.listener, {
      answerTimeoutMs: options.answerTimeoutMs ?? ANSWER_MS,
      presenceIntervalMs: PRESENCE_MS,
      instance: label,
    });
    control.start();
    const instance = { label, srv, bus, rec, control, listener: rec.listener, stopped: false };
    instances.push(instance);
    return instance;
  }
  async function stopInstance(instance) {
    if (instance.stopped) return;
    instance.stopped = true;
    await instance.control.stop();
    await instance.listener.close();
    await instance.srv.close();
  }
  const present = async () => (await admin.zrange(`${PREFIX}:control:instances`, 0, -1)).sort();
  async function open(instance, tenant, sub) {
    const before = instance.listener.connectionCount;
    const { ws } = await connect(instance.rec.url(`token=${await signHS256(SECRET, { tenant_id: tenant, sub })}`));
    sockets.push(ws);
    await waitFor(() => instance.listener.connectionCount > before, 3000, 'session registered');
    return ws;
  }

  before(async function () {
    redis = await startRedis();
    admin = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    admin.on('error', () => {});
  });
  after(async function () {
    admin.disconnect();
    if (redis) await redis.close();
  });
  afterEach(async function () {
    closeAll(sockets.splice(0));
    for (const instance of instances.splice(0)) await stopInstance(instance);
    await admin.del(`${PREFIX}:control:instances`);
  });

  it('lists and counts the sessions of every instance, with filters, not partial', async function () {
    const a = await startInstance('A');
    const b = await startInstance('B');
    await waitFor(async () => (await present()).length === 2, 5000, 'both present');
    await open(a, 'acme', 'alice');
    await open(a, 'acme', 'bob');
    await open(b, 'globex', 'alice');
    await open(b, 'acme', 'carol');

    const listed = await a.control.list({});
    assert.strictEqual(listed.partial, false);
    assert.deepStrictEqual(listed.missing, []);
    assert.deepStrictEqual(listed.answered.sort(), ['A', 'B']);
    assert.deepStrictEqual(listed.result.map((s) => `${s.instance}/${s.tenantId}/${s.subject}`).sort(), [
      'A/acme/alice',
      'A/acme/bob',
      'B/acme/carol',
      'B/globex/alice',
    ]);
    const alices = await b.control.list({ subject: 'alice' });
    assert.deepStrictEqual(alices.result.map((s) => `${s.instance}/${s.tenantId}`).sort(), ['A/acme', 'B/globex']);

    const counted = await b.control.count({});
    assert.strictEqual(counted.partial, false);
    assert.deepStrictEqual(counted.result, { total: 4, byTenant: { acme: 3, globex: 1 } });
    assert.deepStrictEqual((await a.control.count({ tenantId: 'acme' })).result, { total: 3, byTenant: { acme: 3 } });
  });

  it('closes a subject on every instance with the code and reason; other users stay', async function () {
    const a = await startInstance('A');
    const b = await startInstance('B');
    await waitFor(async () => (await present()).length === 2, 5000, 'both present');
    const onA = await open(a, 'acme', 'alice');
    const onB = await open(b, 'acme', 'alice');
    const bob = await open(b, 'acme', 'bob');
    const otherTenant = await open(a, 'globex', 'alice');
    const answer = await b.control.close(
      { tenantId: 'acme', subject: 'alice' },
      closeFrameFrom({ code: 4401, reason: 'logged out' }),
    );
    assert.deepStrictEqual(answer.result, { closed: 2 });
    assert.strictEqual(answer.partial, false);
    assert.deepStrictEqual(await waitForClose(onA), { code: 4401, reason: 'logged out' });
    assert.deepStrictEqual(await waitForClose(onB), { code: 4401, reason: 'logged out' });
    await delay(100);
    assert.strictEqual(bob.readyState, 1);
    assert.strictEqual(otherTenant.readyState, 1);
    assert.deepStrictEqual(a.rec.enforced, ['CONTROL_CLOSED']);
  });

  it(
    'an instance that stopped answering makes the answer ' + 'partial, within the answer timeout, never a hang',
    async function () {
      const a = await startInstance('A');
      const b = await startInstance('B');
      const c = await startInstance('C');
      await waitFor(async () => (await present()).length === 3, 5000, 'three present');
      await open(a, 'acme', 'alice');
      await open(b, 'acme', 'bob');
      await open(c, 'acme', 'carol');
      // C vanishes without saying goodbye (its presence entry stays, as after a crash).
      c.stopped = true;
      await c.bus.close();
      const started = Date.now();
      const counted = await a.control.count({});
      const took = Date.now() - started;
      assert.strictEqual(counted.partial, true);
      assert.deepStrictEqual(counted.missing, ['C']);
      assert.deepStrictEqual(counted.result, { total: 2, byTenant: { acme: 2 } });
      assert.ok(took < ANSWER_MS + 5000, `settled after ${took} ms`);
      // The count waited out the answer timeout, longer than three presence intervals: C's entry has
      // expired, so C is no longer expected and the next answer is complete again.
      const closed = await a.control.close({ subject: 'bob' }, closeFrameFrom({}));
      assert.strictEqual(closed.partial, false);
      assert.deepStrictEqual(closed.missing, []);
      assert.deepStrictEqual(closed.result, { closed: 1 });
      await c.control.stop();
      await c.listener.close();
      await c.srv.close();
    },
  );

  it(
    'an instance redeployed under the same name is ' + 'answered by its new listener, not waited for twice',
    async function () {
      const a = await startInstance('A');
      const b = await startInstance('B');
      await waitFor(async () => (await present()).length === 2, 5000, 'both present');
      // A redeploy as Node-RED may order it: the listener (and its bus) goes first, so the old
      // control cannot take its presence entry away.
      b.stopped = true;
      await b.listener.close();
      await b.control.stop();
      await b.srv.close();
      const b2 = await startInstance('B');
      await open(b2, 'acme', 'hana');
      await open(a, 'acme', 'ivan');
      const counted = await a.control.count({});
      assert.strictEqual(counted.partial, false);
      assert.deepStrictEqual(counted.missing, []);
      assert.deepStrictEqual(counted.result, { total: 2, byTenant: { acme: 2 } });
    },
  );

  it('with Redis unreachable, answers for this instance only, marked partial', async function () {
    const a = await startInstance('A');
    await open(a, 'acme', 'alice');
    await a.bus.close();
    const counted = await a.control.count({});
    assert.deepStrictEqual(counted.result, { total: 1, byTenant: { acme: 1 } });
    assert.strictEqual(counted.partial, true);
  });

  it('refuses a close request without selector on the answering side too', async function () {
    await startInstance('A');
    const b = await startInstance('B');
    await waitFor(async () => (await present()).length === 2, 5000, 'both present');
    const onB = await open(b, 'acme', 'alice');
    // A request that a flow could not make (no selector), published straight on the bus.
    const request = { t: 'req', id: 'forged', from: 'A', op: 'close', args: {} };
    await admin.publish(`${PREFIX}:control`, JSON.stringify(request));
    await delay(300);
    assert.strictEqual(onB.readyState, 1);
    assert.deepStrictEqual(b.rec.enforced, []);
  });

  it('stop() leaves its presence and no timer behind', async function () {
    // After mocha has armed this test's own timeout timer (it does so once the test returns its promise).
    await Promise.resolve();
    const timers = trackTimers({ stacks: true });
    try {
      const a = await startInstance('A');
      await waitFor(async () => (await present()).includes('A'), 5000, 'present');
      await stopInstance(a);
      assert.deepStrictEqual(await present(), []);
      await delay(50);
      assert.strictEqual(await timers.settled(), 0, timers.where().join('\n'));
    } finally {
      timers.stop();
    }
  });
});
