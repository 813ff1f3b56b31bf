'use strict';
// LocalTenantLimiter: a per-tenant slot count that refuses beyond the limit, is independent per
// tenant, gives slots back on release and never goes below zero.
const assert = require('assert');
const { built } = require('../../helpers/built');
const { LocalTenantLimiter } = built('core/server/tenant-limiter');

describe('core/server/tenant-limiter LocalTenantLimiter', function () {
  it('gives out `max` slots per tenant, then refuses', function () {
    const limiter = new LocalTenantLimiter(2);
    assert.strictEqual(limiter.acquire('a'), true);
    assert.strictEqual(limiter.acquire('a'), true);
    assert.strictEqual(limiter.acquire('a'), false);
    assert.strictEqual(limiter.held('a'), 2, 'a refused acquire takes no slot');
  });

  it('counts each tenant on its own', function () {
    const limiter = new LocalTenantLimiter(1);
    assert.strictEqual(limiter.acquire('a'), true);
    assert.strictEqual(limiter.acquire('b'), true);
    assert.strictEqual(limiter.acquire('a'), false);
    assert.strictEqual(limiter.held('b'), 1);
    assert.strictEqual(limiter.held('c'), 0);
  });

  it('gives a released slot back', function () {
    const limiter = new LocalTenantLimiter(1);
    limiter.acquire('a');
    limiter.release('a');
    assert.strictEqual(limiter.held('a'), 0);
    assert.strictEqual(limiter.acquire('a'), true);
  });

  it('does not turn an extra release into an extra slot', function () {
    const limiter = new LocalTenantLimiter(2);
    limiter.release('a');
    limiter.acquire('a');
    limiter.release('a');
    limiter.release('a');
    assert.strictEqual(limiter.held('a'), 0);
    assert.strictEqual(limiter.acquire('a'), true);
    assert.strictEqual(limiter.acquire('a'), true);
    assert.strictEqual(limiter.acquire('a'), false);
  });

  it('has no limit when max is 0, but still counts', function () {
    const limiter = new LocalTenantLimiter(0);
    for (let i = 0; i < 1000; i++) assert.strictEqual(limiter.acquire('a'), true);
    assert.strictEqual(limiter.held('a'), 1000);
  });
});
