'use strict';
// Scale-out end to end: two real Node-RED processes with the same flow, one real redis-server.
// Clients of tenant "a" on both instances, tenant "b" on one; every listener echoes through
// ws.in+ -> ws.out+ with its own scope.
const assert = require('assert');
const { startRedis } = require('../helpers/redis-server');
const { printOutputOnFailure } = require('../helpers/nr-instance');
const { startPair, listenerNodes, instanceClients } = require('../helpers/instance-pair');
const { waitForMessages, expectNoMessage, delay } = require('../helpers/ws-client');

const SECRET = 'two-instances-secret-0123456789abcdef0123';
const LISTENERS = {
  lt: { path: '/ws/tenant', scope: 'tenant' },
  lg: { path: '/ws/global', scope: 'global' },
  ls: { path: '/ws/session', scope: 'session' },
  ll: { path: '/ws/limited', scope: 'tenant', maxConnections: '3' },
};

function flow() {
  const nodes = [{ id: 'tab1', type: 'tab', label: 'cluster' }];
  for (const [id, props] of Object.entries(LISTENERS)) {
    const listener = { tenantId: '', sessionTimeout: '', onExpiry: 'disconnect', rateLimit: '', maxConnections: '' };
    nodes.push(...listenerNodes(id, { ...listener, cluster: 'redis', ...props }));
  }
  return nodes;
}

function credentials(redisUrl) {
  const creds = {};
  for (const id of Object.keys(LISTENERS)) creds[id] = { secret: SECRET, redisUrl };
  return creds;
}

const { waitFor: until } = require('../helpers/wait');

describe('cluster: two Node-RED instances through Redis', function () {
  this.timeout(60000);
  let redis;
  let one;
  let two;
  const { client, open, slotMovesAcross, closeAll } = instanceClients(SECRET);

  before(async function () {
    redis = await startRedis();
    const listeners = Object.keys(LISTENERS).length;
    [one, two] = await startPair({ flows: flow(), credentials: credentials(redis.url), listeners });
  });

  after(async function () {
    closeAll();
    await Promise.all([one && one.stop(), two && two.stop()]);
    if (redis) await redis.close();
  });

  afterEach(async function () {
    printOutputOnFailure(this.currentTest, { one, two });
    closeAll();
    if (!redis.running) await redis.start();
  });

  it('tenant scope: reaches tenant a on both instances, never tenant b', async function () {
    const a1 = await open(one, '/ws/tenant', 'a', 'a1');
    const b1 = await open(one, '/ws/tenant', 'b', 'b1');
    const a2 = await open(two, '/ws/tenant', 'a', 'a2');
    a1.send('hello tenant a');
    assert.deepStrictEqual(await waitForMessages(a1, 1), ['hello tenant a']);
    assert.deepStrictEqual(await waitForMessages(a2, 1), ['hello tenant a']);
    // binary from the other instance comes back binary, byte for byte, on both
    const bytes = Buffer.from([0, 0xff, 0xc3, 0x28]);
    a2.send(bytes);
    assert.deepStrictEqual(await waitForMessages(a1, 2), ['hello tenant a', bytes]);
    assert.deepStrictEqual(await waitForMessages(a2, 2), ['hello tenant a', bytes]);
    // tenant b sends too: only b1 hears it
    b1.send('only b');
    assert.deepStrictEqual(await waitForMessages(b1, 1), ['only b']);
    await expectNoMessage(a1, 300);
    await expectNoMessage(a2, 300);
    assert.strictEqual(b1.messages.length, 1, 'tenant b never received tenant a traffic');
    assert.strictEqual(a1.messages.length, 2, 'no duplicates');
  });

  it('global scope: everyone on both instances, exactly once', async function () {
    const a1 = await open(one, '/ws/global', 'a');
    const b1 = await open(one, '/ws/global', 'b');
    const a2 = await open(two, '/ws/global', 'a');
    a1.send('to everyone');
    for (const ws of [a1, b1, a2]) assert.deepStrictEqual(await waitForMessages(ws, 1), ['to everyone']);
    await delay(200);
    for (const ws of [a1, b1, a2]) assert.strictEqual(ws.messages.length, 1);
  });

  it('session scope: only the sender, on either instance', async function () {
    const a1 = await open(one, '/ws/session', 'a');
    const a3 = await open(one, '/ws/session', 'a');
    const a2 = await open(two, '/ws/session', 'a');
    const b1 = await open(one, '/ws/session', 'b');
    a1.send('just me');
    a2.send('me too');
    assert.deepStrictEqual(await waitForMessages(a1, 1), ['just me']);
    assert.deepStrictEqual(await waitForMessages(a2, 1), ['me too']);
    await expectNoMessage(a3, 300);
    await expectNoMessage(b1, 0);
    assert.strictEqual(a1.messages.length, 1);
    assert.strictEqual(a2.messages.length, 1);
  });

  it('maxConnections counts a tenant across both instances', async function () {
    const held = [
      await open(one, '/ws/limited', 'a'),
      await open(one, '/ws/limited', 'a'),
      await open(two, '/ws/limited', 'a'),
    ];
    const overTwo = await client(two, '/ws/limited', 'a');
    const overOne = await client(one, '/ws/limited', 'a');
    assert.strictEqual(overTwo.status, 429);
    assert.strictEqual(overOne.status, 429);
    assert.strictEqual(overTwo.opened || overOne.opened, false);
    await slotMovesAcross({ one, two, path: '/ws/limited', held });
  });

  it('Redis stopped and restarted: local delivery continues, cluster delivery resumes', async function () {
    const a1 = await open(one, '/ws/tenant', 'a', 'a1');
    const a3 = await open(one, '/ws/tenant', 'a', 'a3');
    const a2 = await open(two, '/ws/tenant', 'a', 'a2');
    a1.send('before');
    await waitForMessages(a2, 1);

    await redis.stop();
    await Promise.all([one, two].map((inst) => inst.waitForStatus('out-lt', (s) => s.fill === 'yellow')));
    assert.match(one.statuses.get('out-lt').text, /degraded/);
    a1.send('during outage');
    assert.deepStrictEqual(await waitForMessages(a1, 2), ['before', 'during outage']);
    assert.deepStrictEqual(await waitForMessages(a3, 2), ['before', 'during outage']);
    await expectNoMessage(a2, 500);
    // the instances keep accepting clients while Redis is away (the limiter falls back to local)
    const late = await open(two, '/ws/limited', 'c');
    assert.ok(late);

    await redis.start();
    await Promise.all([one, two].map((inst) => inst.waitForStatus('out-lt', (s) => s.fill === 'green', 15000)));
    // the subscriber confirms its SUBSCRIBE before the status turns green; deliver until it arrives
    let n = 0;
    await until(
      () => {
        a1.send(`after ${++n}`);
        return a2.messages.some((m) => String(m).startsWith('after'));
      },
      10000,
      'cluster delivery after recovery',
    );
    await delay(300);
    assert.ok(!a2.messages.includes('during outage'), 'what was sent during the outage is never replayed');
    assert.strictEqual(a2.messages[0], 'before');
  });
});
