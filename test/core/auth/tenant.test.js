'use strict';
const assert = require('assert');
const { built } = require('../../helpers/built');
const { resolveTenant, normaliseTenantId } = built('core/auth/tenant');

const claimPolicy = { from: 'claim', claim: 'tenant_id', staticTenantId: '' };

describe('core/tenant', function () {
  it('takes the tenant from the claim', function () {
    assert.strictEqual(resolveTenant(claimPolicy, { tenant_id: 'acme' }), 'acme');
    assert.strictEqual(resolveTenant(claimPolicy, { tenant_id: 42 }), '42');
  });

  it('refuses missing, empty, non-scalar or absurd tenant claims', function () {
    for (const value of [
      undefined,
      '',
      {},
      [],
      ['a'],
      null,
      true,
      1.5,
      'x'.repeat(300),
      'a\nb',
      Number.MAX_SAFE_INTEGER + 2,
    ]) {
      const claims = value === undefined ? {} : { tenant_id: value };
      assert.throws(
        () => resolveTenant(claimPolicy, claims),
        (err) => err.code === 'TENANT_INVALID',
        JSON.stringify(value),
      );
    }
  });

  it('refuses tenant ids that are not well-formed UTF-16 (they would collide once encoded as UTF-8)', function () {
    for (const value of ['acme\uD800', 'acme\uDFFF', '\uDC00\uD800', '\uD800', 'a\uD83Db']) {
      assert.throws(
        () => resolveTenant(claimPolicy, { tenant_id: value }),
        (err) => err.code === 'TENANT_INVALID' && err.publicReason === 'tenant invalid',
        JSON.stringify(value),
      );
      assert.throws(
        () => normaliseTenantId(value),
        (err) => err.code === 'TENANT_INVALID',
        JSON.stringify(value),
      );
    }
    assert.throws(
      () => resolveTenant({ from: 'static', claim: 'tenant_id', staticTenantId: 'fixed\uD800' }, null),
      (err) => err.code === 'TENANT_INVALID',
    );
    // Well-formed text outside the BMP and U+FFFD itself are ordinary ids.
    assert.strictEqual(normaliseTenantId('acme-\u{1F600}'), 'acme-\u{1F600}');
    assert.strictEqual(normaliseTenantId('acme\uFFFD'), 'acme\uFFFD');
  });

  it('trusts no claim without a verified token; static wins when set', function () {
    assert.strictEqual(resolveTenant(claimPolicy, null), 'default');
    assert.strictEqual(resolveTenant({ ...claimPolicy, staticTenantId: 'fixed' }, null), 'fixed');
    assert.strictEqual(
      resolveTenant({ from: 'static', claim: 'tenant_id', staticTenantId: 'fixed' }, { tenant_id: 'other' }),
      'fixed',
    );
    assert.strictEqual(normaliseTenantId('ok'), 'ok');
  });
});
