'use strict';
// The listener's Cluster option in a real Node-RED runtime (node-red-node-test-helper): its
// configuration errors, the degraded status when Redis cannot be reached, and that ioredis is not
// loaded at all unless a listener uses the cluster.
const assert = require('assert');
const path = require('path');
const { execFileSync } = require('child_process');
const { helper, load, wsUrl, listenerNode, useRuntime } = require('../helpers/red');
const { connect, waitForMessages } = require('../helpers/ws-client');
const { freePort } = require('../helpers/redis-server');
const { startRedisSentinel } = require('../helpers/redis-cluster');
const { signHS256 } = require('../helpers/tokens');
const { builtPath } = require('../helpers/built');

const SECRET = 'cluster-node-secret-0123456789abcdef-xyz';
const REDIS_PASSWORD = 'redis-pass-Zq81xT';

function echoFlow(props) {
  return [
    listenerNode('l1', { path: '/ws/cl', authMode: 'hs256', scope: 'session', ...props }),
    { id: 'in1', type: 'websocket-plus in', server: 'l1', client: '', wires: [['out1']] },
    { id: 'out1', type: 'websocket-plus out', server: 'l1', client: '' },
  ];
}

/** Resolves with the first status of `node` (past or future) that matches `predicate`. */
async function waitForStatus(node, predicate, ms = 8000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    // the helper records every Node.status call (a sinon spy on the prototype)
    const calls = node.status.getCalls().filter((c) => c.thisValue === node);
    const hit = calls.map((c) => c.args[0]).find((s) => s && predicate(s));
    if (hit) return hit;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('status never matched');
}

describe('nodes/listener cluster option (real Node-RED runtime)', function () {
  const sockets = useRuntime();

  /** The error lines logged by the listener l1. */
  const errorsOfL1 = () =>
    helper
      .log()
      .args.filter((a) => a[0].level === helper.log().ERROR && a[0].id === 'l1')
      .map((a) => String(a[0].msg));

  /** A client of tenant a on /ws/cl: `text` comes back through the echo flow. */
  async function echoes(text) {
    const { ws } = await connect(wsUrl('/ws/cl', `token=${await signHS256(SECRET, { tenant_id: 'a' })}`));
    sockets.push(ws);
    ws.send(text);
    assert.deepStrictEqual(await waitForMessages(ws, 1), [text]);
  }

  /** Unloads the flow; the listener's close does not wait on an absent or refusing Redis. */
  async function unloadsPromptly(message) {
    const started = Date.now();
    await helper.unload();
    assert.ok(Date.now() - started < 5000, message);
  }

  it('cluster "redis" without a Redis URL is a clear node error, and nothing is served', async function () {
    await load(echoFlow({ cluster: 'redis' }), { l1: { secret: SECRET } });
    const l1 = helper.getNode('l1');
    assert.strictEqual(l1.listener, undefined);
    const errors = errorsOfL1();
    assert.ok(
      errors.some((m) => /Redis URL missing/.test(m)),
      errors.join('\n'),
    );
    const result = await connect(wsUrl('/ws/cl', `token=${await signHS256(SECRET, { tenant_id: 'a' })}`), {
      ws: { handshakeTimeout: 1000 },
    }).catch((err) => ({ error: err }));
    if (result.ws) sockets.push(result.ws);
    assert.notStrictEqual(result.opened, true);
  });

  it('refuses a Redis URL that is not redis:// or rediss:// without logging it', async function () {
    await load(echoFlow({ cluster: 'redis' }), {
      l1: { secret: SECRET, redisUrl: `http://user:${REDIS_PASSWORD}@127.0.0.1:1` },
    });
    assert.strictEqual(helper.getNode('l1').listener, undefined);
    const logged = JSON.stringify(helper.log().args);
    assert.match(logged, /redis:\/\/ or rediss:\/\//);
    assert.ok(!logged.includes(REDIS_PASSWORD));
  });

  it(
    'unreachable Redis: status "cluster degraded", ' + 'local delivery works, the password is never logged',
    async function () {
      const deadPort = await freePort();
      await load(echoFlow({ cluster: 'redis' }), {
        l1: { secret: SECRET, redisUrl: `redis://:${REDIS_PASSWORD}@127.0.0.1:${deadPort}/0` },
      });
      const out1 = helper.getNode('out1');
      const l1 = helper.getNode('l1');
      assert.ok(l1.listener, 'the listener serves without Redis');
      const degraded = await waitForStatus(out1, (s) => s.fill === 'yellow');
      assert.match(degraded.text, /degraded/);
      await echoes('still here');
      // a few reconnect attempts have been logged by now
      await new Promise((r) => setTimeout(r, 700));
      const logged = JSON.stringify(helper.log().args);
      assert.match(logged, /ECONNREFUSED/);
      assert.ok(!logged.includes(REDIS_PASSWORD), 'the Redis password never reaches the log');
      await unloadsPromptly('close does not hang while Redis is away');
    },
  );

  it('redis-sentinel without a master name is a translated node error saying so; nothing is served', async function () {
    await load(echoFlow({ cluster: 'redis-sentinel', sentinelName: '' }), {
      l1: { secret: SECRET, redisUrl: `redis://:${REDIS_PASSWORD}@127.0.0.1:1,redis://127.0.0.1:2` },
    });
    assert.strictEqual(helper.getNode('l1').listener, undefined);
    const errors = errorsOfL1();
    // the catalogue text, then the detail
    assert.ok(
      errors.some((m) => /^Redis Sentinel needs the master name/.test(m) && /master name missing/.test(m)),
      errors.join('\n'),
    );
    assert.ok(!JSON.stringify(helper.log().args).includes(REDIS_PASSWORD));
  });

  for (const [cluster, props] of [
    ['redis-cluster', {}],
    ['redis-sentinel', { sentinelName: 'wsplus-master' }],
  ]) {
    it(`${cluster}: unreachable nodes give "cluster degraded", local delivery works, no password is logged`, async function () {
      const [a, b] = [await freePort(), await freePort()];
      await load(echoFlow({ cluster, ...props }), {
        l1: {
          secret: SECRET,
          redisUrl: `redis://:${REDIS_PASSWORD}@127.0.0.1:${a},redis://:${REDIS_PASSWORD}x@127.0.0.1:${b}`,
        },
      });
      const l1 = helper.getNode('l1');
      assert.ok(l1.listener, 'the listener serves without Redis');
      const degraded = await waitForStatus(helper.getNode('out1'), (s) => s.fill === 'yellow');
      assert.match(degraded.text, /degraded/);
      await echoes('still here');
      await new Promise((r) => setTimeout(r, 700));
      const logged = JSON.stringify(helper.log().args);
      assert.ok(!logged.includes(REDIS_PASSWORD), 'no Redis password reaches the log');
      // retries that differ only in ioredis's next delay are one kind of line: written once a minute
      const clusterLines = helper
        .log()
        .args.map(([entry]) => String(entry && entry.msg))
        .filter((msg) => msg.startsWith('cluster: '));
      assert.ok(clusterLines.length > 0, 'the connection problem is logged');
      const kinds = clusterLines.map((msg) => msg.replace(/\d+ ?ms\b/g, 'N ms'));
      assert.strictEqual(new Set(kinds).size, kinds.length, clusterLines.join('\n'));
      await unloadsPromptly('close does not hang while Redis is away');
    });
  }

  it('redis-sentinel: a Sentinel username without the Sentinel password is a node error naming neither', async function () {
    await load(echoFlow({ cluster: 'redis-sentinel', sentinelName: 'wsplus-master' }), {
      l1: { secret: SECRET, redisUrl: 'redis://127.0.0.1:1', sentinelUsername: 'watcher-Uq4' },
    });
    assert.strictEqual(helper.getNode('l1').listener, undefined);
    const errors = errorsOfL1();
    assert.ok(
      errors.some((m) => /Sentinel username given without the Sentinel password/.test(m)),
      errors.join('\n'),
    );
    assert.ok(!JSON.stringify(helper.log().args).includes('watcher-Uq4'));
  });

  describe('Sentinels with a password of their own (credential sentinelPassword)', function () {
    const SENTINEL_PASSWORD = 'sentinel-own-Pw-Jx72';
    const MASTER_PASSWORD = 'master-group-Pw-Lm05';
    const WRONG_PASSWORD = 'not-the-sentinel-Pw-Rb13';
    let sentinel;

    before(async function () {
      this.timeout(60000);
      sentinel = await startRedisSentinel({ sentinelPassword: SENTINEL_PASSWORD, masterPassword: MASTER_PASSWORD });
    });
    after(async function () {
      if (sentinel) await sentinel.stop();
    });

    /** The listener's log lines (every level) as text. */
    const logged = () => JSON.stringify(helper.log().args);

    it('connects through the sentinels with their password, delivers, and logs no password', async function () {
      await load(echoFlow({ cluster: 'redis-sentinel', sentinelName: sentinel.name }), {
        l1: { secret: SECRET, redisUrl: sentinel.url, sentinelPassword: SENTINEL_PASSWORD },
      });
      const ready = () =>
        helper
          .log()
          .args.some(
            (a) => a[0].id === 'l1' && a[0].level === helper.log().INFO && /cluster connected/.test(String(a[0].msg)),
          );
      const deadline = Date.now() + 15000;
      while (!ready() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.ok(ready(), `no "cluster connected": ${logged()}`);
      await echoes('through sentinel');
      for (const secret of [SENTINEL_PASSWORD, MASTER_PASSWORD]) assert.ok(!logged().includes(secret));
    });

    it('a wrong sentinel password: status "cluster degraded", the refusal logged, no password in any line', async function () {
      await load(echoFlow({ cluster: 'redis-sentinel', sentinelName: sentinel.name }), {
        l1: { secret: SECRET, redisUrl: sentinel.url, sentinelPassword: WRONG_PASSWORD },
      });
      const degraded = await waitForStatus(helper.getNode('out1'), (s) => s.fill === 'yellow');
      assert.match(degraded.text, /degraded/);
      // The sentinels' answer to the password they were given, not a connection error.
      const deadline = Date.now() + 10000;
      while (!/WRONGPASS/.test(logged()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.match(logged(), /cluster: All sentinels are unreachable[^"]*WRONGPASS/);
      for (const secret of [WRONG_PASSWORD, SENTINEL_PASSWORD, MASTER_PASSWORD]) {
        assert.ok(!logged().includes(secret), 'a password reached the log');
        assert.ok(!JSON.stringify(degraded).includes(secret));
      }
      await unloadsPromptly('close does not hang while the sentinels refuse');
    });
  });

  it('does not load ioredis unless a listener uses the cluster', function () {
    const lib = path.join(__dirname, '..', '..', 'nodes');
    const script =
      `
      const http = require('http');
      require(${JSON.stringify(path.join(lib, 'websocket-plus.js'))});
      const { parseListenerConfig } = require(${JSON.stringify(builtPath('core/flow/listener-config'))});
      const { WebSocketListener } = require(${JSON.stringify(builtPath('core/server/listener'))});
      const { createTokenVerifier } = require(${JSON.stringify(builtPath('core/auth/token-verifier'))});
      const config = parseListenerConfig({ path: '/x', authMode: 'none', cluster: 'off' }, {});
      const server = http.createServer();
      const listener = new WebSocketListener({ server, path: '/x', verifier: createTokenVerifier(config.verifier), ` +
      `tenant: config.tenant, scope: config.scope });
      listener.start();
      const loaded = Object.keys(require.cache).some((k) => /[\\\\/]ioredis[\\\\/]/.test(k));
      listener.close().then(() => process.stdout.write(String(loaded)));
    `;
    assert.strictEqual(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20000 }), 'false');
  });
});
