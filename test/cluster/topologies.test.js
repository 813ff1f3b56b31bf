'use strict';
// Redis Cluster and Redis Sentinel end to end: two real Node-RED processes with the same flow share
// a real 3-master Redis Cluster (redis-server --cluster-enabled yes, joined by redis-cli --cluster
// create) and a real Sentinel setup (master, replica, 3 sentinels). Each topology has its own
// listeners in that flow: tenant scope (ws.in+ -> ws.out+), session scope with a reply that comes
// back through the other instance (ws.in+ -> http request -> the other instance's http in ->
// ws.out+), and a tenant connection limit. Both Redis setups are started once for the file.
const assert = require('assert');
const { startRedisCluster, startRedisSentinel } = require('../helpers/redis-cluster');
const { printOutputOnFailure } = require('../helpers/nr-instance');
const { startPair, listenerNodes, instanceClients } = require('../helpers/instance-pair');
const { waitForMessages, expectNoMessage, delay } = require('../helpers/ws-client');
const { waitFor: until } = require('../helpers/wait');

const SECRET = 'topologies-secret-0123456789abcdef0123456';
const SENTINEL_NAME = 'wsplus-e2e';

const TOPOLOGIES = {
  cluster: { cluster: 'redis-cluster' },
  sentinel: { cluster: 'redis-sentinel', sentinelName: SENTINEL_NAME },
};

/** Listener id -> properties, per topology: c* on the Redis Cluster, s* on Sentinel. */
function listeners() {
  const out = {};
  for (const [name, props] of Object.entries(TOPOLOGIES)) {
    const p = name[0];
    out[`${p}t`] = { path: `/ws/${name}/tenant`, scope: 'tenant', ...props };
    out[`${p}s`] = { path: `/ws/${name}/session`, scope: 'session', ...props };
    out[`${p}l`] = { path: `/ws/${name}/limited`, scope: 'tenant', maxConnections: '2', ...props };
  }
  return out;
}

const LISTENERS = listeners();

// ws.in+ of a session listener: the client's text is {"to": "<other instance>", "text": "..."}; the
// message goes there by HTTP with the session it came from, as a flow would hand it to another
// instance (a queue, MQTT, an HTTP call).
const RELAY_OUT =
  'const m = JSON.parse(msg.payload); ' +
  'return { url: m.to, method: "POST", payload: { session: msg._session, text: m.text } };';
// http in on the other instance: the reply is addressed to that session, which lives on the first.
const RELAY_IN =
  'const reply = { _session: msg.payload.session, payload: "reply: " + msg.payload.text }; ' +
  'msg.payload = "ok"; return [reply, msg];';

function flow() {
  const nodes = [{ id: 'tab1', type: 'tab', label: 'topologies' }];
  for (const [id, props] of Object.entries(LISTENERS)) {
    const session = props.scope === 'session';
    nodes.push(...listenerNodes(id, props, [session ? `relay-out-${id}` : `out-${id}`]));
    if (!session) continue;
    nodes.push(
      { id: `relay-out-${id}`, type: 'function', z: 'tab1', func: RELAY_OUT, outputs: 1, wires: [[`http-${id}`]] },
      { id: `http-${id}`, type: 'http request', z: 'tab1', method: 'use', ret: 'txt', url: '', wires: [[]] },
      {
        id: `relay-in-${id}`,
        type: 'http in',
        z: 'tab1',
        url: `/relay/${id}`,
        method: 'post',
        wires: [[`reply-${id}`]],
      },
      {
        id: `reply-${id}`,
        type: 'function',
        z: 'tab1',
        func: RELAY_IN,
        outputs: 2,
        wires: [[`out-${id}`], [`http-done-${id}`]],
      },
      { id: `http-done-${id}`, type: 'http response', z: 'tab1', wires: [] },
    );
  }
  return nodes;
}

describe('cluster: two Node-RED instances on Redis Cluster and Redis Sentinel', function () {
  this.timeout(60000);
  let redisCluster;
  let sentinel;
  let one;
  let two;
  const { client, open, slotMovesAcross, closeAll } = instanceClients(SECRET);

  before(async function () {
    [redisCluster, sentinel] = await Promise.all([
      startRedisCluster({ masters: 3 }),
      startRedisSentinel({ name: SENTINEL_NAME }),
    ]);
    const credentials = {};
    for (const [id, props] of Object.entries(LISTENERS))
      credentials[id] = {
        secret: SECRET,
        redisUrl: props.cluster === 'redis-cluster' ? redisCluster.url : sentinel.url,
      };
    [one, two] = await startPair({ flows: flow(), credentials, listeners: Object.keys(LISTENERS).length });
  });

  after(async function () {
    closeAll();
    await Promise.all([one && one.stop(), two && two.stop()]);
    await Promise.all([redisCluster && redisCluster.stop(), sentinel && sentinel.stop()]);
  });

  afterEach(function () {
    printOutputOnFailure(this.currentTest, { one, two });
    closeAll();
  });

  /**
   * Sends from `sender` until `receiver` (on the other instance) hears one: a subscription may be
   * confirmed a moment after the connection that caused it opened. Resolves the messages sent.
   */
  async function primeAcross(sender, receiver, label) {
    let n = 0;
    await until(
      () => {
        sender.send(`${label} ${++n}`);
        return receiver.messages.some((m) => String(m).startsWith(label));
      },
      15000,
      `${label}: delivery across instances`,
    );
    await delay(200);
    return n;
  }

  for (const name of Object.keys(TOPOLOGIES)) {
    const p = name[0];

    it(`${name}: a tenant message reaches tenant a on both instances, once, and never tenant b`, async function () {
      const a1 = await open(one, `/ws/${name}/tenant`, 'a', 'a1');
      const b1 = await open(one, `/ws/${name}/tenant`, 'b', 'b1');
      const a2 = await open(two, `/ws/${name}/tenant`, 'a', 'a2');
      const b2 = await open(two, `/ws/${name}/tenant`, 'b', 'b2');
      const primed = await primeAcross(a1, a2, 'prime');
      await until(() => a1.messages.length >= primed, 5000, 'own prime echoes');
      const [before1, before2] = [a1.messages.length, a2.messages.length];
      a2.send('hello tenant a');
      assert.deepStrictEqual((await waitForMessages(a1, before1 + 1)).slice(before1), ['hello tenant a']);
      assert.deepStrictEqual((await waitForMessages(a2, before2 + 1)).slice(before2), ['hello tenant a']);
      // binary stays binary, byte for byte, across instances
      const bytes = Buffer.from([0, 0xff, 0xc3, 0x28]);
      a1.send(bytes);
      assert.deepStrictEqual((await waitForMessages(a2, before2 + 2)).slice(before2), ['hello tenant a', bytes]);
      await delay(300);
      assert.strictEqual(a1.messages.length, before1 + 2, 'no duplicates on one');
      assert.strictEqual(a2.messages.length, before2 + 2, 'no duplicates on two');
      assert.deepStrictEqual([b1.messages.length, b2.messages.length], [0, 0], 'tenant b heard nothing of tenant a');
      // tenant b: across instances too, and tenant a hears none of it
      await primeAcross(b2, b1, 'b prime');
      await expectNoMessage(a1, 300);
      assert.strictEqual(a2.messages.length, before2 + 2);
    });

    it(`${name}: a reply addressed on one instance reaches the session held by the other, only it`, async function () {
      const sender = await open(one, `/ws/${name}/session`, 'a', 's1');
      const sameTenant = await open(one, `/ws/${name}/session`, 'a', 's2');
      const other = await open(two, `/ws/${name}/session`, 'a', 's3');
      const to = `http://127.0.0.1:${two.port}/relay/${p}s`;
      // the first route requests may go out before the owner's subscription is confirmed
      let n = 0;
      await until(
        () => {
          sender.send(JSON.stringify({ to, text: `hello ${++n}` }));
          return sender.messages.length > 0;
        },
        15000,
        'a reply through the other instance',
      );
      // replies in flight (each went its own HTTP way, in any order) have arrived; then one more
      await delay(500);
      const primed = sender.messages.length;
      sender.send(JSON.stringify({ to, text: 'final' }));
      await waitForMessages(sender, primed + 1, 5000);
      await delay(300);
      assert.deepStrictEqual(sender.messages.slice(primed), ['reply: final'], 'the reply arrives exactly once');
      const seen = sender.messages.slice(0, primed);
      assert.strictEqual(new Set(seen).size, seen.length, 'no reply twice');
      for (const m of seen) assert.ok(/^reply: hello \d+$/.test(m) && Number(m.slice(13)) <= n, m);
      assert.deepStrictEqual(sameTenant.messages, [], 'session scope: not the tenant');
      assert.deepStrictEqual(other.messages, [], 'not a session of the instance that sent the reply');
    });

    it(`${name}: maxConnections counts a tenant across both instances`, async function () {
      const path = `/ws/${name}/limited`;
      const held = [await open(one, path, 'a'), await open(two, path, 'a')];
      const overOne = await client(one, path, 'a');
      const overTwo = await client(two, path, 'a');
      assert.deepStrictEqual([overOne.status, overTwo.status], [429, 429]);
      await slotMovesAcross({ one, two, path, held });
    });
  }

  it('sentinel: the master is killed; deliveries across instances resume through the promoted replica', async function () {
    const a1 = await open(one, '/ws/sentinel/tenant', 'a', 'a1');
    const a2 = await open(two, '/ws/sentinel/tenant', 'a', 'a2');
    await primeAcross(a1, a2, 'before');
    const oldPort = await sentinel.killMaster();
    const newPort = await sentinel.waitForFailover(oldPort, 30000);
    assert.notStrictEqual(newPort, oldPort);
    // local delivery never stopped; across instances it comes back by itself
    let n = 0;
    await until(
      () => {
        a1.send(`after ${++n}`);
        return a2.messages.some((m) => String(m).startsWith('after'));
      },
      30000,
      'delivery across instances after the failover',
    );
    assert.ok(a1.messages.filter((m) => String(m).startsWith('after')).length >= 1);
    await Promise.all([one, two].map((inst) => inst.waitForStatus('out-st', (s) => s.fill === 'green', 15000)));
    // the connection limit works on the new master too
    const path = '/ws/sentinel/limited';
    await open(one, path, 'c');
    await open(two, path, 'c');
    assert.strictEqual((await client(one, path, 'c')).status, 429);
  });
});
