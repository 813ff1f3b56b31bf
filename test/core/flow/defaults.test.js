'use strict';
// The one home of the flow defaults: the editor's `defaults`, migrate and the parsers agree with it.
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const H = require('../../helpers/editor-html');
const { built } = require('../../helpers/built');
const { LISTENER_DEFAULTS, CLIENT_DEFAULTS, LISTENER_RUNTIME_DEFAULTS, CLIENT_RUNTIME_DEFAULTS } =
  built('core/flow/defaults');
const { parseListenerConfig } = built('core/flow/listener-config');
const { parseClientConfig } = built('core/flow/client-config');
const { MIGRATION_DEFAULTS } = built('core/flow/migrate');

const html = fs.readFileSync(path.join(H.root, 'src', 'editor', 'websocket-plus.html'), 'utf8');
const registration = (type) => H.registrations(html).find((r) => r.type === type);

/** The editor's defaults as the values it stores: a config-node reference without a value is "". */
function editorDefaults(type) {
  const out = {};
  for (const [name, entry] of Object.entries(registration(type).defaults))
    out[name] = 'value' in entry ? entry.value : '';
  return out;
}

describe('core/flow/defaults', function () {
  it('the editor stores exactly the listener defaults of core, in the same order', function () {
    assert.deepStrictEqual(Object.keys(editorDefaults('websocket-plus-listener')), Object.keys(LISTENER_DEFAULTS));
    assert.deepStrictEqual(editorDefaults('websocket-plus-listener'), { ...LISTENER_DEFAULTS });
  });

  it('the editor stores exactly the client defaults of core, in the same order', function () {
    assert.deepStrictEqual(Object.keys(editorDefaults('websocket-plus-client')), Object.keys(CLIENT_DEFAULTS));
    assert.deepStrictEqual(editorDefaults('websocket-plus-client'), { ...CLIENT_DEFAULTS, headers: [] });
  });

  it('is frozen', function () {
    const objects = [
      LISTENER_DEFAULTS,
      CLIENT_DEFAULTS,
      LISTENER_RUNTIME_DEFAULTS,
      CLIENT_RUNTIME_DEFAULTS,
      CLIENT_DEFAULTS.headers,
    ];
    for (const o of objects) assert.ok(Object.isFrozen(o));
    assert.throws(() => {
      'use strict';
      LISTENER_DEFAULTS.maxPayload = '1';
    }, TypeError);
  });

  it('the listener parser turns the defaults into the runtime values', function () {
    const config = parseListenerConfig({ ...LISTENER_DEFAULTS, path: '/ws' }, { secret: 'x'.repeat(32) });
    assert.strictEqual(config.maxPayload, LISTENER_RUNTIME_DEFAULTS.maxPayload);
    assert.strictEqual(config.maxPayload, 1048576);
    assert.strictEqual(config.heartbeatMs, LISTENER_RUNTIME_DEFAULTS.heartbeatMs);
    assert.strictEqual(config.heartbeatMs, 30000);
    assert.strictEqual(config.verifier.clockToleranceSeconds, LISTENER_RUNTIME_DEFAULTS.clockToleranceSeconds);
    assert.strictEqual(config.sessionTimeoutMs, LISTENER_RUNTIME_DEFAULTS.sessionTimeoutMs);
    assert.strictEqual(config.rateLimit, LISTENER_RUNTIME_DEFAULTS.rateLimit);
    assert.strictEqual(config.maxConnectionsPerTenant, LISTENER_RUNTIME_DEFAULTS.maxConnectionsPerTenant);
    assert.strictEqual(config.verifier.mode, LISTENER_DEFAULTS.authMode);
    assert.strictEqual(config.scope, LISTENER_DEFAULTS.scope);
    assert.strictEqual(config.tenant.claim, LISTENER_DEFAULTS.tenantClaim);
    // Absent properties (a flow from an older version) read the same as the defaults.
    const sparse = parseListenerConfig({ path: '/ws' }, { secret: 'x'.repeat(32) });
    assert.deepStrictEqual(
      { ...sparse, verifier: { ...sparse.verifier } },
      { ...config, verifier: { ...config.verifier } },
    );
  });

  it('the client parser turns the defaults into the runtime values', function () {
    const config = parseClientConfig({ ...CLIENT_DEFAULTS, path: 'ws://h/x' }, 't', () => undefined);
    assert.strictEqual(config.maxPayload, CLIENT_RUNTIME_DEFAULTS.maxPayload);
    assert.strictEqual(
      config.maxPayload,
      LISTENER_RUNTIME_DEFAULTS.maxPayload,
      'the client takes the listener default',
    );
    assert.strictEqual(config.heartbeatMs, CLIENT_RUNTIME_DEFAULTS.heartbeatMs);
  });

  it('migrate gives the defaults, except where core behaved otherwise', function () {
    assert.deepStrictEqual(MIGRATION_DEFAULTS['websocket-plus-listener'], { ...LISTENER_DEFAULTS, scope: 'session' });
    assert.deepStrictEqual(MIGRATION_DEFAULTS['websocket-plus-client'], { ...CLIENT_DEFAULTS, authMode: 'none' });
    assert.deepStrictEqual(Object.keys(MIGRATION_DEFAULTS['websocket-plus-client']), Object.keys(CLIENT_DEFAULTS));
  });
});
