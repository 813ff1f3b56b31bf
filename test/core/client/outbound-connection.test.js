'use strict';
const assert = require('assert');
const net = require('net');
const { built } = require('../../helpers/built');
const { OutboundConnection, parseSubprotocols, appendToken, backoffDelay } = built('core/client/outbound-connection');
const { startConnectProxy, clearProxyEnv } = require('../../helpers/connect-proxy');
const { startFaultServer } = require('../../helpers/fault-server');
const { selfSignedCert } = require('../../helpers/self-signed-cert');
const { startRecordingServer, waitFor } = require('../../helpers/recording-ws-server');
const { signHS256 } = require('../../helpers/tokens');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const { trackTimers } = require('../../helpers/timers');
const FAST = { initialDelayMs: 20, maxDelayMs: 200, stableAfterMs: 60_000 };

/** Records every event of a connection, in order. */
function record(conn) {
  const events = [];
  for (const name of ['connecting', 'open', 'message', 'close', 'refused', 'error', 'reconnecting']) {
    conn.on(name, (...args) => events.push({ name, args, at: Date.now() }));
  }
  events.of = (name) => events.filter((e) => e.name === name);
  return events;
}

/** A TCP server that accepts and never answers: a hung server or a proxy that ignores CONNECT. */
async function startBlackHole() {
  const sockets = new Set();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: server.address().port,
    accepted: () => sockets.size,
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

describe('core/outbound-connection', function () {
  let restoreEnv;
  const live = [];
  /** Creates a connection that is closed after the test whatever happens. */
  function connection(options) {
    const conn = new OutboundConnection(options);
    live.push(conn);
    return conn;
  }
  beforeEach(function () {
    restoreEnv = clearProxyEnv();
  });
  afterEach(async function () {
    await Promise.all(live.splice(0).map((c) => c.close()));
    restoreEnv();
  });

  describe('pure helpers and configuration', function () {
    it('parses subprotocols: comma-separated, empty means none, bad names refused', function () {
      assert.deepStrictEqual(parseSubprotocols(''), []);
      assert.deepStrictEqual(parseSubprotocols(undefined), []);
      assert.deepStrictEqual(parseSubprotocols(' , '), []);
      assert.deepStrictEqual(parseSubprotocols('mqtt, v2.json'), ['mqtt', 'v2.json']);
      assert.throws(
        () => parseSubprotocols('a b'),
        (e) => e.code === 'OPTION_INVALID',
      );
      assert.throws(
        () => parseSubprotocols('a,a'),
        (e) => e.code === 'OPTION_INVALID',
      );
    });

    it('appends the token URL-encoded and keeps the query exactly as written', function () {
      assert.strictEqual(appendToken('ws://h/p', 'a.b.c'), 'ws://h/p?token=a.b.c');
      assert.strictEqual(appendToken('ws://h/p?x=1&y=a%20b', 't+/=&'), 'ws://h/p?x=1&y=a%20b&token=t%2B%2F%3D%26');
      assert.strictEqual(appendToken('ws://h/p?', 't'), 'ws://h/p?token=t');
      assert.strictEqual(appendToken('ws://h/p?x&', 't'), 'ws://h/p?x&token=t');
    });

    it('backoff doubles from the initial delay, is capped, and jitters within [d/2, d]', function () {
      assert.strictEqual(
        backoffDelay(0, 1000, 60000, () => 1),
        1000,
      );
      assert.strictEqual(
        backoffDelay(0, 1000, 60000, () => 0),
        500,
      );
      assert.strictEqual(
        backoffDelay(3, 1000, 60000, () => 1),
        8000,
      );
      assert.strictEqual(
        backoffDelay(6, 1000, 60000, () => 1),
        60000,
      );
      assert.strictEqual(
        backoffDelay(5000, 1000, 60000, () => 1),
        60000,
      );
      for (let i = 0; i < 50; i++) {
        const d = backoffDelay(2, 1000, 60000);
        assert.ok(d >= 2000 && d <= 4000, String(d));
      }
    });

    it('refuses configurations that cannot work', function () {
      assert.throws(
        () => new OutboundConnection({ url: 'http://h/x', authMode: 'none' }),
        (e) => e.code === 'URL_INVALID',
      );
      assert.throws(
        () => new OutboundConnection({ url: 'not a url', authMode: 'none' }),
        (e) => e.code === 'URL_INVALID',
      );
      assert.throws(
        () => new OutboundConnection({ url: 'ws://h/x#frag', authMode: 'none' }),
        (e) => e.code === 'URL_INVALID',
      );
      assert.throws(
        () => new OutboundConnection({ url: 'ws://h/x' }),
        (e) => e.code === 'TOKEN_MISSING',
      );
      assert.throws(
        () => new OutboundConnection({ url: 'ws://h/x?token=abc', token: 'abc' }),
        (e) => e.code === 'OPTION_INVALID' && !e.message.includes('abc'),
      );
      assert.throws(
        () => new OutboundConnection({ url: 'ws://h/x', authMode: 'basic' }),
        (e) => e.code === 'OPTION_INVALID',
      );
      assert.throws(
        () => new OutboundConnection({ url: 'ws://h/x', authMode: 'none', subprotocol: 'a;b' }),
        (e) => e.code === 'OPTION_INVALID',
      );
      const c = new OutboundConnection({ url: 'wss://user:pw@h:8443/x?q=1', token: 't' });
      assert.strictEqual(c.displayUrl, 'wss://h:8443/x');
    });
  });

  describe('handshake against real servers', function () {
    let server;
    let tlsServer;
    let cert;
    before(async function () {
      cert = selfSignedCert();
      const handleProtocols = (protocols) => (protocols.has('chat.v2') ? 'chat.v2' : false);
      const echo = (ws) =>
        ws.on('message', (data, isBinary) => ws.send(isBinary ? data : `echo:${data}`, { binary: isBinary }));
      server = await startRecordingServer({ handleProtocols, onConnection: echo });
      tlsServer = await startRecordingServer({ tls: cert, handleProtocols, onConnection: echo });
    });
    after(async function () {
      await Promise.all([server.close(), tlsServer.close()]);
    });

    it(
      'jwt mode: the token arrives URL-encoded after ' + 'the existing query, with headers and subprotocol',
      async function () {
        const token = await signHS256('s3cret-for-test', { sub: 'device-1', tenant_id: 'acme' });
        const conn = connection({
          url: `${server.url}/feed?x=1&y=a%20b`,
          token,
          subprotocol: 'chat.v1, chat.v2',
          headers: () => ({ 'x-client': 'plus', authorization: 'Bearer other' }),
          backoff: FAST,
        });
        const events = record(conn);
        conn.start();
        await waitFor(() => events.of('open').length, 'open');
        const upgrade = server.upgrades.at(-1);
        assert.strictEqual(upgrade.url, `/feed?x=1&y=a%20b&token=${token}`);
        assert.strictEqual(new URL(upgrade.url, 'ws://h').searchParams.get('token'), token);
        assert.strictEqual(upgrade.headers['x-client'], 'plus');
        assert.strictEqual(upgrade.headers.authorization, 'Bearer other');
        assert.strictEqual(upgrade.headers['sec-websocket-protocol'], 'chat.v1,chat.v2');
        assert.strictEqual(conn.protocol, 'chat.v2');
        assert.ok(conn.connected);

        assert.strictEqual(conn.send('hello'), true);
        assert.strictEqual(conn.send(Buffer.from([1, 2, 3])), true);
        await waitFor(() => events.of('message').length >= 2, 'echoes');
        const [text, binary] = events.of('message').map((e) => e.args);
        assert.deepStrictEqual(text, ['echo:hello', false, conn.id]);
        assert.ok(Buffer.isBuffer(binary[0]) && binary[0].equals(Buffer.from([1, 2, 3])) && binary[1] === true);
        assert.strictEqual(events.of('open')[0].args[0], conn.id);
        assert.match(conn.id, /^[0-9a-f-]{36}$/);
      },
    );

    it('none mode sends no token; no subprotocol header when the field is empty', async function () {
      const conn = connection({ url: `${server.url}/open?k=v`, authMode: 'none', subprotocol: '', backoff: FAST });
      const events = record(conn);
      conn.start();
      await waitFor(() => events.of('open').length, 'open');
      const upgrade = server.upgrades.at(-1);
      assert.strictEqual(upgrade.url, '/open?k=v');
      assert.strictEqual(upgrade.headers['sec-websocket-protocol'], undefined);
      assert.strictEqual(conn.protocol, '');
    });

    it('resolves headers and the token at each connect (environment variables may change)', async function () {
      process.env.WSPLUS_TEST_API_KEY = 'key-one';
      let tokenNo = 0;
      const conn = connection({
        url: `${server.url}/rotating`,
        token: () => `token-${++tokenNo}`,
        headers: () => ({ 'x-api-key': process.env.WSPLUS_TEST_API_KEY }),
        backoff: FAST,
      });
      const events = record(conn);
      try {
        conn.start();
        await waitFor(() => events.of('open').length === 1, 'first open');
        const firstId = conn.id;
        assert.strictEqual(server.upgrades.at(-1).headers['x-api-key'], 'key-one');
        process.env.WSPLUS_TEST_API_KEY = 'key-two';
        for (const ws of server.wss.clients) ws.close(1012, 'restart');
        await waitFor(() => events.of('open').length === 2, 'second open');
        assert.strictEqual(server.upgrades.at(-1).headers['x-api-key'], 'key-two');
        assert.strictEqual(server.upgrades.at(-1).url, '/rotating?token=token-2');
        assert.deepStrictEqual(events.of('close')[0].args, [1012, 'restart', firstId]);
        assert.notStrictEqual(conn.id, firstId, 'every socket has its own id');
      } finally {
        delete process.env.WSPLUS_TEST_API_KEY;
      }
    });

    it(
      'setToken() sends a refresh frame on the open socket ' + 'and replaces the token for every later connect',
      async function () {
        const conn = connection({ url: `${server.url}/replace`, token: () => 'configured', backoff: FAST });
        const events = record(conn);
        assert.strictEqual(conn.setToken('before-start'), false, 'nothing sent without a socket');
        conn.start();
        await waitFor(() => events.of('open').length === 1, 'first open');
        assert.strictEqual(server.upgrades.at(-1).url, '/replace?token=before-start');
        assert.strictEqual(conn.setToken('new.token.value'), true);
        await waitFor(() => events.of('message').length === 1, 'echo of the refresh frame');
        assert.strictEqual(
          events.of('message')[0].args[0],
          'echo:{"type":"websocket-plus:refresh","token":"new.token.value"}',
        );
        for (const ws of server.wss.clients) ws.close(1012, 'restart');
        await waitFor(() => events.of('open').length === 2, 'second open');
        assert.strictEqual(server.upgrades.at(-1).url, '/replace?token=new.token.value');
        assert.throws(() => conn.setToken(''), { code: 'TOKEN_MISSING' });
        assert.throws(() => conn.setToken(undefined), { code: 'TOKEN_MISSING' });
      },
    );

    it('setToken() in none mode keeps sending no token and no refresh frame', async function () {
      const conn = connection({ url: `${server.url}/none`, authMode: 'none', backoff: FAST });
      const events = record(conn);
      conn.start();
      await waitFor(() => events.of('open').length === 1, 'open');
      assert.strictEqual(conn.setToken('ignored'), false);
      for (const ws of server.wss.clients) ws.close(1012, 'restart');
      await waitFor(() => events.of('open').length === 2, 'second open');
      assert.strictEqual(server.upgrades.at(-1).url, '/none');
      assert.strictEqual(events.of('message').length, 0);
    });

    it(
      'wss: trusts the server through the given CA, passes ' + 'servername, and refuses an untrusted certificate',
      async function () {
        const trusted = connection({
          url: `${tlsServer.url}/secure`,
          authMode: 'none',
          subprotocol: 'chat.v2',
          tls: { ca: cert.cert, servername: 'localhost' },
          backoff: FAST,
        });
        const ok = record(trusted);
        trusted.start();
        await waitFor(() => ok.of('open').length, 'wss open');
        assert.strictEqual(tlsServer.upgrades.at(-1).servername, 'localhost');
        assert.strictEqual(trusted.protocol, 'chat.v2');
        trusted.send('over tls');
        await waitFor(() => ok.of('message').length, 'tls echo');
        assert.strictEqual(ok.of('message')[0].args[0], 'echo:over tls');

        const upgradesBefore = tlsServer.upgrades.length;
        const untrusted = connection({ url: `${tlsServer.url}/secure`, token: 'tok-untrusted', backoff: FAST });
        const bad = record(untrusted);
        untrusted.start();
        await waitFor(() => bad.of('error').length >= 2, 'two TLS failures');
        assert.match(bad.of('error')[0].args[0].message, /self[- ]signed/i);
        assert.strictEqual(bad.of('open').length, 0);
        assert.strictEqual(tlsServer.upgrades.length, upgradesBefore, 'no upgrade request reached the server');

        const insecure = connection({
          url: `${tlsServer.url}/secure`,
          authMode: 'none',
          tls: { rejectUnauthorized: false },
          backoff: FAST,
        });
        const lax = record(insecure);
        insecure.start();
        await waitFor(() => lax.of('open').length, 'open with rejectUnauthorized false');
      },
    );
  });

  describe('proxies', function () {
    let server;
    let tlsServer;
    let proxy;
    let otherProxy;
    let authProxy;
    let cert;
    before(async function () {
      cert = selfSignedCert();
      server = await startRecordingServer();
      tlsServer = await startRecordingServer({ tls: cert });
      proxy = await startConnectProxy();
      otherProxy = await startConnectProxy();
      authProxy = await startConnectProxy({ auth: 'carol:pa ss' });
    });
    after(async function () {
      await Promise.all([server, tlsServer, proxy, otherProxy, authProxy].map((s) => s.close()));
    });

    async function openThrough(options) {
      const conn = connection({ backoff: FAST, ...options });
      const events = record(conn);
      conn.start();
      await waitFor(() => events.of('open').length || events.of('refused').length, 'open or refused');
      return { conn, events };
    }

    it('ws:// goes through the http proxy and wss:// through the https proxy (settings)', async function () {
      const settings = { http_proxy: proxy.url, https_proxy: otherProxy.url };
      await openThrough({ url: `${server.url}/via-proxy`, token: 'tok-a', proxy: settings });
      await openThrough({ url: `${tlsServer.url}/via-proxy`, token: 'tok-b', proxy: settings, tls: { ca: cert.cert } });
      assert.strictEqual(proxy.connects.at(-1).target, `127.0.0.1:${server.port}`);
      assert.strictEqual(otherProxy.connects.at(-1).target, `127.0.0.1:${tlsServer.port}`);
      assert.strictEqual(server.upgrades.at(-1).url, '/via-proxy?token=tok-a');
      assert.strictEqual(tlsServer.upgrades.at(-1).url, '/via-proxy?token=tok-b');
      // The tunnel carries the token encrypted for wss://; the proxy only ever saw host:port.
      assert.ok(!JSON.stringify(otherProxy.connects).includes('tok-b'));
    });

    it('reads the environment when settings name no proxy; NO_PROXY bypasses it', async function () {
      process.env.HTTPS_PROXY = proxy.url;
      const before = proxy.connects.length;
      await openThrough({ url: `${tlsServer.url}/env`, authMode: 'none', tls: { ca: cert.cert } });
      assert.strictEqual(proxy.connects.length, before + 1);
      process.env.NO_PROXY = `localhost,127.0.0.1:${tlsServer.port}`;
      const upgrades = tlsServer.upgrades.length;
      await openThrough({ url: `${tlsServer.url}/env-bypass`, authMode: 'none', tls: { ca: cert.cert } });
      assert.strictEqual(proxy.connects.length, before + 1, 'NO_PROXY entry host:port bypassed the proxy');
      assert.strictEqual(tlsServer.upgrades.length, upgrades + 1);
    });

    it('settings.proxyOptions wins over the environment', async function () {
      process.env.http_proxy = proxy.url;
      process.env.HTTP_PROXY = proxy.url;
      const before = proxy.connects.length;
      const otherBefore = otherProxy.connects.length;
      await openThrough({ url: `${server.url}/settings-win`, authMode: 'none', proxy: { http_proxy: otherProxy.url } });
      assert.strictEqual(proxy.connects.length, before);
      assert.strictEqual(otherProxy.connects.length, otherBefore + 1);
      // Settings' no_proxy bypasses even though the environment names a proxy.
      await openThrough({
        url: `${server.url}/settings-bypass`,
        authMode: 'none',
        proxy: { http_proxy: otherProxy.url, no_proxy: '*' },
      });
      assert.strictEqual(proxy.connects.length + otherProxy.connects.length, before + otherBefore + 1);
    });

    it('credentials in the proxy URL work; a 407 is reported as a refusal and retried with backoff', async function () {
      const { events: ok } = await openThrough({
        url: `${server.url}/auth`,
        authMode: 'none',
        proxy: { http_proxy: authProxy.authUrl },
      });
      assert.strictEqual(ok.of('open').length, 1);
      assert.strictEqual(
        authProxy.connects.at(-1).headers['proxy-authorization'],
        `Basic ${Buffer.from('carol:pa ss').toString('base64')}`,
      );

      const { conn, events } = await openThrough({
        url: `${server.url}/auth`,
        token: 'tok-407',
        proxy: { http_proxy: authProxy.url },
      });
      assert.deepStrictEqual(events.of('refused')[0].args, [407]);
      await waitFor(() => events.of('refused').length >= 2, 'a second, backed-off attempt');
      assert.strictEqual(events.of('open').length, 0);
      assert.strictEqual(events.of('error').length, 0, 'a refusal is not also an error');
      await conn.close();
    });

    it(
      'a proxy that never answers CONNECT cannot hang ' + 'the client: the attempt times out and is retried',
      async function () {
        const hole = await startBlackHole();
        try {
          const conn = connection({
            url: `${server.url}/never`,
            token: 'tok-hang',
            proxy: { http_proxy: `http://127.0.0.1:${hole.port}` },
            handshakeTimeoutMs: 150,
            backoff: FAST,
          });
          const events = record(conn);
          conn.start();
          await waitFor(() => events.of('connecting').length >= 2, 'second attempt');
          assert.match(events.of('error')[0].args[0].message, /timed out/);
          await conn.close();
        } finally {
          await hole.close();
        }
      },
    );

    for (const mode of ['silent', 'connect-200-silent']) {
      it(
        `no tunnel socket outlives its attempt or close() (proxy ` +
          `${mode === 'silent' ? 'never answers CONNECT' : 'answers 200, then nothing'})`,
        async function () {
          const fault = await startFaultServer({ mode });
          try {
            const conn = connection({
              url: `${server.url}/held`,
              token: 'tok-held',
              proxy: { http_proxy: `http://127.0.0.1:${fault.port}` },
              handshakeTimeoutMs: 100,
              backoff: { initialDelayMs: 10, maxDelayMs: 20 },
            });
            const events = record(conn);
            conn.start();
            const attempts = 6;
            await waitFor(() => events.of('reconnecting').length >= attempts, `${attempts} attempts timed out`);
            // Only the attempt in progress may hold a socket at the proxy.
            await waitFor(
              () => fault.open <= 1,
              `at most one socket open at the proxy after ${attempts} attempts (${fault.open} open)`,
            );
            assert.ok(fault.accepted >= attempts);
            await conn.close();
            await waitFor(() => fault.open === 0, `no socket open at the proxy after close() (${fault.open} open)`);
          } finally {
            await fault.close();
          }
        },
      );
    }
  });

  describe('heartbeat', function () {
    it('terminates and reconnects when the server stops answering pings', async function () {
      const server = await startRecordingServer({ autoPong: false });
      try {
        const conn = connection({ url: `${server.url}/hb`, authMode: 'none', heartbeatMs: 100, backoff: FAST });
        const events = record(conn);
        conn.start();
        await waitFor(() => events.of('open').length >= 2, 'reconnect after missed pong');
        const close = events.of('close')[0];
        assert.strictEqual(close.args[0], 1006);
        assert.strictEqual(close.args[1], 'heartbeat missed');
        assert.ok(close.at - events.of('open')[0].at >= 150, 'not before a whole ping interval went unanswered');
        assert.strictEqual(server.maxOpen, 1);
      } finally {
        await server.close();
      }
    });

    it('keeps a connection whose server answers pings', async function () {
      const server = await startRecordingServer();
      let pings = 0;
      server.wss.on('connection', (ws) => ws.on('ping', () => pings++));
      try {
        const conn = connection({ url: `${server.url}/hb`, authMode: 'none', heartbeatMs: 50, backoff: FAST });
        const events = record(conn);
        conn.start();
        await waitFor(() => events.of('open').length, 'open');
        await waitFor(() => pings >= 6, 'six pings');
        assert.strictEqual(events.of('close').length, 0);
        assert.strictEqual(server.connections, 1);
      } finally {
        await server.close();
      }
    });
  });

  describe('reconnect', function () {
    it('survives 5 server restarts with bounded backoff and never two sockets at once', async function () {
      const state = { upgrades: [], connections: 0, open: 0, maxOpen: 0 };
      let server = await startRecordingServer({ state });
      const port = server.port;
      const conn = connection({ url: `ws://127.0.0.1:${port}/restart`, token: 'tok-restart', backoff: FAST });
      const events = record(conn);
      // Client side: an attempt ends when the next one is scheduled (only after its socket closed);
      // a new attempt must never start while the previous one is still alive.
      let alive = 0;
      let maxAlive = 0;
      conn.on('connecting', () => {
        alive++;
        maxAlive = Math.max(maxAlive, alive);
      });
      conn.on('reconnecting', () => {
        alive--;
      });
      conn.start();
      for (let restart = 1; restart <= 5; restart++) {
        await waitFor(() => state.connections === restart && conn.connected, `connection ${restart}`);
        await server.close();
        await sleep(120); // several attempts fail while the server is down
        server = await startRecordingServer({ state, port });
      }
      await waitFor(() => state.connections === 6 && conn.connected, 'connection 6');
      await server.close();
      assert.strictEqual(events.of('open').length, 6);
      assert.strictEqual(state.maxOpen, 1, 'the server never saw two sockets at once');
      assert.strictEqual(maxAlive, 1, 'the client never had two attempts in flight');
      const delays = events.of('reconnecting').map((e) => e.args[0]);
      assert.ok(delays.length > 6, `attempts while the server was down (${delays.length})`);
      for (const d of delays)
        assert.ok(d >= FAST.initialDelayMs / 2 && d <= FAST.maxDelayMs, `delay ${d} within bounds`);
      assert.ok(
        delays.some((d) => d > FAST.initialDelayMs),
        'the delay grew',
      );
      assert.ok(events.of('error').every((e) => !e.args[0].message.includes('tok-restart')));
    });

    it('resets the backoff after a connection stayed open long enough, not before', async function () {
      const server = await startRecordingServer();
      try {
        const conn = connection({
          url: `${server.url}/stable`,
          authMode: 'none',
          backoff: { initialDelayMs: 40, maxDelayMs: 5000, stableAfterMs: 300 },
        });
        const events = record(conn);
        conn.start();
        // Three short-lived connections: the delay keeps growing (failures are not forgiven).
        for (let i = 1; i <= 3; i++) {
          await waitFor(() => events.of('open').length === i, `open ${i}`);
          for (const ws of server.wss.clients) ws.terminate();
          await waitFor(() => events.of('reconnecting').length === i, `reconnect ${i}`);
        }
        const growing = events.of('reconnecting').map((e) => e.args[0]);
        assert.ok(growing[2] >= 80, `third delay ${growing[2]} is at least 2x the initial`);
        await waitFor(() => events.of('open').length === 4, 'open 4');
        await sleep(350); // now stable
        for (const ws of server.wss.clients) ws.terminate();
        await waitFor(() => events.of('reconnecting').length === 4, 'reconnect 4');
        const [delay, attempt] = events.of('reconnecting')[3].args;
        assert.ok(delay <= 40, `delay after a stable connection (${delay}) is back to the initial delay`);
        assert.strictEqual(attempt, 2);
      } finally {
        await server.close();
      }
    });

    it('a 401 refusal is reported with its status and retried with backoff, not in a tight loop', async function () {
      let accept = false;
      const server = await startRecordingServer({ refuse: () => (accept ? 0 : 401) });
      try {
        const token = 'tok-refused-401';
        const conn = connection({
          url: `${server.url}/refuse`,
          token,
          backoff: { initialDelayMs: 50, maxDelayMs: 400, stableAfterMs: 60_000 },
        });
        const events = record(conn);
        conn.start();
        await sleep(1500);
        const attempts = server.upgrades.length;
        assert.ok(attempts >= 3 && attempts <= 12, `attempts in 1.5 s: ${attempts}`);
        assert.ok(events.of('refused').length === attempts && events.of('refused').every((e) => e.args[0] === 401));
        const delays = events.of('reconnecting').map((e) => e.args[0]);
        for (let i = 0; i < delays.length; i++) {
          const base = Math.min(400, 50 * 2 ** i);
          assert.ok(delays[i] >= base / 2 && delays[i] <= base, `delay ${i}: ${delays[i]} in [${base / 2}, ${base}]`);
        }
        assert.strictEqual(events.of('open').length, 0);
        // Once the server accepts, the next attempt connects.
        accept = true;
        await waitFor(() => events.of('open').length, 'open after refusals', 3000);
        assert.ok(!JSON.stringify(events.map((e) => e.args)).includes(token));
      } finally {
        await server.close();
      }
    });

    it('obeys Retry-After on 429, within the cap', async function () {
      const server = await startRecordingServer({ refuse: 429, retryAfter: 2 });
      try {
        const conn = connection({
          url: `${server.url}/busy`,
          authMode: 'none',
          backoff: { initialDelayMs: 20, maxDelayMs: 60_000 },
        });
        const events = record(conn);
        conn.start();
        await waitFor(() => events.of('reconnecting').length, 'scheduled retry');
        assert.deepStrictEqual(events.of('refused')[0].args, [429]);
        assert.strictEqual(events.of('reconnecting')[0].args[0], 2000);
        await conn.close();
        const capped = connection({
          url: `${server.url}/busy`,
          authMode: 'none',
          backoff: { initialDelayMs: 20, maxDelayMs: 500 },
        });
        const cappedEvents = record(capped);
        capped.start();
        await waitFor(() => cappedEvents.of('reconnecting').length, 'scheduled retry');
        assert.strictEqual(cappedEvents.of('reconnecting')[0].args[0], 500);
      } finally {
        await server.close();
      }
    });
  });

  describe('reconnect() and disconnect() on request', function () {
    it(
      'reconnect() closes the open socket (1000 "reconnecting") ' + 'and connects again at once, not after the backoff',
      async function () {
        const closes = [];
        const server = await startRecordingServer({
          onConnection: (ws) => ws.on('close', (code, reason) => closes.push({ code, reason: reason.toString() })),
        });
        try {
          // A backoff far longer than the test: only an immediate reconnect can make the second open.
          const conn = connection({
            url: `${server.url}/again`,
            authMode: 'none',
            backoff: { initialDelayMs: 60_000, maxDelayMs: 60_000 },
          });
          const events = record(conn);
          conn.start();
          await waitFor(() => conn.connected, 'first open');
          const firstId = conn.id;
          conn.reconnect();
          await waitFor(() => events.of('open').length === 2 && conn.connected, 'second open');
          assert.notStrictEqual(conn.id, firstId);
          assert.deepStrictEqual(closes, [{ code: 1000, reason: 'reconnecting' }]);
          assert.strictEqual(events.of('reconnecting').length, 0, 'no backoff delay was scheduled');
          assert.strictEqual(server.maxOpen, 1, 'never two sockets at once');
        } finally {
          await server.close();
        }
      },
    );

    it('reconnect() while waiting out a backoff delay connects at once', async function () {
      const server = await startRecordingServer();
      try {
        const conn = connection({
          url: `${server.url}/wait`,
          authMode: 'none',
          backoff: { initialDelayMs: 60_000, maxDelayMs: 60_000 },
        });
        const events = record(conn);
        conn.start();
        await waitFor(() => conn.connected, 'open');
        for (const ws of server.wss.clients) ws.terminate();
        await waitFor(() => events.of('reconnecting').length === 1, 'retry scheduled');
        conn.reconnect();
        await waitFor(() => events.of('open').length === 2 && conn.connected, 'open again');
      } finally {
        await server.close();
      }
    });

    it('disconnect() closes with the given code and reason and stays away until reconnect()', async function () {
      const closes = [];
      const server = await startRecordingServer({
        onConnection: (ws) => ws.on('close', (code, reason) => closes.push({ code, reason: reason.toString() })),
      });
      try {
        const conn = connection({
          url: `${server.url}/hold`,
          authMode: 'none',
          backoff: { initialDelayMs: 20, maxDelayMs: 40 },
        });
        const events = record(conn);
        conn.start();
        await waitFor(() => conn.connected, 'open');
        assert.strictEqual(conn.disconnect(4010, 'paused by flow'), true);
        await waitFor(() => events.of('close').length === 1, 'closed');
        assert.deepStrictEqual(closes, [{ code: 4010, reason: 'paused by flow' }]);
        // With a 20–40 ms backoff, 300 ms would see several attempts if it were retrying.
        await sleep(300);
        assert.strictEqual(server.connections, 1);
        assert.strictEqual(events.of('reconnecting').length, 0);
        assert.strictEqual(conn.disconnect(4010, 'again'), false, 'nothing open to close');
        conn.reconnect();
        await waitFor(() => conn.connected && server.connections === 2, 'reconnected');
        // Back to normal: a server-side cut is retried with the backoff again.
        for (const ws of server.wss.clients) ws.terminate();
        await waitFor(() => server.connections === 3 && conn.connected, 'retried after a cut');
      } finally {
        await server.close();
      }
    });

    it('leaves no timer behind after disconnect() and close()', async function () {
      const server = await startRecordingServer();
      const timers = trackTimers();
      try {
        const conn = new OutboundConnection({ url: `${server.url}/t`, authMode: 'none', backoff: FAST });
        conn.start();
        await waitFor(() => conn.connected, 'open');
        conn.disconnect(4003, 'bye');
        await waitFor(() => !conn.connected && server.open === 0, 'closed');
        conn.reconnect();
        await waitFor(() => conn.connected, 'open again');
        await conn.close();
        conn.reconnect();
        assert.strictEqual(conn.connected, false, 'a closed connection stays closed');
        assert.strictEqual(await timers.settled(), 0, timers.where().join('\n'));
      } finally {
        timers.stop();
        await server.close();
      }
    });
  });

  describe('close()', function () {
    it(
      'stops reconnecting and leaves no timer: while ' + 'open, while waiting to retry, while connecting',
      async function () {
        const server = await startRecordingServer();
        const hole = await startBlackHole();
        try {
          await sleep(20);
          const timers = trackTimers({ stacks: true });
          const timeouts = () => timers.settled();
          const baseline = 0;
          const closeCodes = [];
          server.wss.on('connection', (ws) => ws.on('close', (code) => closeCodes.push(code)));

          // 1. open, with a heartbeat running
          const open = new OutboundConnection({
            url: `${server.url}/c1`,
            authMode: 'none',
            heartbeatMs: 50,
            backoff: FAST,
          });
          const openEvents = record(open);
          open.start();
          await waitFor(() => open.connected, 'open');
          assert.ok((await timeouts()) > baseline, 'the heartbeat is a timer (so this check can see timers)');
          await open.close();
          assert.strictEqual(
            await timeouts(),
            baseline,
            `no timer left after closing an open connection: ${timers.where().join('\n')}`,
          );
          assert.strictEqual(open.connected, false);
          assert.strictEqual(open.send('late'), false);

          // 2. waiting to retry after the server went away
          const freePort = hole.port;
          await hole.close();
          const waiting = new OutboundConnection({
            url: `ws://127.0.0.1:${freePort}/c2`,
            authMode: 'none',
            backoff: { initialDelayMs: 200, maxDelayMs: 200 },
          });
          const waitingEvents = record(waiting);
          waiting.start();
          await waitFor(() => waitingEvents.of('reconnecting').length, 'retry scheduled');
          assert.ok((await timeouts()) > baseline, 'the retry is a timer');
          await waiting.close();
          assert.strictEqual(await timeouts(), baseline, 'no timer left after closing while waiting to retry');

          // 3. connecting to a server that never answers the upgrade
          const hole2 = await startBlackHole();
          const connecting = new OutboundConnection({
            url: `ws://127.0.0.1:${hole2.port}/c3`,
            authMode: 'none',
            backoff: FAST,
          });
          const connectingEvents = record(connecting);
          connecting.start();
          await waitFor(() => hole2.accepted(), 'TCP accepted');
          await connecting.close();
          assert.strictEqual(await timeouts(), baseline, 'no timer left after closing while connecting');
          await hole2.close();

          const connectionsAfterClose = server.connections;
          await sleep(400); // longer than any backoff configured above
          assert.strictEqual(server.connections, connectionsAfterClose, 'no reconnect after close()');
          assert.strictEqual(await timeouts(), baseline, 'no timer left behind');
          assert.deepStrictEqual(closeCodes, [1000]);
          assert.strictEqual(openEvents.of('connecting').length, 1);
          assert.strictEqual(waitingEvents.of('connecting').length, 1);
          assert.strictEqual(connectingEvents.of('connecting').length, 1);
          assert.strictEqual(connectingEvents.of('error').length, 0, 'closing is not an error');
          // close() again, and start() after close(), do nothing
          await open.close();
          open.start();
          await sleep(50);
          assert.strictEqual(server.connections, connectionsAfterClose);
          timers.stop();
        } finally {
          await server.close();
        }
      },
    );
  });

  describe('the token stays secret', function () {
    it('no event or error carries it: refused port, TLS failure, 401, handshake timeout', async function () {
      const token = 'tok.SECRET+value/with=chars';
      const cert = selfSignedCert();
      const tlsServer = await startRecordingServer({ tls: cert });
      const refuser = await startRecordingServer({ refuse: 401 });
      const hole = await startBlackHole();
      const free = await startBlackHole();
      const freePort = free.port;
      await free.close();
      const all = [];
      try {
        const urls = [
          `ws://127.0.0.1:${freePort}/nothing?x=1`,
          `${tlsServer.url}/untrusted`,
          `${refuser.url}/denied`,
          `ws://127.0.0.1:${hole.port}/hang`,
        ];
        for (const url of urls) {
          const conn = connection({ url, token, handshakeTimeoutMs: 150, backoff: FAST });
          all.push(record(conn));
          conn.start();
        }
        await waitFor(() => all.every((ev) => ev.of('reconnecting').length >= 2), 'two failed attempts each');
        const seen = all.flatMap((ev) =>
          ev.map((e) =>
            e.args
              .map((a) =>
                a instanceof Error ? `${a.name} ${a.message} ${a.stack} ${JSON.stringify(a)}` : JSON.stringify(a),
              )
              .join(' '),
          ),
        );
        const text = seen.join('\n');
        assert.ok(
          all[0].of('error').length &&
            all[1].of('error').length &&
            all[2].of('refused').length &&
            all[3].of('error').length,
        );
        for (const form of [token, encodeURIComponent(token), 'SECRET'])
          assert.ok(!text.includes(form), `leaked ${form}`);
      } finally {
        await Promise.all(live.splice(0).map((c) => c.close()));
        await Promise.all([tlsServer.close(), refuser.close(), hole.close()]);
      }
    });
  });
});
