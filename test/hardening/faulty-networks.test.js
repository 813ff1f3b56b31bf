'use strict';
// Faulty networks on every outbound path: the JWKS fetch (direct over http and https, through an
// HTTP proxy for http:// and through a CONNECT tunnel for https://), the client connection (direct
// and through a proxy) and Redis. A fault server on 127.0.0.1 accepts and then misbehaves (silence,
// silence after CONNECT, 200 then silence, reset, slow drip, garbage, untrusted TLS). For each path
// and fault: the operation settles within its configured timeout (asserted with generous bounds),
// nothing is left open at the fault server, no timer is left behind, and once the fault goes away
// (the same port now leads to a good server) the next handshake or connection succeeds without a
// restart. Set FAULT_REPORT=1 to print the measured numbers.
const assert = require('assert');
const http = require('http');
const WebSocket = require('ws');
const { built } = require('../helpers/built');
const { createTokenVerifier } = built('core/auth/token-verifier');
const { createProxyFetch } = built('core/client/proxy');
const { OutboundConnection } = built('core/client/outbound-connection');
const { createListener } = require('../helpers/listener');
const { ClusterBus } = built('core/cluster/cluster-bus');
const { RedisTenantLimiter } = built('core/cluster/redis-tenant-limiter');
const { startFaultServer } = require('../helpers/fault-server');
const { startJwksServer } = require('../helpers/jwks-server');
const { startConnectProxy, clearProxyEnv } = require('../helpers/connect-proxy');
const { startRecordingServer } = require('../helpers/recording-ws-server');
const { startRedis } = require('../helpers/redis-server');
const { selfSignedCert, untrustedCert } = require('../helpers/self-signed-cert');
const { listenOnLoopback } = require('../helpers/loopback');
const { trackTimers } = require('../helpers/timers');
const { makeKey, signWithKey } = require('../helpers/tokens');
const { waitFor } = require('../helpers/wait');

/** Configured timeouts are small; the assertions allow far more for a loaded machine. */
const TIMEOUT_MS = 250;
const SETTLE_BOUND_MS = 5000;
const RECOVERY_BOUND_MS = 8000;
const measured = [];

/** Resolves { ok, value | error, ms } once `promise` settles, or { settled: false } after `bound`. */
async function settleWithin(promise, bound = SETTLE_BOUND_MS) {
  const started = Date.now();
  let timer;
  const outcome = await Promise.race([
    promise.then(
      (value) => ({ settled: true, ok: true, value }),
      (error) => ({ settled: true, ok: false, error }),
    ),
    new Promise((resolve) => {
      timer = setTimeout(() => resolve({ settled: false }), bound);
    }),
  ]);
  clearTimeout(timer);
  return { ...outcome, ms: Date.now() - started };
}

/** Starts counting timers once mocha has armed its own timeout for the running test. */
async function trackFromHere() {
  await new Promise((resolve) => setImmediate(resolve));
  return trackTimers({ stacks: true });
}

async function noTimersLeft(timers, what) {
  try {
    await waitFor(async () => (await timers.settled()) === 0, 3000, `no timer left (${what})`).catch((err) => {
      err.message += `\n${timers.where().join('\n---\n')}`;
      throw err;
    });
  } finally {
    timers.stop();
  }
}

async function noSocketsLeft(fault, what) {
  try {
    await waitFor(() => fault.open === 0, 3000, `no socket left at the fault server (${what})`);
  } catch (err) {
    err.message += `: ${fault.open} still open`;
    throw err;
  }
}

describe('hardening: faulty networks on every outbound path', function () {
  this.timeout(30000);
  let restoreEnv;
  let key;
  let token;
  let cert;
  let untrusted;
  let fault;
  let jwksHttp;
  let jwksHttps;
  let proxy;

  before(async function () {
    restoreEnv = clearProxyEnv();
    cert = selfSignedCert();
    untrusted = untrustedCert();
    key = await makeKey('ES256', 'k1');
    token = await signWithKey(key, { sub: 'alice', tenant_id: 'acme' }, { expiresIn: 3600 });
    jwksHttp = await startJwksServer([key]);
    jwksHttps = await startJwksServer([key], { tls: cert });
    proxy = await startConnectProxy();
  });

  after(async function () {
    restoreEnv();
    await Promise.all([jwksHttp?.close(), jwksHttps?.close(), proxy?.close()]);
    if (process.env.FAULT_REPORT) {
      for (const m of measured) console.log(`      ${JSON.stringify(m)}`);
    }
  });

  beforeEach(async function () {
    fault = await startFaultServer({ tls: untrusted, dripMs: 40 });
  });

  afterEach(async function () {
    await fault?.close();
  });

  // -------------------------------------------------------------------------------------------
  describe('JWKS fetch', function () {
    const faultUrl = (scheme) => `${scheme}://127.0.0.1:${fault.port}/.well-known/jwks.json`;
    const paths = [
      {
        name: 'direct http',
        faults: ['silent', 'reset', 'drip', 'garbage'],
        jwksUri: () => faultUrl('http'),
        settings: () => null,
        forwardTo: () => jwksHttp.port,
      },
      {
        name: 'direct https',
        faults: ['silent', 'reset', 'drip', 'garbage', 'tls-untrusted'],
        jwksUri: () => faultUrl('https'),
        settings: () => null,
        tls: true,
        forwardTo: () => jwksHttps.port,
      },
      {
        name: 'http:// through an HTTP proxy',
        faults: ['silent', 'reset', 'drip', 'garbage'],
        jwksUri: () => jwksHttp.url,
        settings: () => ({ http_proxy: `http://127.0.0.1:${fault.port}` }),
        forwardTo: () => proxy.port,
      },
      {
        name: 'https:// through a CONNECT proxy',
        faults: ['silent', 'connect-200-silent', 'reset', 'drip', 'garbage'],
        jwksUri: () => jwksHttps.url,
        settings: () => ({ https_proxy: `http://127.0.0.1:${fault.port}` }),
        tls: true,
        forwardTo: () => proxy.port,
      },
    ];

    for (const p of paths) {
      for (const mode of p.faults) {
        it(
          `${p.name}, ${mode}: refused within the timeout, ` + `nothing left open, recovers without a restart`,
          async function () {
            fault.setMode(mode);
            const timers = await trackFromHere();
            const verifier = createTokenVerifier({
              mode: 'jwks',
              jwksUri: p.jwksUri(),
              fetch: createProxyFetch(p.settings(), p.tls ? { tls: { ca: cert.cert } } : {}),
              jwksTimeoutMs: TIMEOUT_MS,
              jwksCooldownMs: 100,
              jwksFailureBackoffMs: 100,
            });
            // Two handshakes during the fault: each settles on its own (none waits on a wedged fetch).
            const first = await settleWithin(verifier.verify(token));
            assert.ok(first.settled, `the handshake did not settle within ${SETTLE_BOUND_MS} ms`);
            assert.strictEqual(first.ok, false);
            assert.strictEqual(first.error.code, 'KEYS_UNAVAILABLE');
            await new Promise((resolve) => setTimeout(resolve, 110));
            const second = await settleWithin(verifier.verify(token));
            assert.ok(second.settled, 'a later handshake waited on the wedged fetch');
            assert.strictEqual(second.ok, false);
            await noSocketsLeft(fault, 'after the refused handshakes');

            fault.setMode('forward', { forwardPort: p.forwardTo() });
            const switched = Date.now();
            let recovered;
            await waitFor(
              async () => {
                const attempt = await settleWithin(verifier.verify(token));
                recovered = attempt.settled && attempt.ok ? attempt.value : undefined;
                return recovered !== undefined;
              },
              RECOVERY_BOUND_MS,
              'the first handshake after the fault went away',
            );
            assert.strictEqual(recovered.subject, 'alice');
            const recoveryMs = Date.now() - switched;
            // undici keeps a kept-alive socket for a few seconds; ours must not be a wedged one.
            fault.dropAll();
            await noTimersLeft(timers, p.name);
            measured.push({
              path: `jwks ${p.name}`,
              fault: mode,
              settleMs: [first.ms, second.ms],
              socketsLeft: fault.open,
              recoveryMs,
            });
          },
        );
      }
    }

    it(
      'a handshake through a listener is answered during ' + 'the fault and succeeds once the proxy answers',
      async function () {
        fault.setMode('silent');
        const server = http.createServer();
        const { port, close } = await listenOnLoopback(server);
        const listener = createListener(server, '/faulty', {
          verifier: createTokenVerifier({
            mode: 'jwks',
            jwksUri: jwksHttps.url,
            fetch: createProxyFetch({ https_proxy: `http://127.0.0.1:${fault.port}` }, { tls: { ca: cert.cert } }),
            jwksTimeoutMs: TIMEOUT_MS,
            jwksCooldownMs: 100,
            jwksFailureBackoffMs: 100,
          }),
          handshakeTimeoutMs: 4000,
        });
        listener.start();
        const handshake = () =>
          new Promise((resolve) => {
            const ws = new WebSocket(`ws://127.0.0.1:${port}/faulty?token=${token}`);
            ws.on('unexpected-response', (_req, res) => {
              res.resume();
              ws.terminate();
              resolve(res.statusCode);
            });
            ws.on('open', () => {
              ws.close();
              resolve(101);
            });
            ws.on('error', () => resolve('error'));
          });
        try {
          const during = await settleWithin(handshake());
          assert.ok(during.settled && during.ok, 'the handshake was not answered during the fault');
          assert.strictEqual(during.value, 401);
          await noSocketsLeft(fault, 'after the refused handshake');
          fault.setMode('forward', { forwardPort: proxy.port });
          const switched = Date.now();
          await waitFor(
            async () => (await handshake()) === 101,
            RECOVERY_BOUND_MS,
            'a successful handshake after recovery',
          );
          const recoveryMs = Date.now() - switched;
          measured.push({
            path: 'listener handshake, jwks via CONNECT',
            fault: 'silent',
            settleMs: during.ms,
            recoveryMs,
          });
        } finally {
          await listener.close();
          await close();
        }
      },
    );
  });

  // -------------------------------------------------------------------------------------------
  describe('client connection', function () {
    let good;
    let goodTls;

    before(async function () {
      good = await startRecordingServer();
      goodTls = await startRecordingServer({ tls: cert });
    });

    after(async function () {
      await Promise.all([good?.close(), goodTls?.close()]);
    });

    const paths = [
      {
        name: 'direct ws://',
        faults: ['silent', 'reset', 'drip', 'garbage'],
        url: () => `ws://127.0.0.1:${fault.port}/feed`,
        forwardTo: () => good.port,
      },
      {
        name: 'direct wss://',
        faults: ['silent', 'garbage', 'tls-untrusted'],
        url: () => `wss://127.0.0.1:${fault.port}/feed`,
        tls: true,
        forwardTo: () => goodTls.port,
      },
      {
        name: 'ws:// through a proxy',
        faults: ['silent', 'connect-200-silent', 'reset', 'drip', 'garbage'],
        url: () => `ws://127.0.0.1:${good.port}/feed`,
        settings: () => ({ http_proxy: `http://127.0.0.1:${fault.port}` }),
        forwardTo: () => proxy.port,
      },
      {
        name: 'wss:// through a proxy',
        faults: ['silent', 'connect-200-silent'],
        url: () => `wss://127.0.0.1:${goodTls.port}/feed`,
        tls: true,
        settings: () => ({ https_proxy: `http://127.0.0.1:${fault.port}` }),
        forwardTo: () => proxy.port,
      },
    ];

    const ATTEMPTS = 3;

    function connection(p) {
      const conn = new OutboundConnection({
        url: p.url(),
        authMode: 'none',
        proxy: p.settings ? p.settings() : null,
        tls: p.tls ? { ca: cert.cert } : undefined,
        handshakeTimeoutMs: TIMEOUT_MS,
        backoff: { initialDelayMs: 40, maxDelayMs: 80 },
      });
      conn.on('error', () => {});
      const attempts = [];
      conn.on('connecting', () => attempts.push({ started: Date.now() }));
      conn.on('reconnecting', () => {
        const last = attempts[attempts.length - 1];
        if (last && last.ms === undefined) last.ms = Date.now() - last.started;
      });
      return { conn, attempts };
    }

    for (const p of paths) {
      for (const mode of p.faults) {
        it(
          `${p.name}, ${mode}: every attempt ends within its ` + `timeout, nothing left open after close, recovers`,
          async function () {
            fault.setMode(mode);
            const timers = await trackFromHere();
            const { conn, attempts } = connection(p);
            conn.start();
            const ended = () => attempts.filter((a) => a.ms !== undefined).length;
            await waitFor(() => ended() >= ATTEMPTS, SETTLE_BOUND_MS * ATTEMPTS, `${ATTEMPTS} attempts ended`);
            const settleMs = attempts.filter((a) => a.ms !== undefined).map((a) => a.ms);
            const openAfterAttempts = fault.open;
            // Only the attempt in progress may hold a socket at the fault server.
            await waitFor(
              () => fault.open <= 1,
              3000,
              `at most one socket open after ${ATTEMPTS} attempts (${fault.open})`,
            );
            const closing = await settleWithin(conn.close());
            assert.ok(closing.settled, 'close() did not settle');
            await noSocketsLeft(fault, `after ${ATTEMPTS} attempts and close()`);

            // A running connection recovers by itself once the fault is gone.
            const again = connection(p);
            let openedAt;
            again.conn.on('open', () => {
              openedAt = Date.now();
            });
            again.conn.start();
            await waitFor(
              () => again.attempts.some((a) => a.ms !== undefined),
              SETTLE_BOUND_MS,
              'a first failed attempt',
            );
            fault.setMode('forward', { forwardPort: p.forwardTo() });
            const switched = Date.now();
            await waitFor(() => openedAt !== undefined, RECOVERY_BOUND_MS, 'the connection after the fault went away');
            const recoveryMs = openedAt - switched;
            await again.conn.close();
            await noSocketsLeft(fault, 'after the recovered connection closed');
            await noTimersLeft(timers, p.name);
            measured.push({
              path: `client ${p.name}`,
              fault: mode,
              attemptMs: settleMs,
              openAfterAttempts,
              socketsLeft: fault.open,
              recoveryMs,
            });
          },
        );
      }
    }
  });

  // -------------------------------------------------------------------------------------------
  describe('Redis (cluster bus and tenant limiter)', function () {
    let redis;

    before(async function () {
      redis = await startRedis();
    });

    after(async function () {
      await redis?.close();
    });

    for (const mode of ['silent', 'reset', 'drip', 'garbage']) {
      it(`${mode}: the limiter answers within its timeout, the bus recovers, nothing left open`, async function () {
        fault.setMode(mode, { dripText: '+PONG' });
        const timers = await trackFromHere();
        const bus = new ClusterBus({
          url: `redis://127.0.0.1:${fault.port}`,
          prefix: `wsplus:faulty:${mode}`,
          connectTimeoutMs: TIMEOUT_MS,
          commandTimeoutMs: TIMEOUT_MS,
          maxReconnectDelayMs: 100,
        });
        bus.on('connectionError', () => {});
        bus.on('deliveryError', () => {});
        const limiter = new RedisTenantLimiter(bus, { maxPerTenant: 5, leaseMs: 3000 });
        bus.attach({ receiveFromCluster() {} });
        try {
          await waitFor(() => fault.accepted >= 2, SETTLE_BOUND_MS, 'both connections reached the fault server');
          // A handshake takes a tenant slot: it must be answered (locally, Redis being unusable).
          const acquire = await settleWithin(limiter.acquire('acme'));
          assert.ok(acquire.settled, 'acquire did not settle');
          assert.strictEqual(acquire.value, true);
          assert.notStrictEqual(bus.state, 'ready');

          fault.setMode('forward', { forwardPort: redis.port });
          const switched = Date.now();
          await waitFor(
            () => bus.state === 'ready',
            RECOVERY_BOUND_MS,
            `the bus ready after the fault went away (state ${bus.state})`,
          );
          const recoveryMs = Date.now() - switched;
          const viaRedis = await settleWithin(limiter.acquire('acme'));
          assert.strictEqual(viaRedis.value, true);
          measured.push({ path: 'redis', fault: mode, acquireMs: acquire.ms, recoveryMs });
        } finally {
          await limiter.close();
          await bus.close();
        }
        await noSocketsLeft(fault, 'after the bus closed');
        await noTimersLeft(timers, 'redis');
      });
    }

    it(
      'Redis stops answering while the bus is ready: a ' + "handshake's slot is decided within the command timeout",
      async function () {
        fault.setMode('forward', { forwardPort: redis.port });
        const timers = await trackFromHere();
        const bus = new ClusterBus({
          url: `redis://127.0.0.1:${fault.port}`,
          prefix: 'wsplus:faulty:stall',
          connectTimeoutMs: TIMEOUT_MS,
          commandTimeoutMs: TIMEOUT_MS,
          maxReconnectDelayMs: 100,
        });
        bus.on('connectionError', () => {});
        const limiter = new RedisTenantLimiter(bus, { maxPerTenant: 5, leaseMs: 3000 });
        bus.attach({ receiveFromCluster() {} });
        try {
          await waitFor(() => bus.state === 'ready', RECOVERY_BOUND_MS, 'bus ready');
          fault.stall();
          const stalled = await settleWithin(limiter.acquire('acme'));
          assert.ok(stalled.settled, 'acquire did not settle while Redis was silent');
          assert.strictEqual(stalled.value, true);
          fault.resume();
          const resumed = Date.now();
          // Redis answers again: the next slot is taken in Redis, on the same connection.
          const again = await settleWithin(bus.commands.ping());
          assert.ok(again.settled && again.ok && again.value === 'PONG', 'Redis did not answer after the stall');
          assert.strictEqual((await settleWithin(limiter.acquire('acme'))).value, true);
          assert.strictEqual(bus.state, 'ready');
          measured.push({
            path: 'redis',
            fault: 'stops answering when ready',
            acquireMs: stalled.ms,
            recoveryMs: Date.now() - resumed,
          });
        } finally {
          await limiter.close();
          await bus.close();
        }
        await noSocketsLeft(fault, 'after the bus closed');
        await noTimersLeft(timers, 'redis stall');
      },
    );
  });
});
