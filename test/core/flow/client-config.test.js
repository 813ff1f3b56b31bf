'use strict';
// A client's flow properties (as the editor or core's websocket-client stores them) to connection options.
const assert = require('assert');
const { built } = require('../../helpers/built');
const { headerResolver, heartbeatMs, parseClientConfig, clientSession } = built('core/flow/client-config');
const { CLIENT_DEFAULTS } = built('core/flow/defaults');

const noEnv = () => undefined;

describe('core/flow/client-config', function () {
  it('resolves core-shaped headers at each call: static, env, preset, other name', function () {
    const env = { API_KEY: 'one' };
    const resolve = headerResolver(
      [
        { keyType: 'other', keyValue: 'X-Static', valueType: 'other', valueValue: 'v1' },
        { keyType: 'Authorization', keyValue: '', valueType: 'env', valueValue: 'API_KEY' },
        { keyType: 'User-Agent', keyValue: '', valueType: 'preset-agent', valueValue: '' },
        { keyType: 'other', keyValue: '', valueType: 'other', valueValue: 'no name' },
        { keyType: 'other', keyValue: 'X-Missing', valueType: 'env', valueValue: 'NOT_SET' },
        null,
      ],
      (name) => env[name],
    );
    assert.deepStrictEqual(resolve(), { 'X-Static': 'v1', Authorization: 'one', 'User-Agent': 'preset-agent' });
    env.API_KEY = 'two';
    assert.strictEqual(resolve().Authorization, 'two');
    assert.deepStrictEqual(headerResolver(undefined, () => 'x')(), {});
  });

  it('heartbeat: seconds to ms, "" and "0" are off', function () {
    assert.strictEqual(heartbeatMs(''), 0);
    assert.strictEqual(heartbeatMs('0'), 0);
    assert.strictEqual(heartbeatMs('abc'), 0);
    assert.strictEqual(heartbeatMs('15'), 15000);
    assert.strictEqual(heartbeatMs(0.5), 500);
  });

  it('reads the editor defaults as: JWT, payload mode, no heartbeat, 1 MiB messages', function () {
    const config = parseClientConfig({ ...CLIENT_DEFAULTS, path: 'ws://127.0.0.1:1/x' }, 'tok', noEnv);
    assert.strictEqual(config.url, 'ws://127.0.0.1:1/x');
    assert.strictEqual(config.authMode, 'jwt');
    assert.strictEqual(config.token, 'tok');
    assert.strictEqual(config.subprotocol, '');
    assert.strictEqual(config.heartbeatMs, 0);
    assert.strictEqual(config.maxPayload, 1048576);
    assert.strictEqual(config.wholeMessage, false);
    assert.strictEqual(config.peerProps, null);
    assert.deepStrictEqual(config.headers(), {});
  });

  it('reads a node core migrated as it was: no authMode is JWT, no maxPayload is the default', function () {
    const config = parseClientConfig(
      { path: 'ws://h/x', hb: '10', wholemsg: true, peerProps: 'payload, topic' },
      undefined,
      noEnv,
    );
    assert.strictEqual(config.authMode, 'jwt');
    assert.strictEqual(config.heartbeatMs, 10000);
    assert.strictEqual(config.maxPayload, 1048576);
    assert.strictEqual(config.wholeMessage, true);
    assert.deepStrictEqual([...config.peerProps], ['payload', 'topic']);
    assert.strictEqual(parseClientConfig({ path: 'ws://h/x', authMode: 'none' }, undefined, noEnv).authMode, 'none');
  });

  it('maxPayload: bytes as the listener parses them; "" and 0 are the default, a bad value is refused', function () {
    const parse = (maxPayload) => parseClientConfig({ path: 'ws://h/x', maxPayload }, undefined, noEnv).maxPayload;
    assert.strictEqual(parse('2048'), 2048);
    assert.strictEqual(parse(4096.7), 4096);
    assert.strictEqual(parse(''), 1048576);
    assert.strictEqual(parse('0'), 1048576);
    for (const bad of ['-1', 'abc', 'Infinity']) {
      const refused = (err) =>
        err.name === 'ConfigError' && err.code === 'OPTION_INVALID' && /maxPayload/.test(err.message);
      assert.throws(() => parse(bad), refused, bad);
    }
  });

  it('checks peerProps only in entire-message mode', function () {
    assert.strictEqual(parseClientConfig({ path: 'ws://h/x', peerProps: 'a.b' }, undefined, noEnv).peerProps, null);
    const whole = { path: 'ws://h/x', wholemsg: 'true', peerProps: 'a.b' };
    assert.throws(
      () => parseClientConfig(whole, undefined, noEnv),
      (err) => err.code === 'OPTION_INVALID',
    );
  });

  it('a client message carries its socket id and no verified identity', function () {
    assert.deepStrictEqual(clientSession('id-1'), {
      type: 'websocket',
      id: 'id-1',
      authStatus: 'none',
      routingScope: 'session',
    });
  });
});
