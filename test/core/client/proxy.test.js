'use strict';
const assert = require('assert');
const http = require('http');
const https = require('https');
const WebSocket = require('ws');
const { built } = require('../../helpers/built');
const { proxyUrlFor, proxyAgentFor, bypassesProxy, redactUrl, createProxyFetch, settingsConfigureProxy } =
  built('core/client/proxy');
const { createTokenVerifier } = built('core/auth/token-verifier');
const { startConnectProxy, clearProxyEnv } = require('../../helpers/connect-proxy');
const { startFaultServer } = require('../../helpers/fault-server');
const { waitFor, settleWithin } = require('../../helpers/wait');
const { selfSignedCert } = require('../../helpers/self-signed-cert');
const { startRecordingServer } = require('../../helpers/recording-ws-server');
const { listenOnLoopback } = require('../../helpers/loopback');
const { makeKey, signWithKey } = require('../../helpers/tokens');

// Every variable proxy-from-env reads, and npm's (which it no longer reads): cleared around each test
// so the host's setup cannot leak in.
function useCleanProxyEnv() {
  let restoreEnv;
  beforeEach(function () {
    restoreEnv = clearProxyEnv();
  });
  afterEach(function () {
    restoreEnv();
  });
}

/** A small HTTP(S) server: /keys -> JSON, /redirect -> 302 to /keys, /hang never answers. */
async function startHttpServer(tls) {
  const hanging = new Set();
  const handler = (req, res) => {
    if (req.url === '/redirect') {
      res.writeHead(302, { location: '/keys' });
      res.end();
    } else if (req.url === '/hang') {
      hanging.add(res);
    } else if (req.url === '/echo' && req.method === 'POST') {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'text/plain', 'x-seen-header': String(req.headers['x-test'] || '') });
        res.end(`${req.method} ${body}`);
      });
    } else {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok: true, path: req.url }));
    }
  };
  const server = tls ? https.createServer(tls, handler) : http.createServer(handler);
  const { port, close } = await listenOnLoopback(server);
  return { port, origin: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`, close };
}

describe('core/proxy', function () {
  useCleanProxyEnv();

  describe('choosing the proxy', function () {
    it('connects directly when nothing is configured', function () {
      assert.strictEqual(proxyUrlFor('wss://example.com/ws'), undefined);
      assert.strictEqual(proxyUrlFor('ws://example.com/ws', {}), undefined);
      assert.strictEqual(proxyAgentFor('ws://example.com/ws'), undefined);
    });

    it('uses the https proxy for wss:// and the http proxy for ws:// (environment)', function () {
      process.env.https_proxy = 'http://secure-proxy:3128';
      process.env.http_proxy = 'http://plain-proxy:3128';
      assert.strictEqual(proxyUrlFor('wss://example.com/ws'), 'http://secure-proxy:3128/');
      assert.strictEqual(proxyUrlFor('https://example.com/jwks'), 'http://secure-proxy:3128/');
      assert.strictEqual(proxyUrlFor('ws://example.com/ws'), 'http://plain-proxy:3128/');
      assert.strictEqual(proxyUrlFor('http://example.com/jwks'), 'http://plain-proxy:3128/');
      assert.ok(proxyAgentFor('wss://example.com/ws') instanceof http.Agent);
    });

    it('reads the lower-case variable first, then the upper-case one', function () {
      process.env.HTTPS_PROXY = 'http://upper:1';
      assert.strictEqual(proxyUrlFor('wss://example.com'), 'http://upper:1/');
      process.env.https_proxy = 'http://lower:2';
      assert.strictEqual(proxyUrlFor('wss://example.com'), 'http://lower:2/');
      process.env.HTTP_PROXY = 'http://upper-plain:3';
      assert.strictEqual(proxyUrlFor('ws://example.com'), 'http://upper-plain:3/');
    });

    it('speaks plain HTTP to a proxy written without a scheme, from either source', function () {
      process.env.HTTPS_PROXY = 'proxy.corp:3128';
      assert.strictEqual(proxyUrlFor('wss://example.com'), 'http://proxy.corp:3128/');
      assert.strictEqual(
        proxyUrlFor('wss://example.com', { https_proxy: 'other.corp:8080' }),
        'http://other.corp:8080/',
      );
      process.env.HTTPS_PROXY = 'https://tls-proxy.corp:3129';
      assert.strictEqual(proxyUrlFor('wss://example.com'), 'https://tls-proxy.corp:3129/');
    });

    it("falls back to ALL_PROXY, and never reads npm's own proxy settings (npm_config_*)", function () {
      // npm exports its configuration to the scripts it runs (`npm start`): those are npm's proxies.
      process.env.npm_config_https_proxy = 'http://npm-secure:1';
      process.env.npm_config_http_proxy = 'http://npm-plain:1';
      process.env.npm_config_proxy = 'http://npm-any:1';
      assert.strictEqual(proxyUrlFor('wss://example.com'), undefined);
      assert.strictEqual(proxyUrlFor('ws://example.com'), undefined);
      process.env.ALL_PROXY = 'proxy.corp:3128';
      assert.strictEqual(proxyUrlFor('wss://example.com'), 'http://proxy.corp:3128/');
      assert.strictEqual(proxyUrlFor('ws://example.com'), 'http://proxy.corp:3128/');
      process.env.npm_config_no_proxy = 'example.com';
      assert.strictEqual(proxyUrlFor('wss://example.com'), 'http://proxy.corp:3128/');
      process.env.NO_PROXY = 'example.com';
      assert.strictEqual(proxyUrlFor('wss://example.com'), undefined);
    });

    it('settings beat the environment, and are used alone when they name any proxy key', function () {
      process.env.HTTPS_PROXY = 'http://env-proxy:1';
      process.env.HTTP_PROXY = 'http://env-proxy:1';
      const settings = { https_proxy: 'http://settings-proxy:2' };
      assert.strictEqual(proxyUrlFor('wss://example.com', settings), 'http://settings-proxy:2/');
      // The settings name no http proxy: ws:// goes direct rather than half-using the environment.
      assert.strictEqual(proxyUrlFor('ws://example.com', settings), undefined);
      // Settings with no proxy key at all leave the environment in charge.
      assert.strictEqual(settingsConfigureProxy({ mode: 'legacy' }), false);
      assert.strictEqual(proxyUrlFor('wss://example.com', { mode: 'legacy' }), 'http://env-proxy:1/');
      assert.strictEqual(proxyUrlFor('wss://example.com', null), 'http://env-proxy:1/');
    });

    it(
      'NO_PROXY entries bypass: host, .domain, *.domain, host:port ' +
        'and * (same answer from settings and environment)',
      function () {
        const cases = [
          // [no_proxy, url, bypassed]
          ['example.com', 'wss://example.com/ws', true],
          ['example.com', 'wss://sub.example.com/ws', false],
          ['.example.com', 'wss://sub.example.com/ws', true],
          ['.example.com', 'wss://deep.sub.example.com/ws', true],
          ['.example.com', 'wss://notexample.com/ws', false],
          ['*.example.com', 'ws://sub.example.com/ws', true],
          ['example.com:8443', 'wss://example.com:8443/ws', true],
          ['example.com:8443', 'wss://example.com/ws', false],
          ['example.com:443', 'wss://example.com/ws', true],
          ['example.com:80', 'ws://example.com/ws', true],
          ['*', 'wss://anything.example.org/ws', true],
          ['other.org, example.com', 'wss://example.com/ws', true],
          ['other.org example.com', 'ws://EXAMPLE.com/ws', true],
          ['other.org,*', 'wss://example.com/ws', true],
          ['127.0.0.1', 'ws://127.0.0.1:9000/ws', true],
          ['127.0.0.1', 'ws://127.0.0.2:9000/ws', false],
          ['', 'wss://example.com/ws', false],
        ];
        for (const [noProxy, url, bypassed] of cases) {
          const settings = { https_proxy: 'http://p:1', http_proxy: 'http://p:1', no_proxy: noProxy };
          assert.strictEqual(proxyUrlFor(url, settings) === undefined, bypassed, `settings no_proxy=${noProxy} ${url}`);
          assert.strictEqual(bypassesProxy(new URL(url), noProxy), bypassed, `bypassesProxy ${noProxy} ${url}`);
          process.env.https_proxy = 'http://p:1';
          process.env.http_proxy = 'http://p:1';
          process.env.NO_PROXY = noProxy;
          assert.strictEqual(proxyUrlFor(url) === undefined, bypassed, `env NO_PROXY=${noProxy} ${url}`);
          delete process.env.NO_PROXY;
          process.env.no_proxy = noProxy;
          assert.strictEqual(proxyUrlFor(url) === undefined, bypassed, `env no_proxy=${noProxy} ${url}`);
          delete process.env.no_proxy;
        }
        assert.strictEqual(
          proxyUrlFor('wss://a.example.com', { https_proxy: 'http://p:1', no_proxy: ['x.org', '.example.com'] }),
          undefined,
        );
      },
    );

    it('refuses a proxy it cannot speak to, without quoting its credentials', function () {
      assert.throws(
        () => proxyUrlFor('wss://example.com', { https_proxy: 'socks5://user:s3cret@p:1080' }),
        (err) => err.code === 'OPTION_INVALID' && !err.message.includes('s3cret'),
      );
      assert.throws(
        () => proxyUrlFor('wss://example.com', { https_proxy: 'http://user:s3cret@[bad' }),
        (err) => err.code === 'OPTION_INVALID' && !err.message.includes('s3cret'),
      );
      assert.throws(
        () => proxyUrlFor('ftp://example.com'),
        (err) => err.code === 'URL_INVALID',
      );
    });

    it('redactUrl drops credentials and the query', function () {
      assert.strictEqual(redactUrl('http://user:pw@proxy:3128/'), 'http://proxy:3128/');
      assert.strictEqual(redactUrl('wss://host/ws?token=abc&x=1'), 'wss://host/ws');
      assert.strictEqual(redactUrl('not a url'), '(invalid URL)');
    });
  });

  describe('WebSocket through a real CONNECT proxy', function () {
    let proxy;
    let authProxy;
    let server;
    let tlsServer;
    let cert;
    before(async function () {
      cert = selfSignedCert();
      proxy = await startConnectProxy();
      authProxy = await startConnectProxy({ auth: 'alice:p@ss:word' });
      server = await startRecordingServer();
      tlsServer = await startRecordingServer({ tls: cert });
    });
    after(async function () {
      await Promise.all([proxy.close(), authProxy.close(), server.close(), tlsServer.close()]);
    });

    function open(url, agent, extra = {}) {
      return new Promise((resolve, reject) => {
        const ws = new WebSocket(url, { agent, handshakeTimeout: 5000, ...extra });
        ws.once('open', () => resolve({ ws }));
        ws.once('unexpected-response', (req, res) => {
          res.resume();
          resolve({ status: res.statusCode });
          ws.terminate();
        });
        ws.once('error', (err) => {
          if (ws.readyState !== WebSocket.OPEN) reject(err);
        });
      });
    }

    it('tunnels ws:// and wss:// through the proxy the agent names', async function () {
      const settings = { http_proxy: proxy.url, https_proxy: proxy.url };
      const before = proxy.connects.length;
      const plain = await open(`${server.url}/plain`, proxyAgentFor(server.url, settings));
      const secure = await open(`${tlsServer.url}/secure`, proxyAgentFor(tlsServer.url, settings), { ca: cert.cert });
      assert.ok(plain.ws && secure.ws, 'both sockets open');
      plain.ws.close();
      secure.ws.close();
      assert.deepStrictEqual(
        proxy.connects.slice(before).map((c) => c.target),
        [`127.0.0.1:${server.port}`, `127.0.0.1:${tlsServer.port}`],
      );
      assert.strictEqual(server.upgrades.at(-1).url, '/plain');
      assert.strictEqual(tlsServer.upgrades.at(-1).url, '/secure');
    });

    it('the TLS handshake inside the tunnel still checks the certificate', async function () {
      const agent = proxyAgentFor(tlsServer.url, { https_proxy: proxy.url });
      await assert.rejects(open(`${tlsServer.url}/untrusted`, agent), /self[- ]signed/i);
    });

    it(
      'sends the credentials of the proxy URL as ' + 'Proxy-Authorization; without them the proxy says 407',
      async function () {
        const refusedBefore = authProxy.refused;
        const denied = await open(`${server.url}/x`, proxyAgentFor(server.url, { http_proxy: authProxy.url }));
        assert.strictEqual(denied.status, 407);
        assert.strictEqual(authProxy.refused, refusedBefore + 1);
        const allowed = await open(`${server.url}/y`, proxyAgentFor(server.url, { http_proxy: authProxy.authUrl }));
        assert.ok(allowed.ws);
        allowed.ws.close();
        assert.strictEqual(
          authProxy.connects.at(-1).headers['proxy-authorization'],
          `Basic ${Buffer.from('alice:p@ss:word').toString('base64')}`,
        );
      },
    );

    it('environment variables are read at each call', async function () {
      process.env.http_proxy = proxy.url;
      const before = proxy.connects.length;
      const first = await open(`${server.url}/env`, proxyAgentFor(server.url));
      first.ws.close();
      assert.strictEqual(proxy.connects.length, before + 1);
      process.env.no_proxy = '127.0.0.1';
      assert.strictEqual(proxyAgentFor(server.url), undefined);
      const direct = await open(`${server.url}/env-direct`, undefined);
      direct.ws.close();
      assert.strictEqual(proxy.connects.length, before + 1, 'NO_PROXY bypassed the proxy');
    });
  });

  describe('createProxyFetch', function () {
    let proxy;
    let authProxy;
    let plain;
    let secure;
    let cert;
    before(async function () {
      cert = selfSignedCert();
      proxy = await startConnectProxy();
      authProxy = await startConnectProxy({ auth: 'bob:secret' });
      plain = await startHttpServer();
      secure = await startHttpServer({ key: cert.key, cert: cert.cert });
    });
    after(async function () {
      await Promise.all([proxy.close(), authProxy.close(), plain.close(), secure.close()]);
    });

    it('sends http:// as an absolute-URI request to the proxy', async function () {
      const f = createProxyFetch({ http_proxy: proxy.url });
      const before = proxy.requests.length;
      const res = await f(`${plain.origin}/keys?a=1`);
      assert.strictEqual(res.status, 200);
      assert.deepStrictEqual(await res.json(), { ok: true, path: '/keys?a=1' });
      assert.strictEqual(res.url, `${plain.origin}/keys?a=1`);
      assert.strictEqual(proxy.requests.length, before + 1);
      assert.strictEqual(proxy.requests.at(-1).url, `${plain.origin}/keys?a=1`);
    });

    it('passes method, headers and body, and authenticates to the proxy', async function () {
      const denied = await createProxyFetch({ http_proxy: authProxy.url })(`${plain.origin}/echo`, {
        method: 'POST',
        body: 'hi',
      });
      assert.strictEqual(denied.status, 407);
      const f = createProxyFetch({ http_proxy: authProxy.authUrl });
      const res = await f(new URL(`${plain.origin}/echo`), {
        method: 'POST',
        body: 'hello',
        headers: { 'x-test': 'yes' },
      });
      assert.strictEqual(await res.text(), 'POST hello');
      assert.strictEqual(res.headers.get('x-seen-header'), 'yes');
      assert.strictEqual(
        authProxy.requests.at(-1).headers['proxy-authorization'],
        `Basic ${Buffer.from('bob:secret').toString('base64')}`,
      );
    });

    it('tunnels https:// with CONNECT and checks the certificate inside the tunnel', async function () {
      const before = proxy.connects.length;
      const trusted = createProxyFetch({ https_proxy: proxy.url }, { tls: { ca: cert.cert } });
      const res = await trusted(`${secure.origin}/keys`);
      assert.deepStrictEqual(await res.json(), { ok: true, path: '/keys' });
      assert.strictEqual(proxy.connects.at(-1).target, `127.0.0.1:${secure.port}`);
      const untrusted = createProxyFetch({ https_proxy: proxy.url });
      await assert.rejects(
        untrusted(`${secure.origin}/keys`),
        (err) => err instanceof TypeError && /self[- ]signed/i.test(String(err.cause && err.cause.message)),
      );
      assert.strictEqual(proxy.connects.length, before + 2);
    });

    it("redirect: 'error' refuses a 3xx; the default follows it through the proxy", async function () {
      const f = createProxyFetch({ http_proxy: proxy.url });
      await assert.rejects(f(`${plain.origin}/redirect`, { redirect: 'error' }), TypeError);
      const manual = await f(`${plain.origin}/redirect`, { redirect: 'manual' });
      assert.strictEqual(manual.status, 302);
      const before = proxy.requests.length;
      const followed = await f(`${plain.origin}/redirect`);
      assert.deepStrictEqual(await followed.json(), { ok: true, path: '/keys' });
      assert.deepStrictEqual(
        proxy.requests.slice(before).map((r) => new URL(r.url).pathname),
        ['/redirect', '/keys'],
      );
    });

    it('honours AbortSignal before and during the request', async function () {
      const f = createProxyFetch({ http_proxy: proxy.url });
      const aborted = AbortSignal.abort();
      await assert.rejects(f(`${plain.origin}/keys`, { signal: aborted }), (err) => err.name === 'AbortError');
      const controller = new AbortController();
      const pending = f(`${plain.origin}/hang`, { signal: controller.signal });
      setTimeout(() => controller.abort(), 50);
      await assert.rejects(pending, (err) => err.name === 'AbortError');
      await assert.rejects(
        f(`${plain.origin}/hang`, { signal: AbortSignal.timeout(50) }),
        (err) => err.name === 'TimeoutError',
      );
    });

    for (const mode of ['silent', 'connect-200-silent']) {
      it(
        `an abort settles an https:// fetch at once and closes the tunnel (proxy ` +
          `${mode === 'silent' ? 'never answers CONNECT' : 'answers 200, then nothing'})`,
        async function () {
          const fault = await startFaultServer({ mode });
          try {
            const f = createProxyFetch({ https_proxy: `http://127.0.0.1:${fault.port}` }, { tls: { ca: cert.cert } });
            for (let i = 0; i < 3; i++) {
              const outcome = await settleWithin(
                f(`${secure.origin}/keys`, { signal: AbortSignal.timeout(100) }),
                5000,
              );
              assert.strictEqual(outcome, 'TimeoutError');
            }
            assert.strictEqual(fault.accepted, 3);
            await waitFor(() => fault.open === 0, 3000, 'no socket left open at the proxy');
          } finally {
            await fault.close();
          }
        },
      );
    }

    it(
      'an abort settles the fetch and closes the socket ' + 'to an https:// proxy that never completes TLS',
      async function () {
        const fault = await startFaultServer({ mode: 'silent' });
        try {
          const f = createProxyFetch({ https_proxy: `https://127.0.0.1:${fault.port}` }, { tls: { ca: cert.cert } });
          const outcome = await settleWithin(f(`${secure.origin}/keys`, { signal: AbortSignal.timeout(100) }), 5000);
          assert.strictEqual(outcome, 'TimeoutError');
          await waitFor(() => fault.open === 0, 3000, 'no socket left open at the proxy');
        } finally {
          await fault.close();
        }
      },
    );

    it('an abort closes the socket of a direct request at once', async function () {
      const fault = await startFaultServer({ mode: 'silent' });
      try {
        const f = createProxyFetch(null);
        await assert.rejects(
          f(`http://127.0.0.1:${fault.port}/keys`, { signal: AbortSignal.timeout(100) }),
          (err) => err.name === 'TimeoutError',
        );
        // The global fetch would keep this socket for seconds; this fetch ends it with the request.
        await waitFor(() => fault.open === 0, 1000, 'no socket left open at the server');
      } finally {
        await fault.close();
      }
    });

    it('NO_PROXY sends the request directly', async function () {
      const before = proxy.requests.length + proxy.connects.length;
      const f = createProxyFetch({ http_proxy: proxy.url, no_proxy: '127.0.0.1' });
      const res = await f(`${plain.origin}/keys`);
      assert.strictEqual(res.status, 200);
      assert.strictEqual(proxy.requests.length + proxy.connects.length, before);
    });

    it('the listener JWKS verifier fetches its keys through the proxy', async function () {
      const key = await makeKey('ES256', 'k1');
      const jwks = http.createServer((req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ keys: [key.publicJwk] }));
      });
      await new Promise((resolve) => jwks.listen(0, '127.0.0.1', resolve));
      try {
        const jwksUri = `http://127.0.0.1:${jwks.address().port}/jwks.json`;
        const before = proxy.requests.length;
        const verifier = createTokenVerifier({
          mode: 'jwks',
          jwksUri,
          fetch: createProxyFetch({ http_proxy: proxy.url }),
        });
        const result = await verifier.verify(await signWithKey(key, { sub: 'u1' }));
        assert.strictEqual(result.subject, 'u1');
        assert.strictEqual(proxy.requests.length, before + 1);
        assert.strictEqual(proxy.requests.at(-1).url, jwksUri);
        // The proxy refusing (407) must fail closed.
        const denied = createTokenVerifier({
          mode: 'jwks',
          jwksUri,
          fetch: createProxyFetch({ http_proxy: authProxy.url }),
        });
        await assert.rejects(denied.verify(await signWithKey(key, { sub: 'u1' })), (err) => err.status === 401);
      } finally {
        jwks.closeAllConnections();
        await new Promise((resolve) => jwks.close(resolve));
      }
    });
  });
});
