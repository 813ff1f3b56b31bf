'use strict';
// Enforced limits, each against a real listener with real clients: message rate (1008, the flow
// never sees the excess), connections per tenant (429, race-free, released on every path),
// message size (1009), slow consumers (cut off with the send buffer bounded), the heartbeat and
// refresh frames (faster than 1/s: 1008; an oversized token answered without being parsed).
const assert = require('assert');
const { helper, load, wsUrl, collect, listenerNode, useRuntime } = require('../helpers/red');
const { connect, waitForMessages, waitForClose, delay } = require('../helpers/ws-client');
const { signHS256 } = require('../helpers/tokens');
const { startHttpServer, startListener, waitFor, rawHandshake } = require('../helpers/hardening');
const http = require('http');
const parsePrometheus = require('parse-prometheus-text-format');
const { listenOnLoopback } = require('../helpers/loopback');

const { built } = require('../helpers/built');
const { LocalTenantLimiter } = built('core/server/tenant-limiter');

const SECRET = 'limits-secret-0123456789abcdef-0123456789abc';
const creds = { l1: { secret: SECRET } };
const tokenFor = (tenant, sub = 'u') => signHS256(SECRET, { tenant_id: tenant, sub }, { expiresIn: 600 });

function flow(props) {
  return [
    listenerNode('l1', { path: '/ws/limits', authMode: 'hs256', scope: 'session', ...props }),
    { id: 'in1', type: 'websocket-plus in', server: 'l1', client: '', wires: [['h1', 'out1']] },
    { id: 'out1', type: 'websocket-plus out', server: 'l1', client: '' },
    { id: 'h1', type: 'helper' },
  ];
}

describe('hardening: limits', function () {
  this.timeout(30000);

  describe('through Node-RED', function () {
    const sockets = useRuntime();

    async function open(query, options) {
      const r = await connect(wsUrl('/ws/limits', query), options);
      if (r.ws) sockets.push(r.ws);
      return r;
    }

    it('rate limit: a burst over the rate closes with 1008 and the flow never sees the excess', async function () {
      await load(flow({ rateLimit: '5' }), creds);
      const got = collect('h1');
      const { ws } = await open(`token=${await tokenFor('a')}`);
      const closed = waitForClose(ws);
      for (let i = 0; i < 40; i++) ws.send(`m${i}`);
      const { code, reason } = await closed;
      assert.strictEqual(code, 1008);
      assert.strictEqual(reason, 'rate limit exceeded');
      await delay(200);
      // burst = rate = 5 (a token may refill while the burst is read); never the 40 sent
      assert.ok(got.length >= 5 && got.length <= 6, `flow saw ${got.length}`);
      assert.deepStrictEqual(
        got.map((m) => m.payload),
        Array.from({ length: got.length }, (_, i) => `m${i}`),
      );
      // a client that keeps to the rate is never cut off
      const { ws: polite } = await open(`token=${await tokenFor('a')}`);
      for (let i = 0; i < 6; i++) {
        polite.send(`p${i}`);
        await delay(250);
      }
      assert.strictEqual(polite.readyState, 1);
    });

    it('tenant at its cap: 429, while another tenant connects; a closed slot is reusable', async function () {
      await load(flow({ maxConnections: '2' }), creds);
      const a1 = await open(`token=${await tokenFor('a')}`);
      const a2 = await open(`token=${await tokenFor('a')}`);
      assert.ok(a1.opened && a2.opened);
      const a3 = await open(`token=${await tokenFor('a')}`);
      assert.strictEqual(a3.status, 429);
      assert.strictEqual(a3.opened, false);
      assert.ok((await open(`token=${await tokenFor('b')}`)).opened, 'another tenant is not affected');
      const listener = helper.getNode('l1').listener;
      a1.ws.close();
      await waitFor(() => listener.registry.countForTenant('a') === 1, 3000, 'the slot to be released');
      assert.ok((await open(`token=${await tokenFor('a')}`)).opened, 'the released slot is reusable');
      assert.strictEqual((await open(`token=${await tokenFor('a')}`)).status, 429);
    });

    it('maxPayload: a bigger message closes with 1009 and never reaches the flow', async function () {
      await load(flow({ maxPayload: '1024' }), creds);
      const got = collect('h1');
      const { ws } = await open(`token=${await tokenFor('a')}`);
      ws.send('x'.repeat(1024));
      await waitForMessages(ws, 1);
      const closed = waitForClose(ws);
      ws.send('y'.repeat(1025));
      assert.strictEqual((await closed).code, 1009);
      await delay(100);
      assert.strictEqual(got.length, 1);
      assert.strictEqual(got[0].payload.length, 1024);
    });

    it('heartbeat: a client that does not answer pings is terminated; one that does stays', async function () {
      await load(flow({ heartbeat: '0.2' }), creds);
      const silent = await open(`token=${await tokenFor('a', 'silent')}`, { ws: { autoPong: false } });
      const healthy = await open(`token=${await tokenFor('a', 'healthy')}`);
      let pings = 0;
      silent.ws.on('ping', () => pings++);
      const { code } = await waitForClose(silent.ws, 3000);
      assert.strictEqual(code, 1006, 'terminated without a close frame');
      assert.ok(pings >= 1, 'the silent client was pinged first');
      await delay(700);
      assert.strictEqual(healthy.ws.readyState, 1);
      assert.strictEqual(helper.getNode('l1').listener.connectionCount, 1);
    });

    it(
      'refresh flood: frames faster than 1/s close with 1008 and are counted; an oversized refresh token is ' +
        'answered without being parsed; no token reaches the log or the metrics',
      async function () {
        const listenerPath = '/ws/limits-refresh';
        await load(flow({ path: listenerPath, refresh: 'message', refreshWindow: '0' }), creds);
        const got = collect('h1');
        const admin = await listenOnLoopback(http.createServer((req, res) => helper._httpAdmin(req, res)));
        try {
          const scrape = async () => {
            const res = await fetch(`http://127.0.0.1:${admin.port}/websocket-plus/metrics`, {
              signal: AbortSignal.timeout(10000),
            });
            const text = await res.text();
            const family = parsePrometheus(text).find((f) => f.name === 'websocket_plus_token_refreshes_total');
            const count = (result) =>
              (family ? family.metrics : [])
                .filter((m) => m.labels.listener === listenerPath && m.labels.result === result)
                .reduce((sum, m) => sum + Number(m.value), 0);
            return { text, rateLimited: count('rate_limited'), failed: count('failed') };
          };
          const before = await scrape();
          const tokens = [];
          const sign = async (sub) => {
            const t = await signHS256(SECRET, { tenant_id: 'a', sub }, { expiresIn: 600 });
            tokens.push(t);
            return t;
          };

          // An oversized token (64 KiB, far over the 8 KiB bound) in a frame that is not even JSON after
          // its start: answered "token too large" at once, never parsed (a parse would fail and pass the
          // frame on to the flow), the session stays.
          const big = await connect(wsUrl(listenerPath, `token=${await sign('big')}`));
          sockets.push(big.ws);
          const oversized = `{"type":"websocket-plus:refresh","token":"${'A'.repeat(64 * 1024)} not json }`;
          big.ws.send(oversized);
          const [answer] = await waitForMessages(big.ws, 1, 5000);
          assert.ok(answer.length < 200, `answer of ${answer.length} bytes`);
          assert.deepStrictEqual(JSON.parse(answer), {
            type: 'websocket-plus:refresh-failed',
            reason: 'token too large',
          });
          assert.strictEqual(big.ws.readyState, 1);

          // A flood of valid refresh frames: the second within a second closes with 1008.
          const flood = await connect(wsUrl(listenerPath, `token=${await sign('flood')}`));
          sockets.push(flood.ws);
          const closed = waitForClose(flood.ws);
          const fresh = await sign('flood');
          for (let i = 0; i < 20; i++) flood.ws.send(JSON.stringify({ type: 'websocket-plus:refresh', token: fresh }));
          assert.deepStrictEqual(await closed, { code: 1008, reason: 'refresh too fast' });

          await waitFor(
            async () => {
              const now = await scrape();
              return now.rateLimited === before.rateLimited + 1 && now.failed === before.failed + 1;
            },
            5000,
            'the flood and the oversized token counted',
          );
          const logText = () =>
            helper
              .log()
              .args.map((args) => JSON.stringify(args))
              .join('\n');
          // the close is logged (so the log is really looked at), without the token
          await waitFor(() => /session closed: refresh too fast/.test(logText()), 3000, 'the close in the log');
          const logged = logText();
          assert.deepStrictEqual(got, [], 'no refresh frame reached the flow');
          const { text } = await scrape();
          for (const t of tokens) {
            const signature = t.split('.')[2];
            assert.ok(!logged.includes(signature), 'a token reached the log');
            assert.ok(!text.includes(signature), 'a token reached the metrics');
          }
          assert.ok(!logged.includes('AAAAAAAAAAAAAAAA'), 'the oversized token reached the log');
        } finally {
          await admin.close();
        }
      },
    );
  });

  describe('core listener', function () {
    let srv;
    before(async () => {
      srv = await startHttpServer();
    });
    after(() => srv.close());

    it('rate limit 1/s: exactly one message of a burst is delivered, then 1008', async function () {
      const rec = startListener(srv, '/ws/rate1', { verifier: { mode: 'hs256', secret: SECRET }, rateLimit: 1 });
      const seen = [];
      rec.listener.on('message', (s, data) => seen.push(data));
      try {
        const { ws } = await connect(rec.url(`token=${await tokenFor('a')}`));
        const closed = waitForClose(ws);
        for (let i = 0; i < 10; i++) ws.send(`b${i}`);
        assert.strictEqual((await closed).code, 1008);
        await delay(100);
        assert.deepStrictEqual(seen, ['b0']);
        assert.deepStrictEqual(rec.enforced, ['RATE_LIMIT']);
      } finally {
        await rec.listener.close();
      }
    });

    it('concurrent handshakes for one tenant: exactly max succeed, and again after all close', async function () {
      const MAX = 5;
      const rec = startListener(srv, '/ws/race', {
        // a verifier with random latency interleaves the handshakes
        verifier: {
          mode: 'custom',
          verifyToken: async (token) => {
            await delay(Math.random() * 30);
            return { tenant_id: token };
          },
        },
        maxConnectionsPerTenant: MAX,
      });
      try {
        for (let round = 0; round < 2; round++) {
          const results = await Promise.all(Array.from({ length: 30 }, () => connect(rec.url('token=crowded'))));
          const ok = results.filter((r) => r.opened);
          assert.strictEqual(ok.length, MAX, `round ${round}: ${ok.length} opened`);
          assert.ok(results.filter((r) => !r.opened).every((r) => r.status === 429));
          assert.strictEqual(rec.listener.registry.countForTenant('crowded'), MAX);
          // another tenant is unaffected meanwhile
          const other = await connect(rec.url('token=other'));
          assert.ok(other.opened);
          for (const r of [...results, other]) r.ws.terminate();
          await waitFor(() => rec.listener.connectionCount === 0, 3000, 'all to close');
        }
      } finally {
        await rec.listener.close();
      }
    });

    it(
      'a slot is released when the client leaves during ' + 'verification or while the slot is being taken',
      async function () {
        const limiter = new LocalTenantLimiter(1);
        let slowAcquire = false;
        const rec = startListener(srv, '/ws/release', {
          verifier: {
            mode: 'custom',
            verifyToken: async (token) => {
              if (token === 'slow') await delay(300);
              return { tenant_id: 'solo' };
            },
          },
          // the real limiter, with an optional delay in acquire (as a cluster-wide one would have)
          tenantLimiter: {
            acquire: async (t) => {
              if (slowAcquire) await delay(300);
              return limiter.acquire(t);
            },
            release: (t) => limiter.release(t),
          },
        });
        try {
          // 1) the client gives up while its token is being verified
          const r1 = rawHandshake(srv.port, { path: '/ws/release?token=slow', timeoutMs: 100 }).catch(() => 'gave up');
          assert.strictEqual(await r1, 'gave up');
          await delay(400);
          assert.strictEqual(limiter.held('solo'), 0, 'slot held after an abandoned verification');
          // 2) the client gives up while the slot is being taken
          slowAcquire = true;
          const r2 = rawHandshake(srv.port, { path: '/ws/release?token=fast', timeoutMs: 100 }).catch(() => 'gave up');
          assert.strictEqual(await r2, 'gave up');
          await delay(400);
          assert.strictEqual(limiter.held('solo'), 0, 'slot held after an abandoned acquire');
          slowAcquire = false;
          // 3) refused for the cap, then a normal open/close
          const { ws } = await connect(rec.url('token=fast'));
          assert.strictEqual(limiter.held('solo'), 1);
          assert.strictEqual((await connect(rec.url('token=fast'))).status, 429);
          ws.close();
          await waitFor(() => limiter.held('solo') === 0, 3000, 'release on close');
          // 4) a session the client terminates releases too
          const again = await connect(rec.url('token=fast'));
          assert.ok(again.opened);
          again.ws.terminate();
          await waitFor(() => limiter.held('solo') === 0, 3000, 'release on terminate');
          assert.strictEqual(rec.listener.connectionCount, 0);
        } finally {
          await rec.listener.close();
        }
      },
    );

    it('a tenant limiter slower than the handshake deadline: 503, and the late slot is given back', async function () {
      const limiter = new LocalTenantLimiter(1);
      let acquires = 0;
      const rec = startListener(srv, '/ws/slow-limiter', {
        verifier: { mode: 'custom', verifyToken: async () => ({ tenant_id: 'late' }) },
        handshakeTimeoutMs: 150,
        tenantLimiter: {
          acquire: async (t) => {
            acquires++;
            await delay(400);
            return limiter.acquire(t);
          },
          release: (t) => limiter.release(t),
        },
      });
      try {
        const started = Date.now();
        const r = await connect(rec.url('token=x'));
        assert.strictEqual(r.status, 503);
        assert.ok(Date.now() - started < 380, 'answered at the deadline, not when the limiter answered');
        r.ws.terminate();
        await delay(450);
        assert.strictEqual(acquires, 1);
        assert.strictEqual(limiter.held('late'), 0, 'a slot granted after the deadline is released');
        assert.strictEqual(rec.listener.connectionCount, 0);
      } finally {
        await rec.listener.close();
      }
    });

    it('slow consumer: a client that stops reading is cut off with the send buffer bounded', async function () {
      const BOUND = 256 * 1024;
      const FRAME = Buffer.alloc(64 * 1024, 7);
      const rec = startListener(srv, '/ws/slow', {
        verifier: { mode: 'hs256', secret: SECRET },
        scope: 'tenant',
        maxBufferedBytes: BOUND,
      });
      try {
        const reader = await connect(rec.url(`token=${await tokenFor('t', 'reader')}`));
        const stalled = await connect(rec.url(`token=${await tokenFor('t', 'stalled')}`));
        let readerBytes = 0;
        reader.ws.removeAllListeners('message'); // count bytes instead of keeping every frame
        reader.ws.on('message', (d) => (readerBytes += d.length));
        stalled.ws._socket.pause();
        const stalledSession = [...rec.listener.registry.forTenant('t')].find((s) => s.subject === 'stalled');
        const readerSession = [...rec.listener.registry.forTenant('t')].find((s) => s.subject === 'reader');
        let maxBuffered = 0;
        let sends = 0;
        const MAX_SENDS = 1500; // ~94 MiB if nothing bounded it
        while (sends < MAX_SENDS && !rec.enforced.includes('SLOW_CONSUMER')) {
          rec.listener.deliver(readerSession.id, FRAME);
          sends++;
          maxBuffered = Math.max(maxBuffered, stalledSession.connection.bufferedAmount);
          // let the healthy reader drain so only the stalled client accumulates
          if (sends % 8 === 0) await new Promise((r) => setImmediate(r));
          if (sends % 64 === 0)
            await waitFor(() => readerBytes >= (sends - 8) * FRAME.length, 5000, 'reader to keep up');
        }
        if (process.env.HARDENING_VERBOSE)
          console.log(
            `      slow consumer: cut off after ${sends} frames of 64 KiB, ` +
              `peak buffered ${maxBuffered} B (bound ${BOUND})`,
          );
        assert.ok(rec.enforced.includes('SLOW_CONSUMER'), `not cut off after ${sends} frames`);
        assert.ok(maxBuffered <= BOUND + FRAME.length, `buffered ${maxBuffered} bytes, bound ${BOUND}`);
        // the stalled socket is terminated after the close grace period; the reader stays
        await waitFor(() => rec.listener.registry.countForTenant('t') === 1, 5000, 'the slow consumer to be dropped');
        assert.strictEqual(reader.ws.readyState, 1);
        await waitFor(() => readerBytes === sends * FRAME.length, 5000, 'the reader to get every frame');
        reader.ws.terminate();
        stalled.ws.terminate();
      } finally {
        await rec.listener.close();
      }
    });

    it(
      'ping flood from a client that does not read: closed ' + 'as a slow consumer, the queued pongs stay bounded',
      async function () {
        const BOUND = 256 * 1024;
        const rec = startListener(srv, '/ws/ping-flood', {
          verifier: { mode: 'hs256', secret: SECRET },
          maxBufferedBytes: BOUND,
        });
        try {
          const { ws } = await connect(rec.url(`token=${await tokenFor('p', 'flooder')}`));
          const session = [...rec.listener.registry.forTenant('p')][0];
          // a burst from a client that reads is answered in full: only what stays queued counts
          let pongs = 0;
          ws.on('pong', () => pongs++);
          for (let i = 0; i < 512; i++) ws.ping();
          await waitFor(() => pongs === 512, 5000, 'every pong of a burst');
          assert.deepStrictEqual(rec.enforced, []);
          let queuedAtCut = -1;
          rec.listener.on('enforced', (s) => (queuedAtCut = s.connection.bufferedAmount));
          ws._socket.pause(); // reads nothing: every pong the server queues stays queued
          const PING = Buffer.alloc(125, 1);
          const CAP = 64 * 1024 * 1024; // bytes of pings; unbounded queuing would need far less to show
          let sent = 0;
          let maxQueued = 0;
          while (sent < CAP && !rec.enforced.includes('SLOW_CONSUMER') && session.connection.readyState === 1) {
            for (let i = 0; i < 512; i++) ws.ping(PING);
            sent += 512 * PING.length;
            // let the server read them; keep the client's own send buffer small
            await waitFor(
              () => ws.bufferedAmount < 1024 * 1024 || session.connection.readyState !== 1,
              10000,
              'the server to read the pings',
            );
            maxQueued = Math.max(maxQueued, session.connection.bufferedAmount);
          }
          maxQueued = Math.max(maxQueued, queuedAtCut);
          if (process.env.HARDENING_VERBOSE)
            console.log(
              `      ping flood: ${(sent / 1048576).toFixed(1)} MiB of pings, ` +
                `server queue peak ${maxQueued} B (bound ${BOUND})`,
            );
          assert.deepStrictEqual(rec.enforced, ['SLOW_CONSUMER'], `after ${sent} bytes of pings`);
          assert.ok(maxQueued <= BOUND + 64 * 1024, `server queued ${maxQueued} bytes, bound ${BOUND}`);
          // cut off after the close grace period even though the client never reads the close
          await waitFor(() => rec.listener.connectionCount === 0, 5000, 'the flooder to be dropped');
          ws.terminate();
        } finally {
          await rec.listener.close();
        }
      },
    );

    it('a ping burst over the rate limit closes with 1008, as does a burst of unsolicited pongs', async function () {
      const rec = startListener(srv, '/ws/ping-rate', { verifier: { mode: 'hs256', secret: SECRET }, rateLimit: 5 });
      try {
        for (const kind of ['ping', 'pong']) {
          const { ws } = await connect(rec.url(`token=${await tokenFor('r', kind)}`));
          let pongs = 0;
          ws.on('pong', () => pongs++);
          const closed = waitForClose(ws);
          for (let i = 0; i < 40; i++) ws[kind](Buffer.from(`${kind}${i}`));
          assert.deepStrictEqual(await closed, { code: 1008, reason: 'rate limit exceeded' }, kind);
          assert.ok(pongs <= 6, `${pongs} pongs answered`);
        }
        assert.deepStrictEqual(rec.enforced, ['RATE_LIMIT', 'RATE_LIMIT']);
      } finally {
        await rec.listener.close();
      }
    });

    it('the pong to the heartbeat is free: a quiet client at rate limit 1/s stays connected', async function () {
      const rec = startListener(srv, '/ws/hb-rate', {
        verifier: { mode: 'hs256', secret: SECRET },
        rateLimit: 1,
        heartbeatMs: 100,
      });
      try {
        const { ws } = await connect(rec.url(`token=${await tokenFor('h')}`));
        let pings = 0;
        ws.on('ping', () => pings++);
        await delay(800);
        ws.send('one message');
        await delay(200);
        assert.ok(pings >= 3, `${pings} heartbeat pings`);
        assert.strictEqual(ws.readyState, 1);
        assert.deepStrictEqual(rec.enforced, []);
        ws.terminate();
      } finally {
        await rec.listener.close();
      }
    });
  });
});
