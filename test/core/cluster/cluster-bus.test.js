'use strict';
// ClusterBus against a real redis-server: two (or three) buses in this process, as two instances.
const assert = require('assert');
const http = require('http');
const Redis = require('ioredis');
const { startRedis, freePort } = require('../../helpers/redis-server');
const { startFaultServer } = require('../../helpers/fault-server');
const { connect, waitForMessages, expectNoMessage, closeAll, delay } = require('../../helpers/ws-client');
const { built } = require('../../helpers/built');
const {
  ClusterBus,
  loadRedisModule,
  encodeEnvelope,
  decodeEnvelope,
  defaultClusterPrefix,
  tenantChannel,
  ownerTagOf,
  redisUrlProblem,
} = built('core/cluster/cluster-bus');
const { createListener } = require('../../helpers/listener');
const { trackTimers } = require('../../helpers/timers');
const { signHS256 } = require('../../helpers/tokens');

const SECRET = 'cluster-bus-test-secret-0123456789abcdef';

const { waitFor: until } = require('../../helpers/wait');

function recorder() {
  const got = [];
  return {
    got,
    receiveFromCluster(kind, key, frame, binary) {
      got.push({ kind, key, frame: Buffer.from(frame), binary });
    },
  };
}

async function readyBus(url, prefix, receiver, extra = {}) {
  const bus = new ClusterBus({ url, prefix, maxReconnectDelayMs: 200, ...extra });
  bus.on('connectionError', () => {});
  bus.attach(receiver);
  await until(() => bus.state === 'ready', 8000, 'bus ready');
  return bus;
}

describe('core/cluster-bus (real Redis)', function () {
  let redis;
  let admin;
  const buses = [];

  before(async function () {
    redis = await startRedis();
    admin = new Redis(redis.url, {
      lazyConnect: false,
      maxRetriesPerRequest: 1,
      retryStrategy: (n) => Math.min(n * 100, 300),
    });
    admin.on('error', () => {});
  });
  after(async function () {
    admin.disconnect();
    if (redis) await redis.close();
  });
  afterEach(async function () {
    await Promise.all(buses.splice(0).map((b) => b.close()));
    if (!redis.running) await redis.start();
  });

  async function pair(prefix = 'wsplus:/ws/test') {
    const ra = recorder();
    const rb = recorder();
    const a = await readyBus(redis.url, prefix, ra);
    const b = await readyBus(redis.url, prefix, rb);
    buses.push(a, b);
    return { a, b, ra, rb };
  }

  describe('envelope', function () {
    it('round-trips kind, key, publish time, text/binary flag and the exact bytes', function () {
      const frame = Buffer.from([0, 255, 0xc3, 0x28, 10]);
      const env = decodeEnvelope(encodeEnvelope('inst-1', 'tenant', 'acmé', frame, true, 1764547200123));
      assert.deepStrictEqual(
        { ...env, frame: Buffer.from(env.frame) },
        { origin: 'inst-1', kind: 'tenant', key: 'acmé', publishedAt: 1764547200123, frame, binary: true },
      );
      const text = decodeEnvelope(encodeEnvelope('i', 'global', '', Buffer.from('héllo'), false));
      assert.strictEqual(text.binary, false);
      assert.strictEqual(text.frame.toString(), 'héllo');
    });

    it('rejects what is not an envelope', function () {
      assert.strictEqual(decodeEnvelope(Buffer.from('hello world')), undefined);
      assert.strictEqual(decodeEnvelope(Buffer.from([1, 9, 0, 0, 0, 0])), undefined);
      const truncated = encodeEnvelope('inst', 'session', 'abcdef', Buffer.alloc(0), false).subarray(0, 9);
      assert.strictEqual(decodeEnvelope(truncated), undefined);
      // the previous format (no publish time) is not read as this one
      const v1 = Buffer.concat([
        Buffer.from([1, 1, 0, 4]),
        Buffer.from('inst'),
        Buffer.from([0, 4]),
        Buffer.from('acmehello'),
      ]);
      assert.strictEqual(decodeEnvelope(v1), undefined);
    });
  });

  describe('channel names', function () {
    it('gives every tenant id a short channel of safe characters, distinct per tenant and prefix', function () {
      const ids = ['acme', 'ACME', 'a b', '{slot}', 'ünï', 'x'.repeat(5000), ':t:x', '', 'tenant\u0000zero'];
      const channels = ids.map((id) => tenantChannel('wsplus:/ws/a', id));
      for (const channel of channels) assert.match(channel, /^wsplus:\/ws\/a:t:[A-Za-z0-9_-]{22}$/);
      assert.strictEqual(new Set(channels).size, ids.length);
      assert.notStrictEqual(tenantChannel('wsplus:/ws/a', 'acme'), tenantChannel('wsplus:/ws/b', 'acme'));
    });

    it('makes session ids that carry the owner tag and stay random UUIDs otherwise', async function () {
      const bus = new ClusterBus({ url: redis.url, prefix: 'wsplus:/ws/ids' });
      const ids = Array.from({ length: 200 }, () => bus.newSessionId());
      for (const id of ids) {
        assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
        assert.strictEqual(ownerTagOf(id), bus.ownerTag);
      }
      assert.strictEqual(new Set(ids).size, ids.length);
      assert.strictEqual(ownerTagOf('not-an-id'), undefined);
      const other = new ClusterBus({ url: redis.url, prefix: 'wsplus:/ws/ids' });
      assert.notStrictEqual(other.ownerTag, bus.ownerTag);
      await Promise.all([bus.close(), other.close()]);
    });
  });

  describe('configuration', function () {
    it('gives a clear error when the Redis client package cannot be loaded', function () {
      assert.throws(
        () => loadRedisModule('no-such-redis-client-package'),
        /cluster mode needs the "no-such-redis-client-package" package.*MODULE_NOT_FOUND/,
      );
      assert.throws(
        () => new ClusterBus({ url: 'redis://127.0.0.1:1', prefix: 'p', moduleId: 'no-such-redis-client-package' }),
        /could not be loaded/,
      );
    });

    it('refuses non-Redis URLs without echoing them', function () {
      assert.throws(
        () => new ClusterBus({ url: 'http://user:hunter2@host', prefix: 'p' }),
        (err) => /redis:\/\/ or rediss:\/\//.test(err.message) && !err.message.includes('hunter2'),
      );
      assert.throws(() => new ClusterBus({ url: 'not a url', prefix: 'p' }), /invalid/);
      assert.throws(() => new ClusterBus({ url: redis.url, prefix: 'has space' }), /clusterPrefix/);
    });

    it('checks the URL forms of each topology without echoing them', function () {
      const secret = 'hunter2-secret';
      assert.strictEqual(redisUrlProblem('redis://h:1'), undefined);
      // a single URL is one URL, commas and all (a password may have one)
      assert.strictEqual(redisUrlProblem('redis://:pa,ss@h:1'), undefined);
      assert.strictEqual(redisUrlProblem('redis://h:1, rediss://h:2', 'cluster'), undefined);
      assert.strictEqual(redisUrlProblem(`redis://:${secret}@h:26379,redis://h:26380`, 'sentinel'), undefined);
      for (const [url, topology] of [
        [`redis://:${secret}@h:1,,redis://h:2`, 'cluster'],
        [`redis://:${secret}@h:1,http://:${secret}@h:2`, 'sentinel'],
        [`redis://:${secret}@h:1/3`, 'cluster'],
        ['', 'sentinel'],
      ]) {
        const problem = redisUrlProblem(url, topology);
        assert.ok(problem, `${topology} ${url.length}`);
        assert.ok(!problem.includes(secret));
      }
      assert.throws(() => new ClusterBus({ url: 'redis://h:26379', prefix: 'p', topology: 'sentinel' }), /master name/);
    });

    it('never puts the password into its connection errors, in any topology', async function () {
      const secret = 'pw-never-shown-0123';
      // A port nothing listens on: every attempt fails and is reported.
      const one = `redis://user:${secret}@127.0.0.1:${await freePort()}`;
      for (const [topology, url, extra] of [
        ['single', one, {}],
        ['cluster', `${one},${one}`, {}],
        ['sentinel', `${one},${one}`, { sentinelName: 'mymaster', sentinelPassword: secret }],
      ]) {
        const bus = new ClusterBus({ url, topology, prefix: 'wsplus:/ws/secret', maxReconnectDelayMs: 100, ...extra });
        buses.push(bus);
        const errors = [];
        bus.on('connectionError', (e) => errors.push(`${e.message} ${e.stack}`));
        bus.attach(recorder());
        await until(() => errors.length >= 2, 5000, `${topology} connection errors`);
        await bus.close();
        assert.ok(!errors.join('\n').includes(secret), `${topology}: ${errors[0]}`);
      }
    });

    it('derives the default prefix from the listener path', function () {
      assert.strictEqual(defaultClusterPrefix('/ws/a'), 'wsplus:/ws/a');
      assert.notStrictEqual(defaultClusterPrefix('/ws/a'), defaultClusterPrefix('/ws/b'));
    });
  });

  describe('delivery between instances', function () {
    it('hands a tenant publication to the other instance, not back to the publisher', async function () {
      const { a, b, ra, rb } = await pair();
      a.holdTenant('acme');
      b.holdTenant('acme');
      await until(async () => (await admin.pubsub('NUMSUB', tenantChannel(a.prefix, 'acme')))[1] === 2, 5000, 'subs');
      const lags = [];
      b.on('lag', (s) => lags.push(s));
      assert.strictEqual(a.publish('tenant', 'acme', Buffer.from('hello'), false), true);
      await until(() => rb.got.length === 1, 5000, 'delivery on b');
      assert.deepStrictEqual(rb.got[0], { kind: 'tenant', key: 'acme', frame: Buffer.from('hello'), binary: false });
      await until(() => a.stats.ownEchoes === 1, 5000, 'own echo seen');
      assert.strictEqual(ra.got.length, 0);
      assert.strictEqual(b.stats.received, 1);
      assert.strictEqual(lags.length, 1);
      assert.ok(lags[0] >= 0 && lags[0] < 60, `lag ${lags[0]} s`);
    });

    it('hands a tenant publication only to instances that hold the tenant', async function () {
      const { a, b, rb } = await pair('wsplus:/ws/held');
      const rc = recorder();
      const c = await readyBus(redis.url, 'wsplus:/ws/held', rc);
      buses.push(c);
      b.holdTenant('acme');
      c.holdTenant('globex');
      await until(async () => (await admin.pubsub('NUMSUB', tenantChannel(a.prefix, 'acme')))[1] === 1, 5000, 'sub');
      for (let i = 0; i < 5; i++) a.publish('tenant', 'acme', Buffer.from(`m${i}`), false);
      await until(() => rb.got.length === 5, 5000, 'five on b');
      c.publish('global', '', Buffer.from('flush'), false);
      await until(() => rb.got.length === 6, 5000, 'the global after them on b');
      await until(() => a.stats.received === 1, 5000, 'the global on a');
      assert.strictEqual(c.stats.received, 0);
      assert.strictEqual(rc.got.length, 0);
    });

    it('keeps binary and text apart, byte for byte', async function () {
      const { a, b, rb } = await pair();
      const binary = Buffer.from([0xff, 0xfe, 0x00, 0x80, 0xc3]);
      const sessionId = b.newSessionId();
      a.publish('global', '', binary, true);
      a.publish('global', '', Buffer.from('ünïcødé ✓'), false);
      a.publish('session', sessionId, Buffer.alloc(0), true);
      await until(() => rb.got.length === 3, 5000, 'three deliveries');
      assert.deepStrictEqual(rb.got[0], { kind: 'global', key: '', frame: binary, binary: true });
      assert.strictEqual(rb.got[1].binary, false);
      assert.strictEqual(rb.got[1].frame.toString('utf8'), 'ünïcødé ✓');
      assert.deepStrictEqual(rb.got[2], { kind: 'session', key: sessionId, frame: Buffer.alloc(0), binary: true });
    });

    it("routes a reply to the owner's channel only; an id no instance owns is counted, never sent", async function () {
      const { a, b, rb } = await pair('wsplus:/ws/owner');
      const rc = recorder();
      const c = await readyBus(redis.url, 'wsplus:/ws/owner', rc);
      buses.push(c);
      assert.strictEqual(a.publish('session', b.newSessionId(), Buffer.from('to b'), false), true);
      await until(() => rb.got.length === 1, 5000, 'reply on b');
      // no owner tag, or a's own tag (a does not know the session): not published at all
      assert.strictEqual(a.publish('session', 'no-owner-here', Buffer.from('x'), false), false);
      assert.strictEqual(a.publish('session', a.newSessionId(), Buffer.from('x'), false), false);
      assert.strictEqual(a.stats.unroutable, 2);
      // a tag no instance listens on: published, and Redis says nobody took it
      assert.strictEqual(a.publish('session', 'ffffffff-0000-4000-8000-000000000000', Buffer.from('x'), false), true);
      await until(() => a.stats.unroutable === 3, 5000, 'unroutable counted');
      await delay(100);
      assert.strictEqual(c.stats.received, 0);
      assert.strictEqual(rc.got.length, 0);
      assert.strictEqual(rb.got.length, 1);
    });

    it('keeps a released tenant for the linger, then unsubscribes; flapping sends nothing', async function () {
      const { a, b, rb } = await pair('wsplus:/ws/linger');
      const lingering = await readyBus(redis.url, 'wsplus:/ws/linger', recorder(), { tenantLingerMs: 400 });
      buses.push(lingering);
      const channel = tenantChannel(a.prefix, 'acme');
      const subscribers = async () => (await admin.pubsub('NUMSUB', channel))[1];
      lingering.holdTenant('acme');
      await until(async () => (await subscribers()) === 1, 5000, 'subscribed');
      for (let i = 0; i < 20; i++) {
        lingering.releaseTenant('acme');
        lingering.holdTenant('acme');
      }
      assert.deepStrictEqual([lingering.stats.tenantSubscribes, lingering.stats.tenantUnsubscribes], [1, 0]);
      lingering.releaseTenant('acme');
      await delay(150);
      assert.strictEqual(await subscribers(), 1, 'still subscribed within the linger');
      await until(async () => (await subscribers()) === 0, 5000, 'unsubscribed after the linger');
      assert.deepStrictEqual([lingering.stats.tenantSubscribes, lingering.stats.tenantUnsubscribes], [1, 1]);
      assert.strictEqual(lingering.subscribedTenants, 0);
      void b;
      void rb;
    });

    it('never crosses between prefixes (two listeners)', async function () {
      const { a, rb } = await pair('wsplus:/ws/one');
      const rc = recorder();
      const c = await readyBus(redis.url, 'wsplus:/ws/two', rc);
      buses.push(c);
      c.publish('global', '', Buffer.from('from two'), false);
      a.publish('global', '', Buffer.from('from one'), false);
      await until(() => rb.got.length === 1, 5000, 'b delivery');
      await delay(200);
      assert.strictEqual(rb.got[0].frame.toString(), 'from one');
      assert.strictEqual(rc.got.length, 0);
    });

    it('drops publications that are not envelopes, or not for the channel they came on', async function () {
      const { b, rb } = await pair('wsplus:/ws/garbage');
      b.holdTenant('acme');
      const acme = tenantChannel(b.prefix, 'acme');
      await until(async () => (await admin.pubsub('NUMSUB', acme))[1] === 1, 5000, 'subscribed');
      const errors = [];
      b.on('deliveryError', (e) => errors.push(e));
      await admin.publish(acme, 'not an envelope');
      // a valid envelope on the wrong channel is dropped as well
      await admin.publish(
        'wsplus:/ws/garbage:global',
        encodeEnvelope('someone', 'tenant', 'acme', Buffer.from('x'), false),
      );
      // a tenant envelope naming another tenant than its channel's
      await admin.publish(acme, encodeEnvelope('someone', 'tenant', 'globex', Buffer.from('x'), false));
      // a reply for a session of another owner on this instance's channel
      await admin.publish(
        `wsplus:/ws/garbage:i:${b.ownerTag}`,
        encodeEnvelope('someone', 'session', 'ffffffff-0000-4000-8000-000000000000', Buffer.from('x'), false),
      );
      await until(() => b.stats.malformed === 4, 5000, 'malformed counted');
      assert.strictEqual(rb.got.length, 0);
      assert.strictEqual(errors.length, 4);
    });
  });

  describe('Redis outage', function () {
    it('degrades while Redis is down, publishes nothing then, and resumes when it is back', async function () {
      const { a, b, rb } = await pair('wsplus:/ws/outage');
      b.holdTenant('acme');
      const states = [];
      a.on('state', (s) => states.push(s));
      await redis.stop();
      await until(() => a.state === 'degraded' && b.state === 'degraded', 8000, 'degraded');
      assert.strictEqual(a.publish('tenant', 'acme', Buffer.from('while down'), false), false);
      assert.strictEqual(a.stats.skipped, 1);
      await redis.start();
      await until(() => a.state === 'ready' && b.state === 'ready', 10000, 'ready again');
      assert.deepStrictEqual(states, ['degraded', 'ready']);
      // the tenant channel was subscribed again on the new connection
      assert.strictEqual(a.publish('tenant', 'acme', Buffer.from('after'), false), true);
      await until(() => rb.got.length >= 1, 5000, 'delivery after recovery');
      await delay(200);
      // what was published during the outage is never replayed
      assert.deepStrictEqual(
        rb.got.map((g) => g.frame.toString()),
        ['after'],
      );
    });

    it('connects again when a connection was ended from outside the bus', async function () {
      const { a, b, rb } = await pair('wsplus:/ws/ended');
      b.holdTenant('acme');
      await until(() => b.isSubscribed('acme'), 5000, 'subscribed');
      b.commands.disconnect();
      await until(() => b.state !== 'ready', 5000, 'not ready');
      await until(() => b.state === 'ready' && b.isSubscribed('acme'), 10000, 'ready again');
      a.publish('tenant', 'acme', Buffer.from('back'), false);
      await until(() => rb.got.length === 1, 5000, 'delivery');
    });

    it('starts degraded when Redis is unreachable and connects when it appears', async function () {
      await redis.stop();
      const bus = new ClusterBus({ url: redis.url, prefix: 'wsplus:/ws/late', maxReconnectDelayMs: 200 });
      bus.on('connectionError', () => {});
      buses.push(bus);
      bus.attach(recorder());
      await until(() => bus.state === 'degraded', 8000, 'degraded');
      assert.strictEqual(bus.publish('global', '', Buffer.from('x'), false), false);
      await redis.start();
      await until(() => bus.state === 'ready', 10000, 'ready');
    });
  });

  describe('a Redis that accepts and never answers', function () {
    it('holds neither connection: the bus is ready once answers come, without a restart', async function () {
      const fault = await startFaultServer({ mode: 'silent' });
      try {
        const bus = new ClusterBus({
          url: `redis://127.0.0.1:${fault.port}`,
          prefix: 'wsplus:/ws/silent',
          connectTimeoutMs: 200,
          commandTimeoutMs: 200,
          maxReconnectDelayMs: 100,
        });
        bus.on('connectionError', () => {});
        buses.push(bus);
        const rx = recorder();
        bus.attach(rx);
        bus.holdTenant('acme');
        await until(() => fault.accepted >= 2, 5000, 'both connections accepted');
        assert.notStrictEqual(bus.state, 'ready');
        // From now on new connections reach the real Redis; the silent ones stay silent.
        fault.setMode('forward', { forwardPort: redis.port });
        await until(() => bus.state === 'ready', 8000, `ready after the fault went away (state ${bus.state})`);
        const other = await readyBus(redis.url, 'wsplus:/ws/silent', recorder());
        buses.push(other);
        assert.strictEqual(other.publish('tenant', 'acme', Buffer.from('through'), false), true);
        await until(() => rx.got.length === 1, 5000, 'a delivery through the recovered subscriber');
        await bus.close();
        await until(() => fault.open === 0, 3000, 'no connection left at the fault server');
      } finally {
        await fault.close();
      }
    });
  });

  describe('a Redis that never confirms the subscription', function () {
    it('subscribes again on a fresh connection instead of staying unsubscribed', async function () {
      let swallowed = 0;
      const fault = await startFaultServer({
        mode: 'forward',
        forwardPort: redis.port,
        // The first SUBSCRIBE is lost on the way; everything else (setup, ready check) gets through.
        dropFromClient: (chunk) => swallowed === 0 && /subscribe/i.test(chunk.toString('latin1')) && ++swallowed > 0,
      });
      try {
        const bus = new ClusterBus({
          url: `redis://127.0.0.1:${fault.port}`,
          prefix: 'wsplus:/ws/unconfirmed',
          commandTimeoutMs: 200,
          maxReconnectDelayMs: 100,
        });
        bus.on('connectionError', () => {});
        buses.push(bus);
        bus.attach(recorder());
        await until(() => bus.state === 'ready', 8000, `ready after the lost subscription (state ${bus.state})`);
        assert.strictEqual(swallowed, 1);
        await bus.close();
      } finally {
        await fault.close();
      }
    });
  });

  describe('Redis refusing the bus', function () {
    it('reports degraded (not ready) when the ACL forbids its channels', async function () {
      await admin.call(
        'ACL',
        'SETUSER',
        'nochan',
        'on',
        '>pw-0123456789',
        '~wsplus:*',
        '&other:*',
        '+@pubsub',
        '+@connection',
        '+info',
      );
      try {
        const bus = new ClusterBus({
          url: redis.url.replace('redis://', 'redis://nochan:pw-0123456789@'),
          prefix: 'wsplus:/ws/acl',
          maxReconnectDelayMs: 200,
        });
        buses.push(bus);
        const errors = [];
        bus.on('connectionError', (e) => errors.push(e.message));
        bus.attach(recorder());
        await until(() => bus.state === 'degraded', 5000, 'degraded');
        await until(() => errors.some((m) => /NOPERM/.test(m)), 5000, 'NOPERM reported');
        assert.ok(!errors.join(' ').includes('pw-0123456789'));
      } finally {
        await admin.call('ACL', 'DELUSER', 'nochan');
      }
    });
  });

  describe('close', function () {
    async function clientNames() {
      await until(() => admin.status === 'ready', 8000, 'admin connection');
      const list = await admin.client('LIST');
      return String(list)
        .split('\n')
        .map((line) => (/ name=(\S*)/.exec(line) || [])[1])
        .filter((n) => n && n.startsWith('wsplus-'));
    }

    it('closes both connections and leaves no handle behind', async function () {
      const bus = await readyBus(redis.url, 'wsplus:/ws/close', recorder());
      const mine = async () => (await clientNames()).filter((n) => n.endsWith(bus.instanceId));
      assert.strictEqual((await mine()).length, 2);
      await bus.close();
      assert.strictEqual(bus.state, 'closed');
      await until(async () => (await mine()).length === 0, 5000, 'connections gone');
      assert.strictEqual(bus.publish('global', '', Buffer.from('x'), false), false);
    });

    it('leaves no timer behind with tenants still lingering', async function () {
      await Promise.resolve();
      const timers = trackTimers({ stacks: true });
      try {
        const bus = await readyBus(redis.url, 'wsplus:/ws/close-linger', recorder(), { tenantLingerMs: 60000 });
        for (const tenant of ['acme', 'globex', 'initech']) {
          bus.holdTenant(tenant);
          bus.releaseTenant(tenant);
        }
        assert.strictEqual(bus.subscribedTenants, 3);
        await bus.close();
        await delay(50);
        assert.strictEqual(await timers.settled(), 0, timers.where().join('\n'));
      } finally {
        timers.stop();
      }
    });

    it('closes promptly while Redis is down and never reconnects afterwards', async function () {
      const bus = await readyBus(redis.url, 'wsplus:/ws/close-down', recorder());
      await redis.stop();
      await until(() => bus.state === 'degraded', 8000, 'degraded');
      const started = Date.now();
      await bus.close();
      assert.ok(Date.now() - started < 3000, 'close did not hang');
      await redis.start();
      // longer than the reconnect back-off (200 ms here): a surviving retry would have connected
      await delay(800);
      assert.deepStrictEqual(
        (await clientNames()).filter((n) => n.endsWith(bus.instanceId)),
        [],
      );
      assert.strictEqual(bus.state, 'closed');
    });
  });

  describe('two listeners (instances) in one process', function () {
    const servers = [];
    const listeners = [];
    let sockets = [];

    afterEach(async function () {
      closeAll(sockets);
      sockets = [];
      await Promise.all(listeners.splice(0).map((l) => l.close()));
      await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(() => r()))));
    });

    async function instance(scope, prefix) {
      const server = http.createServer((req, res) => res.end());
      await new Promise((r) => server.listen(0, '127.0.0.1', r));
      servers.push(server);
      const bus = new ClusterBus({ url: redis.url, prefix, maxReconnectDelayMs: 200 });
      bus.on('connectionError', () => {});
      const listener = createListener(server, '/ws/c', {
        verifier: { mode: 'hs256', secret: SECRET },
        scope,
        cluster: bus,
      });
      listener.start();
      listeners.push(listener);
      await until(() => bus.state === 'ready', 8000, 'bus ready');
      return { server, listener, bus, url: `ws://127.0.0.1:${server.address().port}/ws/c` };
    }

    async function client(inst, tenant) {
      const token = await signHS256(SECRET, { tenant_id: tenant, sub: `${tenant}-user` });
      const before = inst.listener.connectionCount;
      const { ws } = await connect(`${inst.url}?token=${token}`);
      sockets.push(ws);
      await until(() => inst.listener.connectionCount === before + 1, 2000, 'session registered');
      // Deliveries from the other instance arrive once Redis confirmed the tenant's subscription.
      if (inst.listener.scope === 'tenant') await until(() => inst.bus.isSubscribed(tenant), 5000, 'subscribed');
      return ws;
    }

    function sessionOf(inst) {
      // the newest session of the instance belongs to the socket that connected last
      return [...inst.listener.registry.all()].pop();
    }

    it('tenant scope: a delivery on A reaches the tenant on both instances, never another tenant', async function () {
      const a = await instance('tenant', 'wsplus:/ws/c-tenant');
      const b = await instance('tenant', 'wsplus:/ws/c-tenant');
      const a1 = await client(a, 'acme');
      const sessionA1 = sessionOf(a);
      const b1 = await client(b, 'acme');
      const bOther = await client(b, 'globex');
      const result = a.listener.deliver(sessionA1.id, Buffer.from([1, 2, 3]));
      assert.strictEqual(result.delivered, 1);
      assert.strictEqual(result.published, true);
      assert.deepStrictEqual(await waitForMessages(b1, 1), [Buffer.from([1, 2, 3])]);
      assert.deepStrictEqual(await waitForMessages(a1, 1), [Buffer.from([1, 2, 3])]);
      await expectNoMessage(bOther, 300);
      await delay(100);
      assert.strictEqual(a1.messages.length, 1, 'no duplicate from the own echo');
    });

    it("routes a session unknown here to the instance that owns it, with the owner's record", async function () {
      const a = await instance('session', 'wsplus:/ws/c-session');
      const b = await instance('session', 'wsplus:/ws/c-session');
      const a1 = await client(a, 'acme');
      const b1 = await client(b, 'acme');
      const sessionB1 = sessionOf(b);
      const result = a.listener.deliver(sessionB1.id, 'to b1 only');
      assert.strictEqual(result.delivered, 0);
      assert.strictEqual(result.miss, 'unknown-session');
      assert.strictEqual(result.published, true);
      assert.deepStrictEqual(await waitForMessages(b1, 1), ['to b1 only']);
      await expectNoMessage(a1, 300);
      // an id nobody owns is dropped everywhere
      a.listener.deliver('00000000-0000-4000-8000-000000000000', 'nobody');
      await expectNoMessage(b1, 300);
      // an absurd id from a flow is neither sent nor a crash
      const huge = a.listener.deliver('x'.repeat(70000), 'huge');
      assert.deepStrictEqual([huge.delivered, huge.miss, huge.published], [0, 'unknown-session', false]);
    });

    it("tenant scope: the owner resolves an unknown session's tenant and fans it out", async function () {
      const a = await instance('tenant', 'wsplus:/ws/c-route');
      const b = await instance('tenant', 'wsplus:/ws/c-route');
      const a1 = await client(a, 'acme');
      const aOther = await client(a, 'globex');
      const b1 = await client(b, 'acme');
      const sessionB1 = sessionOf(b);
      a.listener.deliver(sessionB1.id, 'fan out');
      assert.deepStrictEqual(await waitForMessages(b1, 1), ['fan out']);
      assert.deepStrictEqual(await waitForMessages(a1, 1), ['fan out']);
      await expectNoMessage(aOther, 300);
      // recently closed on B: still its tenant
      b1.close();
      await until(() => b.listener.connectionCount === 0, 3000, 'b1 closed');
      a.listener.deliver(sessionB1.id, 'after close');
      assert.deepStrictEqual(await waitForMessages(a1, 2), ['fan out', 'after close']);
      await expectNoMessage(aOther, 200);
    });

    it('global scope: everyone on both instances, once', async function () {
      const a = await instance('global', 'wsplus:/ws/c-global');
      const b = await instance('global', 'wsplus:/ws/c-global');
      const a1 = await client(a, 'acme');
      const b1 = await client(b, 'globex');
      const b2 = await client(b, 'initech');
      a.listener.deliver(undefined, 'all');
      for (const ws of [a1, b1, b2]) assert.deepStrictEqual(await waitForMessages(ws, 1), ['all']);
      await delay(150);
      for (const ws of [a1, b1, b2]) assert.strictEqual(ws.messages.length, 1);
    });

    it('Redis down: local delivery only, no error; back: cluster delivery resumes', async function () {
      const a = await instance('tenant', 'wsplus:/ws/c-down');
      const b = await instance('tenant', 'wsplus:/ws/c-down');
      const a1 = await client(a, 'acme');
      const sessionA1 = sessionOf(a);
      const b1 = await client(b, 'acme');
      await redis.stop();
      await until(() => a.bus.state === 'degraded', 8000, 'degraded');
      const result = a.listener.deliver(sessionA1.id, 'local only');
      assert.strictEqual(result.delivered, 1);
      assert.strictEqual(result.published, false);
      assert.deepStrictEqual(await waitForMessages(a1, 1), ['local only']);
      await expectNoMessage(b1, 300);
      await redis.start();
      await until(() => a.bus.state === 'ready' && b.bus.state === 'ready', 10000, 'ready');
      a.listener.deliver(sessionA1.id, 'cluster again');
      assert.deepStrictEqual(await waitForMessages(b1, 1), ['cluster again']);
    });
  });
});
