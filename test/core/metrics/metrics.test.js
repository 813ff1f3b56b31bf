'use strict';
// Metrics of real listeners and clients: real ws clients over loopback, tokens signed with jose, a
// real JWKS server and redis-server; every assertion reads the Prometheus text the registry
// exposes, parsed with a Prometheus text parser.
const assert = require('assert');
const parsePrometheus = require('parse-prometheus-text-format');
const promClient = require('prom-client');
const { built } = require('../../helpers/built');
const { startHttpServer, startListener } = require('../../helpers/listener');
const { connect, waitForClose, waitForMessages, closeAll } = require('../../helpers/ws-client');
const { signHS256, makeKey, signWithKey } = require('../../helpers/tokens');
const { waitFor } = require('../../helpers/wait');
const { startJwksServer } = require('../../helpers/jwks-server');
const { startRedis } = require('../../helpers/redis-server');
const { WebSocketPlusMetrics, packageMetrics, tenantCounts } = built('core/metrics/metrics');
const { OutboundConnection } = built('core/client/outbound-connection');
const { ClusterBus } = built('core/cluster/cluster-bus');

const SECRET = 'metrics-test-secret-0123456789abcdef0123';
const hs256 = { mode: 'hs256', secret: SECRET };
const tokenFor = (tenant, sub) => signHS256(SECRET, { tenant_id: tenant, sub });

/**
 * The registry's exposition, parsed: { families, value(name, labels) }
 * (value sums matching samples; undefined when none).
 */
async function scrape(metrics) {
  const text = await metrics.metrics();
  const families = parsePrometheus(text);
  const value = (name, labels = {}) => {
    const family = families.find((f) => f.name === name);
    if (!family) return undefined;
    const hits = family.metrics.filter((m) => Object.entries(labels).every(([k, v]) => (m.labels || {})[k] === v));
    return hits.length === 0 ? undefined : hits.reduce((sum, m) => sum + Number(m.value), 0);
  };
  return { text, families, value };
}

describe('core/metrics', function () {
  this.timeout(30000);
  let srv;
  const sockets = [];
  const cleanups = [];
  beforeEach(async function () {
    srv = await startHttpServer();
  });
  afterEach(async function () {
    closeAll(sockets.splice(0));
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    await srv.close();
  });

  function watched(pathname, options = {}, watchOptions = {}) {
    const metrics = new WebSocketPlusMetrics();
    const rec = startListener(srv, pathname, { verifier: hs256, ...options });
    const unwatch = metrics.watchListener(rec.listener, watchOptions);
    cleanups.push(() => rec.listener.close());
    return { metrics, rec, unwatch };
  }

  async function open(rec, tenant, sub) {
    const { ws, status } = await connect(rec.url(`token=${await tokenFor(tenant, sub)}`));
    assert.strictEqual(status, undefined, `handshake refused: ${status}`);
    sockets.push(ws);
    return ws;
  }

  it(
    'counts accepted and refused handshakes by category, ' + 'messages and bytes both ways, and closes by peer',
    async function () {
      const { metrics, rec } = watched('/ws/m');
      const a = await open(rec, 'a', 'alice');
      const b = await open(rec, 'b', 'bob');
      const missing = await connect(rec.url());
      assert.strictEqual(missing.status, 401);
      const forged = await connect(
        rec.url(`token=${await signHS256('another-secret-0123456789abcdef0123456', { tenant_id: 'a' })}`),
      );
      assert.strictEqual(forged.status, 401);

      a.send('hello');
      a.send('héllo'); // 6 bytes in UTF-8
      a.send(Buffer.from([1, 2, 3, 4]));
      const sessionA = [...rec.listener.registry.forTenant('a')][0];
      await waitFor(
        async () => (await scrape(metrics)).value('websocket_plus_messages_received_total') === 3,
        5000,
        'three messages counted',
      );
      rec.listener.deliver(sessionA.id, 'xyz');
      rec.listener.deliver(sessionA.id, Buffer.from([9, 9]));
      await waitForMessages(a, 2);

      let m = await scrape(metrics);
      const L = { listener: '/ws/m' };
      assert.strictEqual(m.value('websocket_plus_connections', L), 2);
      assert.strictEqual(m.value('websocket_plus_handshakes_total', { ...L, result: 'accepted', category: 'none' }), 2);
      assert.strictEqual(
        m.value('websocket_plus_handshakes_total', { ...L, result: 'refused', category: 'token_missing' }),
        1,
      );
      assert.strictEqual(
        m.value('websocket_plus_handshakes_total', { ...L, result: 'refused', category: 'bad_signature' }),
        1,
      );
      assert.strictEqual(m.value('websocket_plus_handshakes_total', { ...L, result: 'refused' }), 2);
      assert.strictEqual(m.value('websocket_plus_messages_received_total', L), 3);
      assert.strictEqual(m.value('websocket_plus_received_bytes_total', L), 5 + 6 + 4);
      assert.strictEqual(m.value('websocket_plus_messages_sent_total', L), 2);
      assert.strictEqual(m.value('websocket_plus_sent_bytes_total', L), 3 + 2);
      assert.strictEqual(m.value('websocket_plus_closes_total', L), undefined);

      b.close(1000, 'bye');
      await waitForClose(b);
      a.terminate();
      await waitFor(() => rec.listener.connectionCount === 0, 5000, 'both sessions gone');
      m = await scrape(metrics);
      assert.strictEqual(m.value('websocket_plus_connections', L), 0);
      assert.strictEqual(m.value('websocket_plus_closes_total', { ...L, reason: 'peer' }), 1);
      assert.strictEqual(m.value('websocket_plus_closes_total', { ...L, reason: 'abnormal' }), 1);
      // Nothing identifying a session, subject or token is a label value.
      for (const secret of ['alice', 'bob', sessionA.id, SECRET])
        assert.ok(!m.text.includes(secret), `exposition contains ${secret}`);
      // Tenants are not reported unless asked for.
      assert.strictEqual(m.value('websocket_plus_tenant_connections'), undefined);
    },
  );

  it('counts what the listener enforces by reason: rate limit, slow consumer, expiry', async function () {
    const { metrics, rec } = watched('/ws/limits', { rateLimit: 5, maxBufferedBytes: 256 * 1024, scope: 'session' });
    const L = { listener: '/ws/limits' };
    // A flood is cut with 1008.
    const flooder = await open(rec, 't', 'flooder');
    for (let i = 0; i < 50 && flooder.readyState === 1; i++) flooder.send('x');
    assert.strictEqual((await waitForClose(flooder)).code, 1008);

    // A client that stops reading is closed as a slow consumer.
    const stalled = await open(rec, 't', 'stalled');
    stalled._socket.pause();
    const session = [...rec.listener.registry.forTenant('t')].find((s) => s.subject === 'stalled');
    const FRAME = Buffer.alloc(64 * 1024, 7);
    for (let sends = 0; sends < 1500 && !rec.enforced.includes('SLOW_CONSUMER'); sends++) {
      rec.listener.deliver(session.id, FRAME);
      if (sends % 8 === 0) await new Promise((r) => setImmediate(r));
    }
    assert.ok(rec.enforced.includes('SLOW_CONSUMER'));
    stalled.terminate();

    // A token that expires is cut with 4001.
    const shortLived = await signHS256(
      SECRET,
      { tenant_id: 't', sub: 'brief' },
      { exp: Math.floor(Date.now() / 1000) + 1 },
    );
    const expiring = (await connect(rec.url(`token=${shortLived}`))).ws;
    sockets.push(expiring);
    assert.strictEqual((await waitForClose(expiring, 10000)).code, 4001);

    await waitFor(() => rec.listener.connectionCount === 0, 5000, 'all sessions gone');
    const m = await scrape(metrics);
    assert.strictEqual(m.value('websocket_plus_closes_total', { ...L, reason: 'rate_limit' }), 1);
    assert.strictEqual(m.value('websocket_plus_closes_total', { ...L, reason: 'slow_consumer' }), 1);
    assert.strictEqual(m.value('websocket_plus_closes_total', { ...L, reason: 'token_expired' }), 1);
    assert.strictEqual(m.value('websocket_plus_closes_total', L), 3);
  });

  it('reports open connections per tenant only when asked, capped with the rest as "other"', async function () {
    const { metrics, rec } = watched('/ws/tenants', {}, { perTenant: true, maxTenants: 2 });
    const plain = new WebSocketPlusMetrics();
    plain.watchListener(rec.listener);
    for (const [tenant, n] of [
      ['a', 3],
      ['b', 2],
      ['c', 1],
      ['d', 1],
    ])
      for (let i = 0; i < n; i++) await open(rec, tenant, `${tenant}${i}`);
    const L = { listener: '/ws/tenants' };
    const m = await scrape(metrics);
    assert.strictEqual(m.value('websocket_plus_tenant_connections', { ...L, tenant: 'a' }), 3);
    assert.strictEqual(m.value('websocket_plus_tenant_connections', { ...L, tenant: 'b' }), 2);
    assert.strictEqual(m.value('websocket_plus_tenant_connections', { ...L, tenant: 'other' }), 2);
    assert.strictEqual(m.value('websocket_plus_tenant_connections', { ...L, tenant: 'c' }), undefined);
    assert.strictEqual(m.families.find((f) => f.name === 'websocket_plus_tenant_connections').metrics.length, 3);
    assert.strictEqual(m.value('websocket_plus_connections', L), 7);
    assert.strictEqual((await scrape(plain)).value('websocket_plus_tenant_connections'), undefined);
    assert.deepStrictEqual([...tenantCounts(rec.listener, 10)].sort(), [
      ['a', 3],
      ['b', 2],
      ['c', 1],
      ['d', 1],
    ]);
  });

  it("stops counting when unwatched and keeps its metrics off prom-client's default registry", async function () {
    const { metrics, rec, unwatch } = watched('/ws/unwatch');
    const ws = await open(rec, 't', 'u');
    ws.send('one');
    await waitFor(
      async () => (await scrape(metrics)).value('websocket_plus_messages_received_total') === 1,
      5000,
      'message counted',
    );
    unwatch();
    const seen = [];
    rec.listener.on('message', (_session, data) => seen.push(data));
    ws.send('two');
    await waitFor(() => seen.includes('two'), 5000, 'the listener to get the second message');
    const second = await open(rec, 't', 'v');
    const m = await scrape(metrics);
    assert.strictEqual(m.value('websocket_plus_messages_received_total', { listener: '/ws/unwatch' }), 1);
    assert.strictEqual(m.value('websocket_plus_handshakes_total', { listener: '/ws/unwatch', result: 'accepted' }), 1);
    // An unwatched listener's connections are no longer reported.
    assert.strictEqual(m.value('websocket_plus_connections', { listener: '/ws/unwatch' }), undefined);
    assert.ok(second);
    const defaults = await promClient.register.metrics();
    assert.ok(!defaults.includes('websocket_plus_'), 'metrics leaked into the default registry');
    assert.strictEqual(packageMetrics(), packageMetrics());
    assert.notStrictEqual(packageMetrics().registry, promClient.register);
  });

  it('counts JWKS fetches and failed fetches', async function () {
    const key = await makeKey('ES256', 'k1');
    const jwks = await startJwksServer([key]);
    cleanups.push(() => jwks.close());
    const metrics = new WebSocketPlusMetrics();
    const rec = startListener(srv, '/ws/jwks', {
      verifier: { mode: 'jwks', jwksUri: jwks.url, jwksFailureBackoffMs: 0, jwksCooldownMs: 0 },
    });
    cleanups.push(() => rec.listener.close());
    metrics.watchListener(rec.listener);
    const token = await signWithKey(key, { tenant_id: 't', sub: 's' });
    jwks.state.mode = 'error';
    assert.strictEqual((await connect(rec.url(`token=${token}`))).status, 401);
    jwks.state.mode = 'ok';
    const ok = await connect(rec.url(`token=${token}`));
    assert.strictEqual(ok.status, undefined);
    sockets.push(ok.ws);
    const L = { listener: '/ws/jwks' };
    const m = await scrape(metrics);
    assert.strictEqual(m.value('websocket_plus_jwks_fetches_total', L), jwks.fetches);
    assert.strictEqual(m.value('websocket_plus_jwks_fetches_total', L), 2);
    assert.strictEqual(m.value('websocket_plus_jwks_fetch_failures_total', L), 1);
    assert.strictEqual(
      m.value('websocket_plus_handshakes_total', { ...L, result: 'refused', category: 'keys_unavailable' }),
      1,
    );
    // Counts stay when scraped again (deltas, not totals added twice).
    assert.strictEqual((await scrape(metrics)).value('websocket_plus_jwks_fetches_total', L), 2);
  });

  it('counts cluster publications, receipts, lag, unroutable and skipped publications through a real redis-server', async function () {
    const redis = await startRedis();
    cleanups.push(() => redis.close());
    const metrics = new WebSocketPlusMetrics();
    const instances = [];
    for (const name of ['one', 'two']) {
      const bus = new ClusterBus({
        url: redis.url,
        prefix: 'wsplus:/ws/cl',
        instanceId: name,
        maxReconnectDelayMs: 200,
      });
      bus.on('connectionError', () => {});
      // Two instances in one process: two HTTP servers, one listener each at the same path.
      const server = name === 'one' ? srv : await startHttpServer();
      if (server !== srv) cleanups.push(() => server.close());
      const rec = startListener(server, '/ws/cl', { verifier: hs256, cluster: bus });
      cleanups.push(() => rec.listener.close());
      metrics.watchListener(rec.listener);
      instances.push({ bus, rec });
    }
    await waitFor(() => instances.every((i) => i.bus.state === 'ready'), 10000, 'buses ready');
    const [one, two] = instances;
    const here = await open(one.rec, 't', 'here');
    const there = await open(two.rec, 't', 'there');
    const sessionHere = [...one.rec.listener.registry.forTenant('t')][0];
    // Instance two receives the tenant's messages once Redis confirmed its subscription.
    await waitFor(() => two.bus.isSubscribed('t'), 5000, 'tenant subscribed on two');
    one.rec.listener.deliver(sessionHere.id, 'to the tenant');
    await waitForMessages(there, 1, 5000);
    await waitForMessages(here, 1, 5000);
    let m = await scrape(metrics);
    const L = { listener: '/ws/cl' };
    assert.strictEqual(m.value('websocket_plus_cluster_published_total', L), 1);
    assert.strictEqual(m.value('websocket_plus_cluster_received_total', L), 1);
    assert.strictEqual(m.value('websocket_plus_cluster_skipped_total', L), 0);
    // Both instances sent one frame to their own session.
    assert.strictEqual(m.value('websocket_plus_messages_sent_total', L), 2);
    // The one delivery received has its lag recorded; nothing was unroutable.
    assert.strictEqual(m.families.find((f) => f.name === 'websocket_plus_cluster_lag_seconds').type, 'HISTOGRAM');
    // (the parser drops a histogram's labels: read the count's line itself)
    assert.match(m.text, /^websocket_plus_cluster_lag_seconds_count\{listener="\/ws\/cl"\} 1$/m);
    assert.strictEqual(m.value('websocket_plus_cluster_unroutable_total', L), 0);
    // A reply for a session whose owner tag no instance has: published, then counted.
    one.rec.listener.deliver('ffffffff-0000-4000-8000-000000000000', 'nobody');
    await waitFor(() => one.bus.stats.unroutable === 1, 5000, 'unroutable counted');
    m = await scrape(metrics);
    assert.strictEqual(m.value('websocket_plus_cluster_unroutable_total', L), 1);

    await redis.stop();
    await waitFor(() => one.bus.state === 'degraded', 10000, 'bus degraded');
    one.rec.listener.deliver(sessionHere.id, 'local only');
    await waitForMessages(here, 2, 5000);
    m = await scrape(metrics);
    assert.strictEqual(m.value('websocket_plus_cluster_skipped_total', L), 1);
    // the tenant delivery and the unroutable reply; nothing while Redis was down
    assert.strictEqual(m.value('websocket_plus_cluster_published_total', L), 2);
  });

  it("reports an outbound client's state and its reconnects", async function () {
    const { rec } = watched('/ws/target', { sessionTimeoutMs: 0 });
    const metrics = new WebSocketPlusMetrics();
    const connection = new OutboundConnection({
      url: `${srv.base}/ws/target`,
      token: await tokenFor('t', 'client'),
      backoff: { initialDelayMs: 50, maxDelayMs: 100 },
    });
    cleanups.push(() => connection.close());
    let clientOpens = 0;
    connection.on('open', () => clientOpens++);
    const unwatch = metrics.watchClient(connection);
    const U = { url: connection.displayUrl };
    assert.strictEqual((await scrape(metrics)).value('websocket_plus_client_connections', { ...U, state: 'idle' }), 1);
    connection.start();
    await waitFor(() => rec.listener.connectionCount === 1, 5000, 'client connected');
    let m = await scrape(metrics);
    assert.strictEqual(m.value('websocket_plus_client_connections', { ...U, state: 'open' }), 1);
    assert.strictEqual(m.value('websocket_plus_client_connections', U), 1);
    assert.strictEqual(m.value('websocket_plus_client_reconnects_total', U), 0);
    const session = [...rec.listener.registry.all()][0];
    rec.listener.deliver(session.id, 'hi');
    await waitFor(
      async () => (await scrape(metrics)).value('websocket_plus_client_messages_received_total', U) === 1,
      5000,
      'message counted',
    );
    // The server cuts the session: the client reconnects.
    rec.listener.closeSession(session, 'SESSION_TIMEOUT');
    // The client's own second open: its close and reconnect are behind it, whatever the server saw.
    await waitFor(() => clientOpens === 2 && rec.listener.connectionCount === 1, 5000, 'client reconnected');
    m = await scrape(metrics);
    assert.strictEqual(m.value('websocket_plus_client_reconnects_total', U), 1);
    assert.strictEqual(m.value('websocket_plus_client_connections', { ...U, state: 'open' }), 1);
    assert.ok(!m.text.includes('token='), 'the client label carries no token');
    unwatch();
    assert.strictEqual((await scrape(metrics)).value('websocket_plus_client_connections'), undefined);
  });

  it(
    'counts the refresh outcomes of a watched listener: ' + 'refreshed, failed, identity changed, rate limited',
    async function () {
      const { metrics, rec } = watched('/ws/refresh', { refresh: 'message', refreshWindowMs: 0 });
      const frame = async (claims) =>
        JSON.stringify({ type: 'websocket-plus:refresh', token: await signHS256(SECRET, claims) });
      const a = await open(rec, 'a', 'alice');
      a.send(await frame({ tenant_id: 'a', sub: 'alice' }));
      await waitForMessages(a, 1);
      const b = await open(rec, 'a', 'bob');
      b.send(JSON.stringify({ type: 'websocket-plus:refresh', token: 'not-a-jwt' }));
      await waitForMessages(b, 1);
      b.send(await frame({ tenant_id: 'a', sub: 'bob' }));
      assert.strictEqual((await waitForClose(b)).reason, 'refresh too fast');
      const c = await open(rec, 'a', 'carol');
      c.send(await frame({ tenant_id: 'a', sub: 'mallory' }));
      assert.strictEqual((await waitForClose(c)).reason, 'identity changed');
      // The server counts a close once the closing handshake is done on its side.
      await waitFor(() => rec.listener.connectionCount === 1, 3000, 'two sessions closed');
      const m = await scrape(metrics);
      const L = { listener: '/ws/refresh' };
      for (const [result, count] of Object.entries({ refreshed: 1, failed: 1, rate_limited: 1, identity_changed: 1 }))
        assert.strictEqual(m.value('websocket_plus_token_refreshes_total', { ...L, result }), count, result);
      assert.strictEqual(m.value('websocket_plus_closes_total', { ...L, reason: 'identity_changed' }), 1);
      assert.ok(!m.text.includes('eyJ'), 'no token in the metrics');
    },
  );

  it('counts refresh outcomes reported through its hook', async function () {
    const metrics = new WebSocketPlusMetrics();
    metrics.recordRefresh('/ws/r', 'refreshed');
    metrics.recordRefresh('/ws/r', 'refreshed');
    metrics.recordRefresh('/ws/r', 'failed');
    const m = await scrape(metrics);
    assert.strictEqual(m.value('websocket_plus_token_refreshes_total', { listener: '/ws/r', result: 'refreshed' }), 2);
    assert.strictEqual(m.value('websocket_plus_token_refreshes_total', { listener: '/ws/r', result: 'failed' }), 1);
  });
});
