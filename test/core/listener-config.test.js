'use strict';
const assert = require('assert');
const { parseListenerConfig } = require('../../nodes/lib/core/listener-config');

const base = { path: 'ws/x', authMode: 'none' };
const code = (fn) => {
  try {
    fn();
  } catch (err) {
    return err.code;
  }
  return 'no error';
};

describe('core/listener-config', function () {
  it('applies defaults that fail closed', function () {
    const config = parseListenerConfig({ path: '/ws/x/' }, { secret: 's' });
    assert.strictEqual(config.path, '/ws/x');
    assert.strictEqual(config.verifier.mode, 'hs256', 'default mode verifies');
    assert.strictEqual(config.scope, 'tenant');
    assert.strictEqual(config.tenant.claim, 'tenant_id');
    assert.strictEqual(config.onExpiry, 'disconnect');
    assert.strictEqual(config.sessionTimeoutMs, 0);
    assert.strictEqual(config.maxPayload, 1048576);
  });

  it('names every configuration problem', function () {
    assert.strictEqual(code(() => parseListenerConfig({ ...base, path: '/debug/ws' }, {})), 'PATH_FORBIDDEN');
    assert.strictEqual(code(() => parseListenerConfig({ ...base, path: '/x/debug/ws/y' }, {})), 'PATH_FORBIDDEN');
    assert.strictEqual(code(() => parseListenerConfig({ ...base, path: '' }, {})), 'PATH_INVALID');
    assert.strictEqual(code(() => parseListenerConfig({ ...base, authMode: 'hs256' }, {})), 'SECRET_MISSING');
    assert.strictEqual(code(() => parseListenerConfig({ ...base, authMode: 'jwks', jwksUri: 'ftp://x' }, {})), 'JWKS_URI_INVALID');
    assert.strictEqual(code(() => parseListenerConfig({ ...base, authMode: 'custom' }, {})), 'CUSTOM_VERIFIER_MISSING');
    assert.strictEqual(code(() => parseListenerConfig({ ...base, tenantFrom: 'static' }, {})), 'TENANT_MISSING');
    assert.strictEqual(code(() => parseListenerConfig({ ...base, scope: 'everyone' }, {})), 'OPTION_INVALID');
    assert.strictEqual(code(() => parseListenerConfig({ ...base, rateLimit: '-1' }, {})), 'OPTION_INVALID');
    assert.strictEqual(code(() => parseListenerConfig({ ...base, authMode: 'HS256' }, {})), 'OPTION_INVALID');
  });

  it('refuses a static tenant id that no handshake could use, at deploy', function () {
    for (const tenantId of ['acme\uD800', '\uDC00x', 'a\u0000b', 'x'.repeat(257)]) {
      assert.strictEqual(code(() => parseListenerConfig({ ...base, tenantFrom: 'static', tenantId }, {})), 'OPTION_INVALID', JSON.stringify(tenantId));
      // Also as the tenant of unverified connections (tenant from claim, mode none).
      assert.strictEqual(code(() => parseListenerConfig({ ...base, tenantFrom: 'claim', tenantId }, {})), 'OPTION_INVALID', JSON.stringify(tenantId));
    }
    assert.strictEqual(parseListenerConfig({ ...base, tenantFrom: 'static', tenantId: 'acme-\u{1F600}' }, {}).tenant.staticTenantId, 'acme-\u{1F600}');
  });

  it('reads numbers in the units the editor shows', function () {
    const config = parseListenerConfig({ ...base, sessionTimeout: '2', rateLimit: '10', maxConnections: '3', heartbeat: '0', origins: 'https://a.example, https://b.example' }, {});
    assert.strictEqual(config.sessionTimeoutMs, 2000);
    assert.strictEqual(config.rateLimit, 10);
    assert.strictEqual(config.maxConnectionsPerTenant, 3);
    assert.strictEqual(config.heartbeatMs, 0);
    assert.deepStrictEqual(config.origins, ['https://a.example', 'https://b.example']);
  });
});
