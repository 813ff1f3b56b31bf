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

  it('reads numbers in the units the editor shows', function () {
    const config = parseListenerConfig({ ...base, sessionTimeout: '2', rateLimit: '10', maxConnections: '3', heartbeat: '0', origins: 'https://a.example, https://b.example' }, {});
    assert.strictEqual(config.sessionTimeoutMs, 2000);
    assert.strictEqual(config.rateLimit, 10);
    assert.strictEqual(config.maxConnectionsPerTenant, 3);
    assert.strictEqual(config.heartbeatMs, 0);
    assert.deepStrictEqual(config.origins, ['https://a.example', 'https://b.example']);
  });

  it('peerProps: "*" by default and when absent, a parsed allowlist in entire-message mode', function () {
    assert.strictEqual(parseListenerConfig({ ...base, wholemsg: 'true' }, {}).peerProps, null, 'absent: every property, as before');
    assert.strictEqual(parseListenerConfig({ ...base, wholemsg: 'true', peerProps: '*' }, {}).peerProps, null);
    assert.deepStrictEqual(parseListenerConfig({ ...base, wholemsg: 'true', peerProps: ' payload , topic ' }, {}).peerProps, ['payload', 'topic']);
    assert.deepStrictEqual(parseListenerConfig({ ...base, wholemsg: true, peerProps: 'payload' }, {}).peerProps, ['payload']);
  });

  it('peerProps: an invalid list is a configuration error in entire-message mode, unused in payload mode', function () {
    for (const peerProps of ['payload,', 'a.b', '__proto__', '_session', '_msgid', 'constructor', 'payload,*']) {
      assert.strictEqual(code(() => parseListenerConfig({ ...base, wholemsg: 'true', peerProps }, {})), 'OPTION_INVALID', peerProps);
      // Payload mode puts the frame in msg.payload: the hidden field neither matters nor fails the node.
      assert.strictEqual(parseListenerConfig({ ...base, wholemsg: 'false', peerProps }, {}).peerProps, null, peerProps);
    }
    assert.strictEqual(parseListenerConfig({ ...base, peerProps: 'payload' }, {}).peerProps, null, 'payload mode is the default');
  });
});
