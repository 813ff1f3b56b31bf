'use strict';
// RedisTenantLimiter against a real redis-server: limits across instances, leases of a crashed
// instance (a real process killed with SIGKILL), and the local fallback while Redis is away.
const assert = require('assert');
const { spawn } = require('child_process');
const Redis = require('ioredis');
const { startRedis } = require('../../helpers/redis-server');
const { delay } = require('../../helpers/ws-client');
const { built, builtPath } = require('../../helpers/built');
const { ClusterBus } = built('core/cluster/cluster-bus');
const { RedisTenantLimiter } = built('core/cluster/redis-tenant-limiter');

const { waitFor: until } = require('../../helpers/wait');

describe('core/redis-tenant-limiter (real Redis)', function () {
  let redis;
  let admin;
  const open = [];

  before(async function () {
    redis = await startRedis();
    admin = new Redis(redis.url, { maxRetriesPerRequest: 1, retryStrategy: (n) => Math.min(n * 100, 300) });
    admin.on('error', () => {});
  });
  after(async function () {
    admin.disconnect();
    if (redis) await redis.close();
  });
  afterEach(async function () {
    for (const { limiter, bus } of open.splice(0)) {
      await limiter.close();
      await bus.close();
    }
    if (!redis.running) await redis.start();
    await until(() => admin.status === 'ready', 8000, 'admin');
    await admin.flushall();
  });

  async function instance(prefix, maxPerTenant, leaseMs) {
    const bus = new ClusterBus({ url: redis.url, prefix, maxReconnectDelayMs: 200 });
    bus.on('connectionError', () => {});
    bus.attach({ receiveFromCluster() {} });
    await until(() => bus.state === 'ready', 8000, 'bus ready');
    const limiter = new RedisTenantLimiter(bus, { maxPerTenant, leaseMs });
    open.push({ limiter, bus });
    return { bus, limiter };
  }

  it('holds the limit across two instances, also for concurrent handshakes', async function () {
    const a = await instance('wsplus:/ws/l1', 3);
    const b = await instance('wsplus:/ws/l1', 3);
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).limiter.acquire('acme')));
    assert.strictEqual(results.filter(Boolean).length, 3);
    assert.strictEqual(a.limiter.held('acme') + b.limiter.held('acme'), 3);
    // another tenant has its own budget
    assert.strictEqual(await a.limiter.acquire('globex'), true);
  });

  it('a release on one instance frees a slot for the other', async function () {
    const a = await instance('wsplus:/ws/l2', 2);
    const b = await instance('wsplus:/ws/l2', 2);
    assert.strictEqual(await a.limiter.acquire('acme'), true);
    assert.strictEqual(await a.limiter.acquire('acme'), true);
    assert.strictEqual(await b.limiter.acquire('acme'), false);
    a.limiter.release('acme');
    await until(() => b.limiter.acquire('acme').then((ok) => ok || b.limiter.held('acme') > 0), 3000, 'slot freed');
    assert.strictEqual(b.limiter.held('acme'), 1);
    assert.strictEqual(await a.limiter.acquire('acme'), false);
  });

  it('keeps limits of different listeners (prefixes) apart', async function () {
    const a = await instance('wsplus:/ws/one', 1);
    const b = await instance('wsplus:/ws/two', 1);
    assert.strictEqual(await a.limiter.acquire('acme'), true);
    assert.strictEqual(await b.limiter.acquire('acme'), true);
  });

  it("stops counting a crashed instance's slots once its lease runs out", async function () {
    const prefix = 'wsplus:/ws/crash';
    const script = `
      const { ClusterBus } = require(${JSON.stringify(builtPath('core/cluster/cluster-bus'))});
      const { RedisTenantLimiter } = require(${JSON.stringify(builtPath('core/cluster/redis-tenant-limiter'))});
      const bus = new ClusterBus({ url: process.argv[1], prefix: ${JSON.stringify(prefix)} });
      bus.on('connectionError', () => {});
      bus.attach({ receiveFromCluster() {} });
      bus.on('state', async (s) => {
        if (s !== 'ready') return;
        const limiter = new RedisTenantLimiter(bus, { maxPerTenant: 2, leaseMs: 2000 });
        const granted = [await limiter.acquire('acme'), await limiter.acquire('acme')];
        process.stdout.write('HELD ' + JSON.stringify(granted) + '\\n');
      });
    `;
    const child = spawn(process.execPath, ['-e', script, redis.url], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      await until(() => out.includes('HELD'), 8000, 'child holds slots');
      assert.ok(out.includes('HELD [true,true]'), out);
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      const a = await instance(prefix, 2, 2000);
      // the dead instance's slots still count right after the crash...
      assert.strictEqual(await a.limiter.acquire('acme'), false);
      // ...and stop counting when its lease has run out
      await until(() => a.limiter.acquire('acme'), 8000, 'lease expiry');
      assert.strictEqual(await a.limiter.acquire('acme'), true);
      assert.strictEqual(await a.limiter.acquire('acme'), false);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });

  it('renews its own leases, so a live instance keeps its slots', async function () {
    const a = await instance('wsplus:/ws/renew', 1, 300);
    const b = await instance('wsplus:/ws/renew', 1, 300);
    assert.strictEqual(await a.limiter.acquire('acme'), true);
    await delay(1000); // more than three leases
    assert.strictEqual(await b.limiter.acquire('acme'), false);
  });

  it(
    'falls back to the local limit while Redis is down ' + '(never unlimited) and writes its counts back',
    async function () {
      const a = await instance('wsplus:/ws/down', 2);
      const key = 'wsplus:/ws/down:limit:acme';
      await redis.stop();
      await until(() => a.bus.state === 'degraded', 8000, 'degraded');
      assert.strictEqual(await a.limiter.acquire('acme'), true);
      assert.strictEqual(await a.limiter.acquire('acme'), true);
      assert.strictEqual(await a.limiter.acquire('acme'), false, 'local limit still holds');
      await redis.start();
      await until(() => a.bus.state === 'ready', 10000, 'ready');
      await until(() => admin.status === 'ready', 8000, 'admin');
      // Redis lost everything; the instance writes its two connections back
      await until(async () => (await admin.hget(key, `c:${a.bus.instanceId}`)) === '2', 5000, 'counts restored');
      const b = await instance('wsplus:/ws/down', 2);
      assert.strictEqual(await b.limiter.acquire('acme'), false, 'cluster-wide limit holds again');
      a.limiter.release('acme');
      await until(() => b.limiter.acquire('acme'), 3000, 'slot freed');
    },
  );

  it("close removes the instance's fields and stops renewing", async function () {
    const a = await instance('wsplus:/ws/close', 5);
    assert.strictEqual(await a.limiter.acquire('acme'), true);
    assert.strictEqual(await a.limiter.acquire('globex'), true);
    assert.strictEqual(await admin.hget('wsplus:/ws/close:limit:acme', `c:${a.bus.instanceId}`), '1');
    await a.limiter.close();
    assert.deepStrictEqual(await admin.hgetall('wsplus:/ws/close:limit:acme'), {});
    assert.deepStrictEqual(await admin.hgetall('wsplus:/ws/close:limit:globex'), {});
    assert.strictEqual(await a.limiter.acquire('acme'), false, 'a closed limiter grants nothing');
  });
});
