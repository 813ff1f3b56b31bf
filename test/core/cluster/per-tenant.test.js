'use strict';
// Per-tenant delivery on one real redis-server: three core listener instances in this process,
// each with its own bus, real ws clients. Tenant messages reach only the instances that hold the
// tenant, replies only the session's owner; tenant channels outlive their last session by the
// linger, so a flapping connection causes no subscription churn.
const assert = require('assert');
const Redis = require('ioredis');
const { startRedis } = require('../../helpers/redis-server');
const { connect, waitForMessages, closeAll, delay } = require('../../helpers/ws-client');
const { signHS256 } = require('../../helpers/tokens');
const { waitFor } = require('../../helpers/wait');
const { built } = require('../../helpers/built');
const { tenantChannel } = built('core/cluster/cluster-bus');
const { WebSocketPlusMetrics } = built('core/metrics/metrics');
const { instanceGroup, SECRET } = require('./instances');
const {
  tenantMessagesOnlyWhereHeld,
  repliesReachTheirOwner,
  unknownSessionsDroppedAndCounted,
  subscriptionsConfirmed,
} = require('./scenarios');

const PREFIX = 'wsplus-per-tenant';
const LINGER_MS = 2500;

describe('core/cluster per-tenant delivery (real Redis, three instances)', function () {
  let redis;
  let admin;
  let group;
  let a;
  let b;
  let c;
  let clients;
  const sockets = [];

  before(async function () {
    redis = await startRedis();
    admin = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    admin.on('error', () => {});
    group = instanceGroup({ prefix: PREFIX, bus: { url: redis.url, tenantLingerMs: LINGER_MS } });
    [a, b, c] = await group.startAll(['A', 'B', 'C']);
  });
  after(async function () {
    closeAll(sockets);
    if (group) await group.stopAll();
    admin?.disconnect();
    if (redis) await redis.close();
  });

  const subscribers = async (tenant) => (await admin.pubsub('NUMSUB', tenantChannel(PREFIX, tenant)))[1];

  it('delivers a tenant message to the instances holding the tenant, once each, and to no other', async function () {
    const figures = await tenantMessagesOnlyWhereHeld(group, [a, b, c], 20);
    assert.strictEqual(figures.perMessageToHolding, 1);
    assert.strictEqual(figures.perMessageToNonHolding, 0);
    clients = figures.clients;
    // Redis itself knows only the holders as subscribers.
    assert.deepStrictEqual(
      [await subscribers('acme'), await subscribers('globex'), await subscribers('initech')],
      [2, 1, 1],
    );
  });

  it('reports the lag of every delivery received (publish time in the envelope)', async function () {
    const metrics = new WebSocketPlusMetrics();
    const unwatch = metrics.watchListener(b.listener);
    try {
      const before = b.bus.stats.received;
      for (let i = 0; i < 5; i++) a.listener.deliver(clients.aAcme.session.id, `timed ${i}`);
      await waitFor(() => b.bus.stats.received === before + 5, 5000, 'five received on B');
      const text = await metrics.metrics();
      const lagCount = /websocket_plus_cluster_lag_seconds_count\{listener="\/ws\/group"\} (\d+)/.exec(text);
      assert.ok(lagCount, text);
      assert.strictEqual(Number(lagCount[1]), 5);
      assert.match(text, /websocket_plus_cluster_lag_seconds_bucket\{le="\+Inf",listener="\/ws\/group"\} 5/);
    } finally {
      unwatch();
    }
  });

  it("sends a reply for another instance's session to that instance only", async function () {
    await repliesReachTheirOwner([a, b, c], clients, 10);
  });

  it('drops replies for sessions no instance holds, and counts them', async function () {
    await unknownSessionsDroppedAndCounted([a, b, c]);
    const metrics = new WebSocketPlusMetrics();
    const unwatch = metrics.watchListener(c.listener);
    const text = await metrics.metrics();
    unwatch();
    assert.match(text, /websocket_plus_cluster_unroutable_total\{listener="\/ws\/group"\} 2/);
  });

  it('accepts the first client of a tenant on an instance once the tenant is subscribed there', async function () {
    const aFresh = await group.client(a, 'fresh');
    assert.strictEqual(b.bus.isSubscribed('fresh'), false);
    for (let i = 0; i < 3; i++) {
      const token = await signHS256(SECRET, { tenant_id: 'fresh', sub: `fresh-user-${i}` });
      const { ws } = await connect(b.rec.url(`token=${token}`));
      sockets.push(ws);
      // At the client's open: Redis has confirmed the instance's subscription, so a delivery made
      // now on another instance reaches it.
      assert.strictEqual(b.bus.isSubscribed('fresh'), true);
      a.listener.deliver(aFresh.session.id, `at open ${i}`);
      assert.deepStrictEqual(await waitForMessages(ws, 1, 5000), [`at open ${i}`]);
      ws.close();
      await waitFor(() => b.listener.registry.countForTenant('fresh') === 0, 3000, 'closed');
    }
    // One subscription for all three (the linger kept it between them).
    assert.strictEqual(await subscribers('fresh'), 2);
  });

  it('keeps the subscription of a flapping tenant, then drops it after the linger', async function () {
    const stats = () => [c.bus.stats.tenantSubscribes, c.bus.stats.tenantUnsubscribes];
    const [subscribes, unsubscribes] = stats();
    let first = await group.client(c, 'flappy');
    await subscriptionsConfirmed([c]);
    assert.deepStrictEqual(stats(), [subscribes + 1, unsubscribes]);
    for (let i = 0; i < 5; i++) {
      first.ws.close();
      await waitFor(() => c.listener.registry.countForTenant('flappy') === 0, 3000, 'closed');
      first = await group.client(c, 'flappy');
    }
    // Five times its last session closed and a new one came within the linger: nothing was sent.
    assert.deepStrictEqual(stats(), [subscribes + 1, unsubscribes]);
    assert.strictEqual(await subscribers('flappy'), 1);
    // And it still receives: a reply made on A for it.
    a.listener.deliver(first.session.id, 'still here');
    assert.deepStrictEqual(await waitForMessages(first.ws, 1, 5000), ['still here']);
    first.ws.close();
    await waitFor(() => c.listener.registry.countForTenant('flappy') === 0, 3000, 'closed');
    await delay(LINGER_MS / 4);
    assert.strictEqual(await subscribers('flappy'), 1, 'kept within the linger');
    await waitFor(async () => (await subscribers('flappy')) === 0, LINGER_MS * 4, 'unsubscribed after the linger');
    assert.deepStrictEqual(stats(), [subscribes + 1, unsubscribes + 1]);
    assert.strictEqual(c.bus.isSubscribed('flappy'), false);
  });

  it('subscribes the current tenants again after Redis restarts', async function () {
    const { aAcme, bAcme } = clients;
    await redis.restart();
    await waitFor(() => [a, b, c].every((i) => i.bus.state === 'ready'), 15000, 'ready again');
    await subscriptionsConfirmed([a, b, c]);
    assert.strictEqual(await subscribers('acme'), 2);
    const seen = bAcme.ws.messages.length;
    a.listener.deliver(aAcme.session.id, 'after restart');
    await waitForMessages(bAcme.ws, seen + 1, 5000);
    assert.strictEqual(bAcme.ws.messages.at(-1), 'after restart');
  });
});
