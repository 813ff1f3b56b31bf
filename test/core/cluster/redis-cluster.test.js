'use strict';
// The cluster bus, the connection limiter and the session control on a real 3-master Redis Cluster
// (redis-server --cluster-enabled yes on loopback ports, joined with redis-cli --cluster create):
// sharded pub/sub (SPUBLISH/SSUBSCRIBE), tenant channels spread over the shards, each tenant message
// delivered only to the instances holding the tenant.
const assert = require('assert');
const { startRedisCluster } = require('../../helpers/redis-cluster');
const { waitFor } = require('../../helpers/wait');
const { built } = require('../../helpers/built');
const { tenantChannel } = built('core/cluster/cluster-bus');
const { instanceGroup } = require('./instances');
const {
  tenantMessagesOnlyWhereHeld,
  repliesReachTheirOwner,
  unknownSessionsDroppedAndCounted,
} = require('./scenarios');

const PREFIX = 'wsplus-on-cluster';

describe('core/cluster on a real Redis Cluster (3 masters, sharded pub/sub)', function () {
  let cluster;
  let group;
  let a;
  let b;
  let c;
  let clients;

  before(async function () {
    this.timeout(60000);
    cluster = await startRedisCluster({ masters: 3 });
    group = instanceGroup({
      prefix: PREFIX,
      bus: { url: cluster.url, topology: 'cluster' },
      maxPerTenant: 2,
      control: true,
    });
    [a, b, c] = await group.startAll(['A', 'B', 'C']);
  });
  after(async function () {
    if (group) await group.stopAll();
    if (cluster) await cluster.stop();
  });

  /** Sharded subscribers of a channel, asked on the master that serves its slot. */
  async function shardSubscribers(channel) {
    const port = await cluster.masterPortOf(channel);
    const node = cluster.ports.indexOf(port);
    const out = await cluster.cli(['PUBSUB', 'SHARDNUMSUB', channel], node);
    return Number(out.trim().split('\n')[1]);
  }

  it('delivers a tenant message to the instances holding the tenant, once each, and to no other', async function () {
    const figures = await tenantMessagesOnlyWhereHeld(group, [a, b, c], 20);
    assert.strictEqual(figures.perMessageToHolding, 1);
    assert.strictEqual(figures.perMessageToNonHolding, 0);
    clients = figures.clients;
    const channels = ['acme', 'globex', 'initech'].map((t) => tenantChannel(PREFIX, t));
    // Sharded subscriptions, on the shard of each channel's slot; nothing on classic pub/sub.
    assert.deepStrictEqual(await Promise.all(channels.map(shardSubscribers)), [2, 1, 1]);
    const classic = await cluster.cli(['PUBSUB', 'NUMSUB', ...channels]);
    assert.deepStrictEqual(
      classic
        .trim()
        .split('\n')
        .filter((_, i) => i % 2 === 1)
        .map(Number),
      [0, 0, 0],
    );
  });

  it('spreads tenant channels over the shards', async function () {
    const channels = Array.from({ length: 30 }, (_, i) => tenantChannel(PREFIX, `tenant-${i}`));
    assert.strictEqual(new Set(await cluster.masterPortsOf(channels)).size, 3);
  });

  it("sends a reply for another instance's session to that instance only", async function () {
    await repliesReachTheirOwner([a, b, c], clients, 10);
  });

  it('drops replies for sessions no instance holds, and counts them', async function () {
    await unknownSessionsDroppedAndCounted([a, b, c]);
  });

  it('holds maxConnections across the instances (limiter scripts on the slot of each tenant)', async function () {
    const first = await group.attempt(a, 'capped');
    const second = await group.attempt(b, 'capped');
    const third = await group.attempt(c, 'capped');
    assert.deepStrictEqual([first.status, second.status, third.status], [101, 101, 429]);
    first.ws.close();
    await waitFor(() => a.listener.registry.countForTenant('capped') === 0, 3000, 'closed on A');
    await waitFor(async () => (await group.attempt(c, 'capped')).status === 101, 5000, 'slot free for C');
  });

  it('lists and counts the sessions of every instance through the cluster (session control)', async function () {
    await waitFor(
      async () => {
        const answer = await a.control.count({});
        return !answer.partial && answer.answered.length === 3;
      },
      10000,
      'all three instances answer',
    );
    const answer = await c.control.count({ tenantId: 'acme' });
    assert.deepStrictEqual([answer.result.total, answer.partial], [2, false]);
  });

  it("delivers again after the shard serving a tenant's channel restarts (subscribed again)", async function () {
    const { aAcme, bAcme } = clients;
    const port = await cluster.masterPortOf(tenantChannel(PREFIX, 'acme'));
    await cluster.nodes.find((n) => n.port === port).restart();
    const seen = bAcme.ws.messages.length;
    let n = 0;
    await waitFor(
      () => {
        a.listener.deliver(aAcme.session.id, `after restart ${n++}`);
        return bAcme.ws.messages.length > seen;
      },
      20000,
      'a delivery through the restarted shard',
    );
    assert.match(bAcme.ws.messages.at(-1), /^after restart \d+$/);
  });
});
