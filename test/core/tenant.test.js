'use strict';
const assert = require('assert');
const { resolveTenant, normaliseTenantId } = require('../../nodes/lib/core/tenant');

const claimPolicy = { from: 'claim', claim: 'tenant_id', staticTenantId: '' };

describe('core/tenant', function () {
  it('takes the tenant from the claim', function () {
    assert.strictEqual(resolveTenant(claimPolicy, { tenant_id: 'acme' }), 'acme');
    assert.strictEqual(resolveTenant(claimPolicy, { tenant_id: 42 }), '42');
  });

  it('refuses missing, empty, non-scalar or absurd tenant claims', function () {
    for (const value of [undefined, '', {}, [], ['a'], null, true, 1.5, 'x'.repeat(300), 'a\nb', Number.MAX_SAFE_INTEGER + 2]) {
      const claims = value === undefined ? {} : { tenant_id: value };
      assert.throws(() => resolveTenant(claimPolicy, claims), (err) => err.code === 'TENANT_INVALID', JSON.stringify(value));
    }
  });

  it('trusts no claim without a verified token; static wins when set', function () {
    assert.strictEqual(resolveTenant(claimPolicy, null), 'default');
    assert.strictEqual(resolveTenant({ ...claimPolicy, staticTenantId: 'fixed' }, null), 'fixed');
    assert.strictEqual(resolveTenant({ from: 'static', claim: 'tenant_id', staticTenantId: 'fixed' }, { tenant_id: 'other' }), 'fixed');
    assert.strictEqual(normaliseTenantId('ok'), 'ok');
  });
});
