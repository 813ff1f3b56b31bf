'use strict';
const assert = require('assert');
const { built } = require('../../helpers/built');
const { parseListenerConfig, reservedUpgradePaths, listenerRequestPath, handshakeTiming, refuseWhileMisconfigured } =
  built('core/flow/listener-config');
const { DEFAULT_HANDSHAKE_TIMEOUT_MS } = built('core/server/listener');
const { DEFAULT_JWKS_TIMEOUT_MS } = built('core/auth/token-verifier');

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
    assert.strictEqual(
      code(() => parseListenerConfig({ ...base, path: '/debug/ws' }, {})),
      'PATH_FORBIDDEN',
    );
    assert.strictEqual(
      code(() => parseListenerConfig({ ...base, path: '/x/debug/ws/y' }, {})),
      'PATH_FORBIDDEN',
    );
    assert.strictEqual(
      code(() => parseListenerConfig({ ...base, path: '' }, {})),
      'PATH_INVALID',
    );
    assert.strictEqual(
      code(() => parseListenerConfig({ ...base, authMode: 'hs256' }, {})),
      'SECRET_MISSING',
    );
    assert.strictEqual(
      code(() => parseListenerConfig({ ...base, authMode: 'jwks', jwksUri: 'ftp://x' }, {})),
      'JWKS_URI_INVALID',
    );
    assert.strictEqual(
      code(() => parseListenerConfig({ ...base, authMode: 'custom' }, {})),
      'CUSTOM_VERIFIER_MISSING',
    );
    assert.strictEqual(
      code(() => parseListenerConfig({ ...base, tenantFrom: 'static' }, {})),
      'TENANT_MISSING',
    );
    assert.strictEqual(
      code(() => parseListenerConfig({ ...base, scope: 'everyone' }, {})),
      'OPTION_INVALID',
    );
    assert.strictEqual(
      code(() => parseListenerConfig({ ...base, rateLimit: '-1' }, {})),
      'OPTION_INVALID',
    );
    assert.strictEqual(
      code(() => parseListenerConfig({ ...base, authMode: 'HS256' }, {})),
      'OPTION_INVALID',
    );
  });

  it('refuses a static tenant id that no handshake could use, at deploy', function () {
    for (const tenantId of ['acme\uD800', '\uDC00x', 'a\u0000b', 'x'.repeat(257)]) {
      assert.strictEqual(
        code(() => parseListenerConfig({ ...base, tenantFrom: 'static', tenantId }, {})),
        'OPTION_INVALID',
        JSON.stringify(tenantId),
      );
      // Also as the tenant of unverified connections (tenant from claim, mode none).
      assert.strictEqual(
        code(() => parseListenerConfig({ ...base, tenantFrom: 'claim', tenantId }, {})),
        'OPTION_INVALID',
        JSON.stringify(tenantId),
      );
    }
    assert.strictEqual(
      parseListenerConfig({ ...base, tenantFrom: 'static', tenantId: 'acme-\u{1F600}' }, {}).tenant.staticTenantId,
      'acme-\u{1F600}',
    );
  });

  it('reads numbers in the units the editor shows', function () {
    const config = parseListenerConfig(
      {
        ...base,
        sessionTimeout: '2',
        rateLimit: '10',
        maxConnections: '3',
        heartbeat: '0',
        origins: 'https://a.example, https://b.example',
      },
      {},
    );
    assert.strictEqual(config.sessionTimeoutMs, 2000);
    assert.strictEqual(config.rateLimit, 10);
    assert.strictEqual(config.maxConnectionsPerTenant, 3);
    assert.strictEqual(config.heartbeatMs, 0);
    assert.deepStrictEqual(config.origins, ['https://a.example', 'https://b.example']);
  });

  it('peerProps: "*" by default and when absent, a parsed allowlist in entire-message mode', function () {
    assert.strictEqual(
      parseListenerConfig({ ...base, wholemsg: 'true' }, {}).peerProps,
      null,
      'absent: every property, as before',
    );
    assert.strictEqual(parseListenerConfig({ ...base, wholemsg: 'true', peerProps: '*' }, {}).peerProps, null);
    assert.deepStrictEqual(
      parseListenerConfig({ ...base, wholemsg: 'true', peerProps: ' payload , topic ' }, {}).peerProps,
      ['payload', 'topic'],
    );
    assert.deepStrictEqual(parseListenerConfig({ ...base, wholemsg: true, peerProps: 'payload' }, {}).peerProps, [
      'payload',
    ]);
  });

  it('peerProps: an invalid list is a configuration error in entire-message mode, unused in payload mode', function () {
    for (const peerProps of ['payload,', 'a.b', '__proto__', '_session', '_msgid', 'constructor', 'payload,*']) {
      assert.strictEqual(
        code(() => parseListenerConfig({ ...base, wholemsg: 'true', peerProps }, {})),
        'OPTION_INVALID',
        peerProps,
      );
      // Payload mode puts the frame in msg.payload: the hidden field neither matters nor fails the node.
      assert.strictEqual(parseListenerConfig({ ...base, wholemsg: 'false', peerProps }, {}).peerProps, null, peerProps);
    }
    assert.strictEqual(
      parseListenerConfig({ ...base, peerProps: 'payload' }, {}).peerProps,
      null,
      'payload mode is the default',
    );
  });

  it("reserves Node-RED's own upgrade endpoints: the editor comms at <httpAdminRoot>comms", function () {
    assert.deepStrictEqual(reservedUpgradePaths({}), ['/comms']);
    assert.deepStrictEqual(reservedUpgradePaths({ httpAdminRoot: '/' }), ['/comms']);
    assert.deepStrictEqual(reservedUpgradePaths({ httpAdminRoot: '/admin' }), ['/admin/comms']);
    assert.deepStrictEqual(reservedUpgradePaths({ httpAdminRoot: 'admin/' }), ['/admin/comms']);
    assert.deepStrictEqual(reservedUpgradePaths({ httpAdminRoot: false }), [], 'no admin API, no comms');
    const forbidden = (path, settings) => code(() => listenerRequestPath(path, settings));
    // httpNodeRoot = httpAdminRoot = "/" (the default): /comms, with or without slashes.
    for (const path of ['/comms', 'comms', '/comms/', 'comms//'])
      assert.strictEqual(forbidden(path, {}), 'PATH_FORBIDDEN', path);
    assert.strictEqual(forbidden('comms', { httpNodeRoot: '/red', httpAdminRoot: '/red' }), 'PATH_FORBIDDEN');
    assert.strictEqual(forbidden('admin/comms', { httpNodeRoot: '/', httpAdminRoot: '/admin' }), 'PATH_FORBIDDEN');
    assert.strictEqual(forbidden('comms', { httpNodeRoot: '/api', httpAdminRoot: '/api/' }), 'PATH_FORBIDDEN');
    assert.strictEqual(forbidden('/x/debug/ws', { httpNodeRoot: '/api' }), 'PATH_FORBIDDEN');
    // Paths that do not collide are served, joined to httpNodeRoot.
    assert.strictEqual(listenerRequestPath('/comms', { httpNodeRoot: '/api', httpAdminRoot: '/' }), '/api/comms');
    assert.strictEqual(listenerRequestPath('/comms', { httpAdminRoot: '/admin' }), '/comms');
    assert.strictEqual(listenerRequestPath('/comms', { httpAdminRoot: false }), '/comms');
    assert.strictEqual(listenerRequestPath('/comms/x', {}), '/comms/x');
    assert.strictEqual(listenerRequestPath('ws/x', { httpNodeRoot: '/api/' }), '/api/ws/x');
  });

  it("answers every handshake before Node-RED's inboundWebSocketTimeout cut", function () {
    // Node-RED's default (setting absent, 0 or "") is 5000 ms.
    for (const unset of [undefined, null, 0, '', 'soon']) {
      assert.deepStrictEqual(
        handshakeTiming(unset),
        { inboundTimeoutMs: 5000, handshakeTimeoutMs: 4000, jwksTimeoutMs: 3000 },
        String(unset),
      );
    }
    assert.strictEqual(
      DEFAULT_HANDSHAKE_TIMEOUT_MS,
      handshakeTiming(undefined).handshakeTimeoutMs,
      'core agrees with a default runtime',
    );
    assert.strictEqual(DEFAULT_JWKS_TIMEOUT_MS, handshakeTiming(undefined).jwksTimeoutMs, 'the JWKS timeout too');
    assert.deepStrictEqual(handshakeTiming(2000), {
      inboundTimeoutMs: 2000,
      handshakeTimeoutMs: 1500,
      jwksTimeoutMs: 1125,
    });
    assert.deepStrictEqual(handshakeTiming('8000'), {
      inboundTimeoutMs: 8000,
      handshakeTimeoutMs: 7000,
      jwksTimeoutMs: 6000,
    });
    assert.deepStrictEqual(handshakeTiming(10000), {
      inboundTimeoutMs: 10000,
      handshakeTimeoutMs: 9000,
      jwksTimeoutMs: 8000,
    });
    for (const inbound of [1, 3, 50, 999, 1000, 4999, 5000, 30000, 120000]) {
      const t = handshakeTiming(inbound);
      assert.ok(
        t.jwksTimeoutMs >= 1 && t.jwksTimeoutMs <= t.handshakeTimeoutMs && t.handshakeTimeoutMs < Math.max(2, inbound),
        JSON.stringify(t),
      );
    }
  });

  it(
    'refuseWhileMisconfigured answers the listener path ' + 'with 503 until stopped; never a path of Node-RED',
    async function () {
      const http = require('http');
      const net = require('net');
      const server = http.createServer();
      await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
      const upgrade = (path) =>
        new Promise((resolve, reject) => {
          const socket = net.connect(server.address().port, '127.0.0.1');
          let answer = '';
          const timer = setTimeout(() => {
            socket.destroy();
            resolve('(no answer)');
          }, 3000);
          socket.on('data', (d) => {
            answer += d;
          });
          socket.on('close', () => {
            clearTimeout(timer);
            resolve(answer.split('\r\n')[0]);
          });
          socket.on('error', reject);
          socket.end(
            `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
              'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
          );
        });
      try {
        assert.strictEqual(refuseWhileMisconfigured(undefined, '/ws', {}), undefined);
        assert.strictEqual(
          refuseWhileMisconfigured(server, '/comms', {}),
          undefined,
          "the editor's own socket is never taken",
        );
        assert.strictEqual(refuseWhileMisconfigured(server, '', {}), undefined);
        const stop = refuseWhileMisconfigured(server, 'broken', { httpNodeRoot: '/api' });
        assert.strictEqual(typeof stop, 'function');
        assert.strictEqual(await upgrade('/api/broken'), 'HTTP/1.1 503 Service Unavailable');
        stop();
        assert.notStrictEqual(await upgrade('/api/broken'), 'HTTP/1.1 503 Service Unavailable');
      } finally {
        await new Promise((resolve) => server.close(resolve));
      }
    },
  );

  it('refresh: "off" by default, "message" on request, anything else refused; refreshWindow in seconds', function () {
    const d = parseListenerConfig({ ...base }, {});
    assert.strictEqual(d.refresh, 'off');
    assert.strictEqual(d.refreshWindowMs, 30000);
    const on = parseListenerConfig({ ...base, refresh: 'message', refreshWindow: '12' }, {});
    assert.strictEqual(on.refresh, 'message');
    assert.strictEqual(on.refreshWindowMs, 12000);
    assert.strictEqual(parseListenerConfig({ ...base, refreshWindow: '0' }, {}).refreshWindowMs, 0);
    assert.throws(() => parseListenerConfig({ ...base, refresh: 'always' }, {}), { code: 'OPTION_INVALID' });
    assert.throws(() => parseListenerConfig({ ...base, refreshWindow: '-1' }, {}), { code: 'OPTION_INVALID' });
    assert.throws(() => parseListenerConfig({ ...base, refreshWindow: 'soon' }, {}), { code: 'OPTION_INVALID' });
  });

  it('metricsPerTenant: off unless the listener opts in (checkbox true or "true")', function () {
    assert.strictEqual(parseListenerConfig({ ...base }, {}).metricsPerTenant, false);
    assert.strictEqual(parseListenerConfig({ ...base, metricsPerTenant: false }, {}).metricsPerTenant, false);
    assert.strictEqual(parseListenerConfig({ ...base, metricsPerTenant: 'yes' }, {}).metricsPerTenant, false);
    assert.strictEqual(parseListenerConfig({ ...base, metricsPerTenant: true }, {}).metricsPerTenant, true);
    assert.strictEqual(parseListenerConfig({ ...base, metricsPerTenant: 'true' }, {}).metricsPerTenant, true);
  });

  describe('cluster topology', function () {
    const PASSWORD = 'redis-Pw-9kq2';
    const refusal = (props, secrets) => {
      try {
        parseListenerConfig({ ...base, ...props }, secrets);
      } catch (err) {
        return err;
      }
      assert.fail('not refused');
    };

    it('off by default; "redis" is a single node, as in flows saved before the topologies existed', function () {
      assert.deepStrictEqual(parseListenerConfig({ ...base }, {}).cluster, { mode: 'off' });
      const url = `redis://:${PASSWORD}@127.0.0.1:6379/2`;
      // a flow of an older version: no sentinelName property at all
      assert.deepStrictEqual(parseListenerConfig({ ...base, cluster: 'redis' }, { redisUrl: ` ${url} ` }).cluster, {
        mode: 'redis',
        topology: 'single',
        redisUrl: url,
        sentinelName: '',
        sentinelUsername: '',
        sentinelPassword: '',
        prefix: '',
      });
    });

    it('"redis-cluster" takes comma-separated seed node URLs', function () {
      const url = `redis://:${PASSWORD}@127.0.0.1:7000,redis://127.0.0.1:7001, rediss://127.0.0.1:7002`;
      const config = parseListenerConfig({ ...base, cluster: 'redis-cluster', clusterPrefix: 'p' }, { redisUrl: url });
      assert.deepStrictEqual(config.cluster, {
        mode: 'redis-cluster',
        topology: 'cluster',
        redisUrl: url,
        sentinelName: '',
        sentinelUsername: '',
        sentinelPassword: '',
        prefix: 'p',
      });
    });

    it('"redis-sentinel" takes sentinel URLs and the master name; the name is read for Sentinel only', function () {
      const url = 'redis://127.0.0.1:26379,redis://127.0.0.1:26380';
      const config = parseListenerConfig(
        { ...base, cluster: 'redis-sentinel', sentinelName: ' mymaster ' },
        { redisUrl: url },
      );
      assert.deepStrictEqual(config.cluster, {
        mode: 'redis-sentinel',
        topology: 'sentinel',
        redisUrl: url,
        sentinelName: 'mymaster',
        sentinelUsername: '',
        sentinelPassword: '',
        prefix: '',
      });
      // a name left over from an earlier choice is not an error, and not used
      const single = parseListenerConfig(
        { ...base, cluster: 'redis', sentinelName: 'left over' },
        { redisUrl: 'redis://127.0.0.1:6379' },
      );
      assert.strictEqual(single.cluster.sentinelName, '');
    });

    it("takes the Sentinels' own user and password for Sentinel only, as written; a user needs the password", function () {
      const url = `redis://:${PASSWORD}@127.0.0.1:26379,redis://127.0.0.1:26380`;
      const secrets = { redisUrl: url, sentinelUsername: 'watcher', sentinelPassword: ' sentinel-Pw ' };
      const sentinel = parseListenerConfig({ ...base, cluster: 'redis-sentinel', sentinelName: 'm' }, secrets).cluster;
      assert.deepStrictEqual(
        [sentinel.redisUrl, sentinel.sentinelUsername, sentinel.sentinelPassword],
        [url, 'watcher', ' sentinel-Pw '],
      );
      // credentials left over from an earlier choice are not used by the other topologies
      for (const cluster of ['redis', 'redis-cluster']) {
        const other = parseListenerConfig(
          { ...base, cluster },
          { ...secrets, redisUrl: 'redis://127.0.0.1:6379' },
        ).cluster;
        assert.deepStrictEqual([other.sentinelUsername, other.sentinelPassword], ['', ''], cluster);
      }
      // a password alone is the plain requirepass case
      const passwordOnly = parseListenerConfig(
        { ...base, cluster: 'redis-sentinel', sentinelName: 'm' },
        { redisUrl: url, sentinelPassword: 'p' },
      ).cluster;
      assert.deepStrictEqual([passwordOnly.sentinelUsername, passwordOnly.sentinelPassword], ['', 'p']);
      const err = refusal(
        { cluster: 'redis-sentinel', sentinelName: 'm' },
        { redisUrl: url, sentinelUsername: 'watcher' },
      );
      assert.strictEqual(err.code, 'OPTION_INVALID');
      assert.match(err.message, /Sentinel username given without the Sentinel password/);
      assert.ok(!err.message.includes(PASSWORD));
    });

    it('refuses an unknown topology, a missing or malformed URL list and a missing master name', function () {
      assert.strictEqual(refusal({ cluster: 'redis-shards' }, {}).code, 'OPTION_INVALID');
      for (const cluster of ['redis', 'redis-cluster', 'redis-sentinel']) {
        const props = { cluster, sentinelName: 'mymaster' };
        assert.strictEqual(refusal(props, {}).code, 'REDIS_URL_INVALID', cluster);
        assert.strictEqual(refusal(props, { redisUrl: '   ' }).code, 'REDIS_URL_INVALID', cluster);
        assert.strictEqual(refusal(props, { redisUrl: 'http://127.0.0.1:6379' }).code, 'REDIS_URL_INVALID', cluster);
      }
      // a list is for Redis Cluster and Sentinel; a Redis Cluster has database 0 only
      assert.strictEqual(
        refusal({ cluster: 'redis' }, { redisUrl: 'redis://127.0.0.1:6379,redis://127.0.0.1:6380' }).code,
        'REDIS_URL_INVALID',
      );
      assert.strictEqual(
        refusal({ cluster: 'redis-cluster' }, { redisUrl: 'redis://127.0.0.1:7000/2' }).code,
        'REDIS_URL_INVALID',
      );
      // every URL of a list is checked, not just the first
      const second = refusal(
        { cluster: 'redis-cluster' },
        { redisUrl: `redis://127.0.0.1:7000,http://user:${PASSWORD}@127.0.0.1:7001` },
      );
      assert.strictEqual(second.code, 'REDIS_URL_INVALID');
      for (const sentinelName of [undefined, '', '  ', 'my master', 'tab\tname', 'x'.repeat(201)]) {
        const err = refusal({ cluster: 'redis-sentinel', sentinelName }, { redisUrl: 'redis://127.0.0.1:26379' });
        assert.strictEqual(err.code, 'SENTINEL_NAME_INVALID', JSON.stringify(sentinelName));
      }
      assert.strictEqual(
        parseListenerConfig(
          { ...base, cluster: 'redis-sentinel', sentinelName: 'x'.repeat(200) },
          { redisUrl: 'redis://127.0.0.1:26379' },
        ).cluster.sentinelName.length,
        200,
      );
    });

    it('never puts a URL or its password in the error', function () {
      const urls = [
        `http://user:${PASSWORD}@127.0.0.1:6379`,
        `redis://:${PASSWORD}@127.0.0.1:7000,ftp://:${PASSWORD}@127.0.0.1:7001`,
        `not a url ${PASSWORD}`,
      ];
      for (const cluster of ['redis', 'redis-cluster', 'redis-sentinel']) {
        for (const redisUrl of urls) {
          const err = refusal({ cluster, sentinelName: 'm' }, { redisUrl });
          assert.ok(!err.message.includes(PASSWORD), `${cluster}: ${err.message}`);
          assert.ok(!err.message.includes('127.0.0.1'), `${cluster}: ${err.message}`);
        }
      }
    });
  });
});
