'use strict';
// Randomized tenant isolation: 100 tenants, hundreds of real ws clients on three core listeners
// (session, tenant and global scope), over 100,000 deliveries through WebSocketListener.deliver
// with connection churn in between. A model of who should get what is the oracle: every client's
// receipts must equal the model's tally exactly, and no frame may reach a client it was not for.
const assert = require('assert');
const { signHS256 } = require('../helpers/tokens');
const { connect } = require('../helpers/ws-client');
const { startHttpServer, startListener, prng, waitFor } = require('../helpers/hardening');

const SECRET = 'isolation-secret-0123456789abcdef-0123456789';
const SEED = Number(process.env.ISOLATION_SEED || 20240601);
const TENANTS = 100;
const CLIENTS = { session: 100, tenant: 300, global: 50 };
const CALLS = { session: 40_000, tenant: 15_000, global: 300 };
const BATCHES = 20;

describe('hardening: randomized tenant isolation', function () {
  this.timeout(120000);
  let srv;
  const L = {};
  const clients = { session: [], tenant: [], global: [] };
  const closedIds = { session: [], tenant: [], global: [] };
  const violations = [];
  let clientSeq = 0;

  const tenantName = (i) => `tenant-${String(i).padStart(3, '0')}`;

  async function openClient(scope, tenant) {
    const name = `${scope}-c${clientSeq++}`;
    const token = await signHS256(SECRET, { tenant_id: tenant, sub: name });
    const rec = L[scope];
    const { ws } = await connect(rec.url(`token=${token}`));
    assert.ok(ws && ws.readyState === 1, `${name} did not open`);
    const session = [...rec.listener.registry.forTenant(tenant)].find((s) => s.subject === name);
    assert.ok(session, `no session recorded for ${name}`);
    const client = { name, scope, tenant, ws, sessionId: session.id, received: 0, expected: 0 };
    ws.removeAllListeners('message');
    ws.on('message', (data) => {
      client.received++;
      const [msgScope, msgTenant, target] = data.toString().split('|');
      if (msgScope !== scope) violations.push(`${name} (${scope}) got a ${msgScope} frame`);
      else if (scope === 'session' && target !== client.sessionId)
        violations.push(`${name} got a frame for session ${target}`);
      else if (scope === 'tenant' && msgTenant !== tenant)
        violations.push(`${name} (${tenant}) got a frame for ${msgTenant}`);
    });
    clients[scope].push(client);
    return client;
  }

  async function closeClient(client) {
    const rec = L[client.scope];
    const before = rec.listener.connectionCount;
    client.ws.close();
    await waitFor(() => rec.listener.connectionCount === before - 1, 3000, `${client.name} to close`);
    clients[client.scope].splice(clients[client.scope].indexOf(client), 1);
    closedIds[client.scope].push({ id: client.sessionId, tenant: client.tenant });
  }

  before(async function () {
    srv = await startHttpServer();
    for (const scope of Object.keys(CLIENTS)) {
      L[scope] = startListener(srv, `/ws/${scope}`, { verifier: { mode: 'hs256', secret: SECRET }, scope });
    }
    const r = prng(SEED);
    for (const [scope, count] of Object.entries(CLIENTS)) {
      // every tenant is present on the tenant listener; the rest are spread at random
      const tenants = Array.from({ length: count }, (_, i) =>
        scope === 'tenant' && i < TENANTS ? tenantName(i) : tenantName(r.int(TENANTS)),
      );
      for (let i = 0; i < tenants.length; i += 50)
        await Promise.all(tenants.slice(i, i + 50).map((t) => openClient(scope, t)));
      assert.strictEqual(L[scope].listener.connectionCount, count);
    }
  });

  after(async function () {
    for (const list of Object.values(clients)) for (const c of list) c.ws.terminate();
    for (const rec of Object.values(L)) await rec.listener.close();
    await srv.close();
  });

  it(
    `${Object.values(CALLS).reduce((a, b) => a + b)} deliver() calls, ` +
      `≥ 100,000 receipts: exact tallies, zero cross-tenant frames`,
    async function () {
      const r = prng(SEED + 1);
      let seq = 0;
      let totalExpected = 0;
      let totalDelivered = 0;
      const misses = { session: 0, tenant: 0, global: 0 };

      /** The model: who must receive a frame sent on `scope` for session `id`. */
      function recipients(scope, id) {
        const live = clients[scope];
        if (scope === 'global') return live;
        const owner = live.find((c) => c.sessionId === id);
        if (scope === 'session') return owner ? [owner] : [];
        const tenant = owner ? owner.tenant : closedIds.tenant.find((c) => c.id === id)?.tenant;
        return tenant === undefined ? [] : live.filter((c) => c.tenant === tenant);
      }

      /** A session id to route by: mostly live ones, sometimes closed, foreign, forged or absent. */
      function pickId(scope) {
        const roll = r();
        if (roll < 0.85 || closedIds[scope].length === 0) return r.pick(clients[scope]).sessionId;
        if (roll < 0.9) return r.pick(closedIds[scope]).id;
        if (roll < 0.95)
          return r.pick(clients[r.pick(['session', 'tenant', 'global'].filter((s) => s !== scope))]).sessionId;
        return r.pick([
          undefined,
          null,
          '',
          'default',
          tenantName(3),
          { id: 'x' },
          ['x'],
          42,
          '00000000-0000-0000-0000-000000000000',
        ]);
      }

      const perBatch = Object.fromEntries(Object.entries(CALLS).map(([s, n]) => [s, Math.ceil(n / BATCHES)]));
      for (let batch = 0; batch < BATCHES; batch++) {
        const plan = [];
        for (const [scope, n] of Object.entries(perBatch)) for (let i = 0; i < n; i++) plan.push(scope);
        // interleave the scopes
        for (let i = plan.length - 1; i > 0; i--) {
          const j = r.int(i + 1);
          [plan[i], plan[j]] = [plan[j], plan[i]];
        }
        for (const scope of plan) {
          const id = pickId(scope);
          const targets = recipients(scope, id);
          const tenant =
            scope === 'tenant' ? (targets[0]?.tenant ?? '-') : scope === 'session' ? (targets[0]?.tenant ?? '-') : '*';
          const result = L[scope].listener.deliver(
            id,
            `${scope}|${tenant}|${typeof id === 'string' ? id : '-'}|${seq++}`,
          );
          assert.strictEqual(result.delivered, targets.length, `deliver(${JSON.stringify(id)}) on ${scope}`);
          if (targets.length === 0) misses[scope]++;
          for (const c of targets) c.expected++;
          totalExpected += targets.length;
          totalDelivered += result.delivered;
        }
        const all = [...clients.session, ...clients.tenant, ...clients.global];
        await waitFor(() => all.every((c) => c.received >= c.expected), 20000, `batch ${batch} receipts`);
        for (const c of all)
          assert.strictEqual(c.received, c.expected, `${c.name}: ${c.received} received, ${c.expected} expected`);
        assert.deepStrictEqual(violations, []);

        // churn: a few clients leave, replacements join (random tenants)
        if (batch < BATCHES - 1) {
          for (const scope of Object.keys(clients)) {
            const leaving = Array.from({ length: 3 }, () => r.pick(clients[scope])).filter(
              (c, i, a) => a.indexOf(c) === i,
            );
            for (const c of leaving) await closeClient(c);
            for (let i = 0; i < leaving.length; i++) await openClient(scope, tenantName(r.int(TENANTS)));
          }
        }
      }
      assert.deepStrictEqual(violations, []);
      assert.strictEqual(totalDelivered, totalExpected);
      assert.ok(totalExpected >= 100_000, `only ${totalExpected} receipts`);
      // the odd ids were really exercised
      assert.ok(misses.session > 100 && misses.tenant > 100, JSON.stringify(misses));
      // give any stray frame a moment to show up before the final check
      await new Promise((resolve) => setTimeout(resolve, 200));
      for (const c of [...clients.session, ...clients.tenant, ...clients.global])
        assert.strictEqual(c.received, c.expected, c.name);
      assert.deepStrictEqual(violations, []);
    },
  );
});
