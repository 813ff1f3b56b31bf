'use strict';
const assert = require('assert');
const { built } = require('../../helpers/built');
const { SessionRegistry, route } = built('core/server/session-registry');

function session(id, tenantId) {
  return { id, tenantId, subject: undefined, authStatus: 'verified', connection: { id } };
}

describe('core/session-registry', function () {
  it('indexes sessions by tenant', function () {
    const registry = new SessionRegistry();
    registry.add(session('a1', 'a'));
    registry.add(session('a2', 'a'));
    registry.add(session('b1', 'b'));
    assert.deepStrictEqual(
      [...registry.forTenant('a')].map((s) => s.id),
      ['a1', 'a2'],
    );
    assert.strictEqual(registry.countForTenant('b'), 1);
    assert.strictEqual(registry.countForTenant('c'), 0);
    registry.remove('b1');
    assert.deepStrictEqual([...registry.tenants()], ['a']);
  });

  it('a tenant broadcast touches only that tenant (cost follows the tenant)', function () {
    const registry = new SessionRegistry();
    for (let i = 0; i < 10000; i++) registry.add(session(`x${i}`, `t${i % 1000}`));
    let visited = 0;
    const targets = route(registry, 'tenant', 'x5').targets;
    for (const t of targets) {
      visited++;
      assert.strictEqual(t.tenantId, 't5');
    }
    assert.strictEqual(visited, 10);
  });

  it('routes by the recorded tenant, per scope', function () {
    const registry = new SessionRegistry();
    registry.add(session('a1', 'a'));
    registry.add(session('a2', 'a'));
    registry.add(session('b1', 'b'));
    assert.deepStrictEqual(
      [...route(registry, 'session', 'a1').targets].map((s) => s.id),
      ['a1'],
    );
    assert.deepStrictEqual(
      [...route(registry, 'tenant', 'a2').targets].map((s) => s.id),
      ['a1', 'a2'],
    );
    assert.deepStrictEqual(
      [...route(registry, 'global', undefined).targets].map((s) => s.id),
      ['a1', 'a2', 'b1'],
    );
    assert.strictEqual(route(registry, 'tenant', undefined).miss, 'no-session');
    assert.strictEqual(route(registry, 'tenant', 'forged').miss, 'unknown-session');
    assert.strictEqual(route(registry, 'session', { id: 'a1' }).miss, 'no-session');
  });

  it('a recently closed session still routes to its tenant, and the record is bounded', function () {
    const registry = new SessionRegistry(2);
    registry.add(session('a1', 'a'));
    registry.add(session('a2', 'a'));
    registry.remove('a1');
    assert.deepStrictEqual(
      [...route(registry, 'tenant', 'a1').targets].map((s) => s.id),
      ['a2'],
    );
    const closed = route(registry, 'session', 'a1');
    assert.strictEqual(closed.miss, 'session-closed');
    assert.strictEqual(closed.tenantId, 'a');
    registry.add(session('z1', 'z'));
    registry.add(session('z2', 'z'));
    registry.remove('z1');
    registry.remove('z2');
    assert.strictEqual(registry.tenantOf('a1'), undefined, 'oldest closed record evicted');
    assert.strictEqual(registry.tenantOf('z2'), 'z');
  });
});
