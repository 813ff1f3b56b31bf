'use strict';
// The per-tenant delivery checks every Redis topology must pass (single Redis, Redis Cluster,
// Sentinel): three instances, tenants each held by the instances named, real ws clients.
const assert = require('assert');
const { waitForMessages, expectNoMessage, delay } = require('../../helpers/ws-client');
const { waitFor } = require('../../helpers/wait');
const { built } = require('../../helpers/built');
const { deliveryProblem } = built('core/server/listener');
const { statsOf, grown } = require('./instances');

/** Waits until every instance's bus has Redis's confirmation for the tenants its sessions hold. */
async function subscriptionsConfirmed(instances) {
  await waitFor(
    () => instances.every((i) => [...i.listener.registry.tenants()].every((tenant) => i.bus.isSubscribed(tenant))),
    10000,
    'tenant subscriptions confirmed',
  );
}

/**
 * Three instances A, B, C: acme on A and B, globex on B only, initech on C only. `count` tenant
 * messages from each holder; deliveries received from Redis are counted per instance.
 * Returns the figures (deliveries per tenant message to holding and non-holding instances).
 */
async function tenantMessagesOnlyWhereHeld(group, [a, b, c], count) {
  const aAcme = await group.client(a, 'acme');
  const bAcme = await group.client(b, 'acme');
  const bGlobex = await group.client(b, 'globex');
  const cInitech = await group.client(c, 'initech');
  await subscriptionsConfirmed([a, b, c]);
  const before = statsOf([a, b, c]);
  for (let i = 0; i < count; i++) {
    assert.strictEqual(a.listener.deliver(aAcme.session.id, `acme ${i}`).published, true);
    assert.strictEqual(b.listener.deliver(bGlobex.session.id, `globex ${i}`).published, true);
    assert.strictEqual(c.listener.deliver(cInitech.session.id, `initech ${i}`).published, true);
  }
  const expected = (tenant) => Array.from({ length: count }, (_, i) => `${tenant} ${i}`);
  // Each message once, in order, on every connection of its tenant and nowhere else.
  assert.deepStrictEqual(await waitForMessages(bAcme.ws, count, 10000), expected('acme'));
  assert.deepStrictEqual(await waitForMessages(aAcme.ws, count, 10000), expected('acme'));
  assert.deepStrictEqual(await waitForMessages(bGlobex.ws, count, 10000), expected('globex'));
  assert.deepStrictEqual(await waitForMessages(cInitech.ws, count, 10000), expected('initech'));
  // Own echoes come back to the publishers (subscribed to their own tenants): wait for all of them,
  // then nothing else can still be on its way.
  await waitFor(
    () => {
      const now = statsOf([a, b, c]);
      return grown(before, now, 'ownEchoes').every((n) => n === count);
    },
    10000,
    'own echoes',
  );
  await delay(100);
  const received = grown(before, statsOf([a, b, c]), 'received');
  // acme messages from A: B holds acme (1 each), C holds none of A's tenants (0). globex from B and
  // initech from C: no other instance holds them (0 everywhere).
  assert.deepStrictEqual(received, [0, count, 0]);
  for (const ws of [aAcme.ws, bAcme.ws, bGlobex.ws, cInitech.ws]) await expectNoMessage(ws, 50);
  // Holding instances other than the publisher: B for acme. Non-holding: C for acme, A and C for
  // globex, A and B for initech.
  const toNonHolding = received[0] + received[2] + (received[1] - count);
  return {
    perMessageToHolding: received[1] / count,
    perMessageToNonHolding: toNonHolding / (5 * count),
    clients: { aAcme, bAcme, bGlobex, cInitech },
  };
}

/**
 * Replies made on C for sessions held by B (globex, held nowhere else) and by A (acme, also on B):
 * each reaches its owner only, which resolves the tenant itself and fans it out to the tenant's
 * other holders; C never gets any of it back.
 */
async function repliesReachTheirOwner([a, b, c], clients, count) {
  const { aAcme, bAcme, bGlobex } = clients;
  const seen = {
    aAcme: aAcme.ws.messages.length,
    bAcme: bAcme.ws.messages.length,
    bGlobex: bGlobex.ws.messages.length,
  };
  const before = statsOf([a, b, c]);
  for (let i = 0; i < count; i++) {
    const toB = c.listener.deliver(bGlobex.session.id, `reply globex ${i}`);
    assert.deepStrictEqual([toB.delivered, toB.miss, toB.published], [0, 'unknown-session', true]);
    assert.strictEqual(deliveryProblem(toB), undefined);
    c.listener.deliver(aAcme.session.id, `reply acme ${i}`);
  }
  await waitForMessages(bGlobex.ws, seen.bGlobex + count, 10000);
  await waitForMessages(aAcme.ws, seen.aAcme + count, 10000);
  await waitForMessages(bAcme.ws, seen.bAcme + count, 10000);
  await delay(150);
  const received = grown(before, statsOf([a, b, c]), 'received');
  // A: its acme replies; B: its globex replies plus acme fanned out by A; C: nothing.
  assert.deepStrictEqual(received, [count, 2 * count, 0]);
  assert.deepStrictEqual(
    bGlobex.ws.messages.slice(seen.bGlobex),
    Array.from({ length: count }, (_, i) => `reply globex ${i}`),
  );
}

/** Replies for sessions no instance holds are dropped and counted where that is known. */
async function unknownSessionsDroppedAndCounted([a, b, c]) {
  const before = statsOf([a, b, c]);
  // Not an id of this cluster at all: never published, and ws.out+ hears "no session".
  const foreign = c.listener.deliver('not-a-session-of-ours', 'x');
  assert.deepStrictEqual([foreign.published, deliveryProblem(foreign)], [false, 'no-session']);
  // An id whose owner tag no instance has: published, and Redis reports no receiver.
  assert.strictEqual(c.listener.deliver('ffffffff-0000-4000-8000-000000000000', 'x').published, true);
  // B's tag, but a session B never had.
  assert.strictEqual(c.listener.deliver(`${b.bus.ownerTag}-0000-4000-8000-000000000000`, 'x').published, true);
  await waitFor(() => b.bus.stats.unknownSessions === before[1].unknownSessions + 1, 5000, 'unknown on B');
  await waitFor(() => c.bus.stats.unroutable === before[2].unroutable + 2, 5000, 'unroutable on C');
  assert.deepStrictEqual(grown(before, statsOf([a, b, c]), 'received'), [0, 1, 0]);
}

module.exports = {
  subscriptionsConfirmed,
  tenantMessagesOnlyWhereHeld,
  repliesReachTheirOwner,
  unknownSessionsDroppedAndCounted,
};
