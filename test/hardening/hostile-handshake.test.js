'use strict';
// Hostile handshakes: every case is a real WebSocket handshake over 127.0.0.1 against a real core
// WebSocketListener on a real HTTP server. Each refusal asserts the HTTP status, the refusal
// category the listener recorded, that no session opened and that the server freed the socket.
const assert = require('assert');
const { signHS256, makeKey, signWithKey, rawToken, now } = require('../helpers/tokens');
const { startJwksServer } = require('../helpers/jwks-server');
const { connect, waitForClose } = require('../helpers/ws-client');
const {
  startHttpServer,
  startListener,
  rawHandshake,
  startWatchedServer,
  signRaw,
  signRawHS256,
  waitFor,
  b64url,
} = require('../helpers/hardening');

const ISS = 'https://issuer.example';
const AUD = 'ws-plus-api';
const SECRET = 'hardening-secret-0123456789abcdef-0123456789';
const ALLOWED_ORIGIN = 'https://app.example';

describe('hardening: hostile handshakes', function () {
  this.timeout(20000);
  let srv;
  let rsa;
  let ec;
  let attacker;
  let jwks;
  let watch;
  const L = {};
  const servers = [];

  const claims = (extra = {}) => ({ iss: ISS, aud: AUD, sub: 'user-1', tenant_id: 'acme', ...extra });
  const good = (extra, opts) => signWithKey(rsa, claims(extra), opts);
  /** Correctly RS256-signed (by `key`) token with any header and payload. */
  const rawSigned = (header, payload, key = rsa) =>
    signRaw(key, { alg: 'RS256', typ: 'JWT', kid: key.kid, ...header }, payload);
  const exp = () => now() + 300;

  before(async function () {
    rsa = await makeKey('RS256', 'rsa-1');
    ec = await makeKey('ES256', 'ec-1');
    // The attacker's own key, published under the victim's kid on the attacker's server.
    attacker = await makeKey('RS256', 'rsa-1');
    jwks = await startJwksServer([rsa, ec]);
    watch = await startWatchedServer(() => JSON.stringify({ keys: [attacker.publicJwk] }));
    srv = await startHttpServer();

    L.jwks = startListener(srv, '/ws/jwks', {
      verifier: {
        mode: 'jwks',
        jwksUri: jwks.url,
        issuer: ISS,
        audience: AUD,
        clockToleranceSeconds: 5,
        jwksTimeoutMs: 2000,
        jwksCooldownMs: 60_000,
      },
      origins: [ALLOWED_ORIGIN, 'https://other.example:8443'],
      handshakeTimeoutMs: 4000,
    });
    L.pk = startListener(srv, '/ws/pk', { verifier: { mode: 'publickey', publicKey: rsa.publicPem, issuer: ISS } });
    L.hs = startListener(srv, '/ws/hs', { verifier: { mode: 'hs256', secret: SECRET, audience: AUD } });
    L.none = startListener(srv, '/ws/none', { verifier: { mode: 'none' } });
    L.customHang = startListener(srv, '/ws/custom-hang', {
      verifier: { mode: 'custom', verifyToken: () => new Promise(() => {}) },
      handshakeTimeoutMs: 300,
    });
    L.custom = startListener(srv, '/ws/custom', {
      // The site's function returns whatever the token names (JSON): hostile tenants come through it.
      verifier: {
        mode: 'custom',
        verifyToken: async (token) => JSON.parse(Buffer.from(token, 'base64url').toString()),
      },
    });
    // A first good handshake primes the key cache: from here on the JWKS must not be fetched again.
    const { ws } = await connect(L.jwks.url(`token=${await good()}`));
    ws.terminate();
    await waitFor(() => L.jwks.listener.connectionCount === 0);
    assert.strictEqual(jwks.fetches, 1);
  });

  after(async function () {
    for (const rec of Object.values(L)) await rec.listener.close();
    for (const s of servers) await s.close();
    await srv.close();
    await jwks.close();
    await watch.close();
  });

  /** One refused handshake: status, category, no session, socket freed. */
  async function refused(rec, query, status, code, headers) {
    const opensBefore = rec.opens.length;
    const refusalsBefore = rec.refusals.length;
    const result = await connect(rec.url(query), { ws: { headers } });
    try {
      assert.strictEqual(result.opened, false, 'a socket opened');
      assert.strictEqual(result.status, status);
      assert.strictEqual(rec.opens.length, opensBefore, 'the listener opened a session');
      assert.strictEqual(rec.listener.connectionCount, 0);
      if (code) assert.strictEqual(rec.refusals[refusalsBefore]?.code, code);
      await waitFor(() => srv.sockets.size === 0, 3000, 'the server to free the socket');
    } finally {
      result.ws.terminate();
    }
    return result;
  }

  /** A handshake that must succeed (positive control); returns the open client. */
  async function accepted(rec, query, headers) {
    const result = await connect(rec.url(query), { ws: { headers } });
    assert.strictEqual(result.opened, true, `refused with ${result.status}: ${rec.refusals.at(-1)?.code}`);
    return result.ws;
  }

  async function acceptedAndClose(rec, query, headers) {
    const ws = await accepted(rec, query, headers);
    ws.terminate();
    await waitFor(() => rec.listener.connectionCount === 0);
  }

  const jwksFetchesUnchanged = () => assert.strictEqual(jwks.fetches, 1, 'the JWKS was fetched again');

  describe('alg "none" in every casing is refused in every verifying mode', function () {
    for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
      const unsigned = () => rawToken({ alg, typ: 'JWT' }, claims({ exp: exp() }));
      it(`jwks: alg ${alg}`, async function () {
        await refused(L.jwks, `token=${unsigned()}`, 401, 'ALG_NOT_ALLOWED');
        jwksFetchesUnchanged();
      });
      it(`publickey: alg ${alg}`, async function () {
        await refused(L.pk, `token=${unsigned()}`, 401, 'ALG_NOT_ALLOWED');
      });
      it(`hs256: alg ${alg} (with and without a trailing signature)`, async function () {
        await refused(L.hs, `token=${unsigned()}`, 401, 'ALG_NOT_ALLOWED');
        await refused(L.hs, `token=${unsigned()}${b64url('sig')}`, 401, 'ALG_NOT_ALLOWED');
      });
    }
  });

  describe('algorithm confusion', function () {
    it('jwks: HS256 signed with the RSA public key PEM as the secret', async function () {
      const forged = await signRawHS256(
        rsa.publicPem,
        { alg: 'HS256', typ: 'JWT', kid: 'rsa-1' },
        claims({ exp: exp() }),
      );
      await refused(L.jwks, `token=${forged}`, 401, 'ALG_NOT_ALLOWED');
      jwksFetchesUnchanged();
    });
    it('jwks: HS256 signed with the JWK JSON of the public key as the secret', async function () {
      const forged = await signRawHS256(
        JSON.stringify(rsa.publicJwk),
        { alg: 'HS256', kid: 'rsa-1' },
        claims({ exp: exp() }),
      );
      await refused(L.jwks, `token=${forged}`, 401, 'ALG_NOT_ALLOWED');
    });
    it('publickey: HS256 signed with the configured PEM as the secret', async function () {
      const forged = await signHS256(rsa.publicPem, claims());
      await refused(L.pk, `token=${forged}`, 401, 'ALG_NOT_ALLOWED');
      // and without the trailing newline a copy-paste might lose
      const trimmed = await signHS256(rsa.publicPem.trim(), claims());
      await refused(L.pk, `token=${trimmed}`, 401, 'ALG_NOT_ALLOWED');
    });
    it('publickey: a valid ES256 token from another key, and PS256 from the attacker', async function () {
      await refused(L.pk, `token=${await signWithKey(ec, claims())}`, 401, 'ALG_NOT_ALLOWED');
      const pss = await makeKey('PS256', undefined);
      const ps = await signRaw(pss, { alg: 'PS256', typ: 'JWT' }, claims({ exp: exp() }));
      await refused(L.pk, `token=${ps}`, 401, 'BAD_SIGNATURE');
    });
    it('hs256: HS384 / HS512 / RS256 are not HS256', async function () {
      const jose = require('jose');
      for (const alg of ['HS384', 'HS512']) {
        const t = await new jose.SignJWT(claims())
          .setProtectedHeader({ alg })
          .setExpirationTime('5m')
          .sign(new TextEncoder().encode(SECRET));
        await refused(L.hs, `token=${t}`, 401, 'ALG_NOT_ALLOWED');
      }
      await refused(L.hs, `token=${await good()}`, 401, 'ALG_NOT_ALLOWED');
    });
    it('jwks: PS256 (not in the jwks list) even with a real kid', async function () {
      const pss = await makeKey('PS256', 'rsa-1');
      const ps = await signRaw(pss, { alg: 'PS256', kid: 'rsa-1' }, claims({ exp: exp() }));
      await refused(L.jwks, `token=${ps}`, 401, 'ALG_NOT_ALLOWED');
      jwksFetchesUnchanged();
    });
  });

  describe('kid abuse never causes a refetch storm', function () {
    const kids = {
      'path traversal': '../../../../etc/passwd',
      'url-encoded traversal': '..%2F..%2F..%2Fetc%2Fshadow',
      'SQL injection': "' OR '1'='1' --",
      'command injection': '$(curl http://127.0.0.1:1/)',
      'huge (4000 chars)': 'k'.repeat(4000),
      number: 1,
      object: { $ne: null },
      array: ['rsa-1'],
      null: null,
      'empty string': '',
    };
    for (const [name, kid] of Object.entries(kids)) {
      it(`kid ${name}`, async function () {
        // Correctly signed by the real key: only the kid is hostile.
        const t = await rawSigned({ kid }, claims({ exp: exp() }));
        await refused(L.jwks, `token=${t}`, 401, 'KEY_NOT_FOUND');
        jwksFetchesUnchanged();
      });
    }
    it('a burst of 50 random kids in parallel causes no fetch', async function () {
      const tokens = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          rawSigned({ kid: `random-${i}-${Math.random()}` }, claims({ exp: exp() })),
        ),
      );
      const results = await Promise.all(tokens.map((t) => connect(L.jwks.url(`token=${t}`))));
      for (const r of results) {
        assert.strictEqual(r.status, 401);
        r.ws.terminate();
      }
      assert.strictEqual(L.jwks.listener.connectionCount, 0);
      jwksFetchesUnchanged();
    });
  });

  describe('key-location headers are never followed', function () {
    // The attacker signs with their own key and points at their key set on the watched server.
    it('jku', async function () {
      const t = await signRaw(
        attacker,
        { alg: 'RS256', kid: 'rsa-1', jku: `${watch.url}/jwks.json` },
        claims({ exp: exp() }),
      );
      await refused(L.jwks, `token=${t}`, 401, 'BAD_SIGNATURE');
      await refused(L.pk, `token=${t}`, 401, 'BAD_SIGNATURE');
      assert.deepStrictEqual(watch.requests, []);
      jwksFetchesUnchanged();
    });
    it('x5u', async function () {
      const t = await signRaw(
        attacker,
        { alg: 'RS256', kid: 'rsa-1', x5u: `${watch.url}/cert.pem` },
        claims({ exp: exp() }),
      );
      await refused(L.jwks, `token=${t}`, 401, 'BAD_SIGNATURE');
      assert.deepStrictEqual(watch.requests, []);
    });
    it('jku with an unknown kid (would need a key from elsewhere)', async function () {
      const t = await signRaw(
        attacker,
        { alg: 'RS256', kid: 'attacker-kid', jku: `${watch.url}/jwks.json` },
        claims({ exp: exp() }),
      );
      await refused(L.jwks, `token=${t}`, 401, 'KEY_NOT_FOUND');
      assert.deepStrictEqual(watch.requests, []);
      jwksFetchesUnchanged();
    });
    it('embedded jwk (the attacker key inside the token)', async function () {
      const t = await signRaw(
        attacker,
        { alg: 'RS256', kid: 'rsa-1', jwk: attacker.publicJwk },
        claims({ exp: exp() }),
      );
      await refused(L.jwks, `token=${t}`, 401, 'BAD_SIGNATURE');
      await refused(L.pk, `token=${t}`, 401, 'BAD_SIGNATURE');
    });
    it('x5c with a garbage chain', async function () {
      const t = await signRaw(
        attacker,
        { alg: 'RS256', kid: 'rsa-1', x5c: [Buffer.from('not a cert').toString('base64')] },
        claims({ exp: exp() }),
      );
      await refused(L.jwks, `token=${t}`, 401, 'BAD_SIGNATURE');
      assert.deepStrictEqual(watch.requests, []);
    });
  });

  describe('crit (RFC 7515 §4.1.11)', function () {
    it('an unknown critical extension is refused although the signature is valid', async function () {
      const t = await rawSigned(
        { crit: ['urn:example:must-understand'], 'urn:example:must-understand': true },
        claims({ exp: exp() }),
      );
      await refused(L.jwks, `token=${t}`, 401, 'TOKEN_UNSUPPORTED');
      await refused(L.pk, `token=${t}`, 401, 'TOKEN_UNSUPPORTED');
    });
    it('crit naming a registered claim-like header ("exp") is refused', async function () {
      const t = await rawSigned({ crit: ['exp'], exp: exp() }, claims({ exp: exp() }));
      await refused(L.jwks, `token=${t}`, 401, 'TOKEN_UNSUPPORTED');
    });
    it('crit empty, not an array, or naming a missing header is refused', async function () {
      await refused(L.jwks, `token=${await rawSigned({ crit: [] }, claims({ exp: exp() }))}`, 401, 'TOKEN_MALFORMED');
      await refused(
        L.jwks,
        `token=${await rawSigned({ crit: 'b64' }, claims({ exp: exp() }))}`,
        401,
        'TOKEN_MALFORMED',
      );
      await refused(
        L.jwks,
        `token=${await rawSigned({ crit: ['b64'] }, claims({ exp: exp() }))}`,
        401,
        'TOKEN_MALFORMED',
      );
    });
    it('b64:false (unencoded payload) is refused for a JWT', async function () {
      const t = await rawSigned({ crit: ['b64'], b64: false }, claims({ exp: exp() }));
      await refused(L.jwks, `token=${t}`, 401);
    });
  });

  describe('times around the clock tolerance (5 s)', function () {
    it('exp just outside the tolerance is refused', async function () {
      await refused(L.jwks, `token=${await good({}, { exp: now() - 6 })}`, 401, 'TOKEN_EXPIRED');
    });
    it('exp just inside the tolerance is accepted (then closed at exp with 4001)', async function () {
      const ws = await accepted(L.jwks, `token=${await good({}, { exp: now() - 3 })}`);
      assert.strictEqual((await waitForClose(ws)).code, 4001);
    });
    it('nbf just outside the tolerance is refused', async function () {
      await refused(L.jwks, `token=${await good({ nbf: now() + 7 })}`, 401, 'TOKEN_NOT_YET_VALID');
    });
    it('nbf just inside the tolerance is accepted', async function () {
      await acceptedAndClose(L.jwks, `token=${await good({ nbf: now() + 4 })}`);
    });
    it('iat in the future beyond the tolerance is refused', async function () {
      await refused(L.jwks, `token=${await good({ iat: now() + 7 })}`, 401, 'TOKEN_ISSUED_IN_FUTURE');
      await refused(
        L.hs,
        `token=${await signHS256(SECRET, claims({ iat: now() + 3600 }))}`,
        401,
        'TOKEN_ISSUED_IN_FUTURE',
      );
    });
    it('iat in the future within the tolerance is accepted', async function () {
      await acceptedAndClose(L.jwks, `token=${await good({ iat: now() + 4 })}`);
    });
    it('non-numeric exp / nbf / iat are refused', async function () {
      await refused(L.jwks, `token=${await rawSigned({}, claims({ exp: String(exp()) }))}`, 401);
      await refused(L.jwks, `token=${await rawSigned({}, claims({ exp: exp(), nbf: 'yesterday' }))}`, 401);
      await refused(L.jwks, `token=${await rawSigned({}, claims({ exp: exp(), iat: [1] }))}`, 401);
    });
  });

  describe('issuer and audience', function () {
    it('wrong iss', async function () {
      await refused(L.jwks, `token=${await good({ iss: 'https://evil.example' })}`, 401, 'CLAIM_INVALID');
    });
    it('iss differing only by a trailing slash / case', async function () {
      await refused(L.jwks, `token=${await good({ iss: `${ISS}/` })}`, 401, 'CLAIM_INVALID');
      await refused(L.jwks, `token=${await good({ iss: ISS.toUpperCase() })}`, 401, 'CLAIM_INVALID');
    });
    it('missing iss (publickey mode with an issuer set)', async function () {
      const { iss, ...rest } = claims();
      void iss;
      await refused(L.pk, `token=${await signWithKey(rsa, rest)}`, 401, 'CLAIM_INVALID');
    });
    it('aud mismatch (string)', async function () {
      await refused(L.jwks, `token=${await good({ aud: 'another-api' })}`, 401, 'CLAIM_INVALID');
    });
    it('aud mismatch (array without ours)', async function () {
      await refused(L.jwks, `token=${await good({ aud: ['another-api', `${AUD}-x`] })}`, 401, 'CLAIM_INVALID');
    });
    it('aud missing (hs256 with an audience set)', async function () {
      await refused(L.hs, `token=${await signHS256(SECRET, { tenant_id: 'acme' })}`, 401, 'CLAIM_INVALID');
    });
    it('aud array containing ours is accepted (control)', async function () {
      await acceptedAndClose(L.jwks, `token=${await good({ aud: ['another-api', AUD] })}`);
    });
  });

  describe('malformed tokens', function () {
    const cases = {
      'bad base64 in the header': () => `!!!.${b64url(claims({ exp: exp() }))}.abc`,
      'header that is not JSON': () => `${b64url('not json')}.${b64url(claims({ exp: exp() }))}.abc`,
      'header that is a JSON array': () => `${b64url([{ alg: 'RS256' }])}.${b64url(claims({ exp: exp() }))}.abc`,
      'two segments': () => `${b64url({ alg: 'RS256' })}.${b64url(claims({ exp: exp() }))}`,
      'one segment': () => b64url({ alg: 'RS256' }),
      'four segments': () => `${b64url({ alg: 'RS256' })}.${b64url(claims())}.abc.def`,
      'five segments (JWE shape)': () => `${b64url({ alg: 'RSA-OAEP', enc: 'A256GCM' })}.a.b.c.d`,
      'only dots': () => '..',
      'spaces and unicode': () => 'ä ö ü.☃.💥',
    };
    for (const [name, make] of Object.entries(cases)) {
      it(name, async function () {
        await refused(L.jwks, `token=${encodeURIComponent(make())}`, 401);
        jwksFetchesUnchanged();
      });
    }
    it('payload that is not JSON / a JSON array (validly signed)', async function () {
      await refused(
        L.jwks,
        `token=${await signRaw(rsa, { alg: 'RS256', kid: 'rsa-1' }, 'not json')}`,
        401,
        'TOKEN_MALFORMED',
      );
      await refused(
        L.jwks,
        `token=${await signRaw(rsa, { alg: 'RS256', kid: 'rsa-1' }, [claims({ exp: exp() })])}`,
        401,
        'TOKEN_MALFORMED',
      );
    });
    it('a valid token with its signature stripped or altered', async function () {
      const t = await good();
      const [h, p] = t.split('.');
      await refused(L.jwks, `token=${h}.${p}.`, 401);
      await refused(L.jwks, `token=${h}.${p}.${b64url('x'.repeat(256))}`, 401, 'BAD_SIGNATURE');
      // a payload swapped in under a valid header and signature
      await refused(
        L.jwks,
        `token=${h}.${b64url(claims({ tenant_id: 'victim', exp: exp() }))}.${t.split('.')[2]}`,
        401,
        'BAD_SIGNATURE',
      );
    });
  });

  describe('where and how big the token is', function () {
    it('no token', async function () {
      await refused(L.jwks, undefined, 401, 'TOKEN_MISSING');
    });
    it('empty token', async function () {
      await refused(L.jwks, 'token=', 401, 'TOKEN_MISSING');
    });
    it('token repeated (even with one valid copy)', async function () {
      const t = await good();
      await refused(L.jwks, `token=${t}&token=${t}`, 401, 'TOKEN_AMBIGUOUS');
      await refused(L.jwks, `token=${t}&%74oken=garbage`, 401, 'TOKEN_AMBIGUOUS');
    });
    it('token only in another parameter or header is not read', async function () {
      const t = await good();
      await refused(L.jwks, `access_token=${t}`, 401, 'TOKEN_MISSING', { Authorization: `Bearer ${t}` });
    });
    it('oversize token (just over 8 KB) is refused before parsing', async function () {
      await refused(L.jwks, `token=${'a'.repeat(8193)}`, 401, 'TOKEN_TOO_LARGE');
      jwksFetchesUnchanged();
    });
    it('a huge query is refused by the HTTP server itself (431), no listener involved', async function () {
      const before = L.jwks.refusals.length;
      const result = await refused(L.jwks, `token=${'a'.repeat(40_000)}`, 431);
      assert.strictEqual(result.status, 431);
      assert.strictEqual(L.jwks.refusals.length, before);
    });
  });

  describe('tenant claim', function () {
    const tenants = {
      missing: undefined,
      empty: '',
      object: { id: 'acme' },
      array: ['acme'],
      'huge (300 chars)': 'x'.repeat(300),
      null: null,
      boolean: true,
      'non-integer number': 1.5,
      'unsafe integer': 2 ** 60,
      'control characters': 'acme\u0000evil',
      'newline (log injection)': 'acme\nERROR forged log line',
    };
    for (const [name, tenant] of Object.entries(tenants)) {
      it(`tenant ${name} (jwks)`, async function () {
        const c = claims({ exp: exp() });
        if (tenant === undefined) delete c.tenant_id;
        else c.tenant_id = tenant;
        await refused(L.jwks, `token=${await rawSigned({}, c)}`, 401, 'TENANT_INVALID');
      });
    }
    it('tenant object / array from a custom verifier', async function () {
      for (const tenant of [{ a: 1 }, ['a'], '', 'y'.repeat(257)]) {
        await refused(L.custom, `token=${b64url({ tenant_id: tenant })}`, 401, 'TENANT_INVALID');
      }
    });
    it('tenant ids that are not well-formed UTF-16 (lone surrogates) are refused, signed by jose', async function () {
      // UTF-8 channels (Redis) would turn each of them into U+FFFD: "acme\uD800" would share the tenant "acme\uFFFD".
      for (const tenant of ['acme\uD800', 'acme\uDC00', '\uDC00\uD800', '\uD83D']) {
        await refused(L.jwks, `token=${await good({ tenant_id: tenant })}`, 401, 'TENANT_INVALID');
        await refused(L.custom, `token=${b64url({ tenant_id: tenant })}`, 401, 'TENANT_INVALID');
      }
      const result = await connect(L.jwks.url(`token=${await good({ tenant_id: 'acme\uD800' })}`));
      assert.strictEqual(result.body, 'tenant invalid');
      result.ws.terminate();
    });
    it('a tenant with a surrogate pair (well-formed) is accepted as it is (control)', async function () {
      const ws = await accepted(L.jwks, `token=${await good({ tenant_id: 'acme-\uD83D\uDE00' })}`);
      assert.strictEqual(L.jwks.opens.at(-1).tenantId, 'acme-\u{1F600}');
      ws.terminate();
      await waitFor(() => L.jwks.listener.connectionCount === 0);
    });
    it('an integer tenant is accepted as its decimal string (control)', async function () {
      const ws = await accepted(L.jwks, `token=${await good({ tenant_id: 42 })}`);
      assert.strictEqual(L.jwks.opens.at(-1).tenantId, '42');
      ws.terminate();
      await waitFor(() => L.jwks.listener.connectionCount === 0);
    });
  });

  describe('Origin (Cross-Site WebSocket Hijacking)', function () {
    let token;
    before(async () => {
      token = await good();
    });
    it('an unlisted origin gets 403 even with a valid token', async function () {
      await refused(L.jwks, `token=${token}`, 403, 'ORIGIN_NOT_ALLOWED', { Origin: 'https://evil.example' });
    });
    it('a look-alike origin (suffix / other scheme / other port) gets 403', async function () {
      for (const origin of [
        'https://app.example.evil.example',
        'http://app.example',
        'https://app.example:444',
        'https://other.example',
      ]) {
        await refused(L.jwks, `token=${token}`, 403, 'ORIGIN_NOT_ALLOWED', { Origin: origin });
      }
    });
    it('Origin "null" (sandboxed frame, file://) gets 403', async function () {
      await refused(L.jwks, `token=${token}`, 403, 'ORIGIN_NOT_ALLOWED', { Origin: 'null' });
    });
    it('two Origin headers (one allowed) get 403', async function () {
      const r = await rawHandshake(srv.port, {
        path: `/ws/jwks?token=${token}`,
        headers: { Origin: [ALLOWED_ORIGIN, 'https://evil.example'] },
      });
      assert.strictEqual(r.status, 403);
      assert.strictEqual(L.jwks.listener.connectionCount, 0);
    });
    it('version-8 handshake: Sec-WebSocket-Origin is the origin checked', async function () {
      const r = await rawHandshake(srv.port, {
        path: `/ws/jwks?token=${token}`,
        version: 8,
        headers: { Origin: ALLOWED_ORIGIN, 'Sec-WebSocket-Origin': 'https://evil.example' },
      });
      assert.strictEqual(r.status, 403);
      assert.strictEqual(L.jwks.listener.connectionCount, 0);
    });
    it('the origin is checked before the token (a bad token from a bad origin is 403)', async function () {
      await refused(L.jwks, 'token=garbage', 403, 'ORIGIN_NOT_ALLOWED', { Origin: 'https://evil.example' });
    });
    it(
      'listed origins (any case, with an explicit port) ' + 'and no Origin at all are accepted (control)',
      async function () {
        await acceptedAndClose(L.jwks, `token=${token}`, { Origin: 'HTTPS://APP.EXAMPLE' });
        await acceptedAndClose(L.jwks, `token=${token}`, { Origin: 'https://other.example:8443' });
        await acceptedAndClose(L.jwks, `token=${token}`);
      },
    );
  });

  describe('mode none trusts nothing in a token', function () {
    it('an expired token is refused', async function () {
      await refused(L.none, `token=${rawToken({ alg: 'none' }, { exp: now() - 3600 })}`, 401, 'TOKEN_EXPIRED');
    });
    it('a token that is not a JWT is refused', async function () {
      await refused(L.none, 'token=definitely-not-a-jwt', 401, 'TOKEN_MALFORMED');
    });
    it('an unsigned tenant claim is ignored: the session is in tenant "default" (control)', async function () {
      const ws = await accepted(
        L.none,
        `token=${rawToken({ alg: 'none' }, { tenant_id: 'victim', sub: 'mallory', exp: now() + 60 })}`,
      );
      const session = L.none.opens.at(-1);
      assert.strictEqual(session.tenantId, 'default');
      assert.strictEqual(session.subject, undefined);
      assert.strictEqual(session.authStatus, 'none');
      ws.terminate();
      await waitFor(() => L.none.listener.connectionCount === 0);
    });
  });

  describe('transport-level refusals (answered by ws before verification)', function () {
    it('a POST upgrade gets 405, a bad Sec-WebSocket-Key 400, a bad version 400', async function () {
      const t = await good();
      const post = await rawHandshake(srv.port, { path: `/ws/jwks?token=${t}`, method: 'POST' });
      assert.strictEqual(post.status, 405);
      const badKey = await rawHandshake(srv.port, {
        raw:
          `GET /ws/jwks?token=${t} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          'Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n',
      });
      assert.strictEqual(badKey.status, 400);
      const badVersion = await rawHandshake(srv.port, { path: `/ws/jwks?token=${t}`, version: 99 });
      assert.strictEqual(badVersion.status, 400);
      assert.strictEqual(L.jwks.listener.connectionCount, 0);
    });
  });

  describe('key sources that fail', function () {
    async function jwksListener(pathname, server, extra = {}) {
      return startListener(srv, pathname, {
        verifier: { mode: 'jwks', jwksUri: server.url, jwksTimeoutMs: 2000, ...extra.verifier },
        ...extra.listener,
      });
    }

    it('JWKS down: 401, and a flood of handshakes does not become a flood of fetches', async function () {
      const dead = await startJwksServer([rsa]);
      const url = dead.url;
      await dead.close();
      const rec = await jwksListener('/ws/down', { url });
      L.down = rec;
      const t = await good();
      for (let i = 0; i < 20; i++) await refused(rec, `token=${t}`, 401, 'KEYS_UNAVAILABLE');
      assert.ok(rec.verifier.keySetFetches <= 2, `fetches while down: ${rec.verifier.keySetFetches}`);
    });

    it('JWKS slow beyond the handshake deadline: 503 and the socket is freed', async function () {
      const slow = await startJwksServer([rsa]);
      servers.push(slow);
      slow.state.mode = 'hang';
      const rec = await jwksListener('/ws/slow-deadline', slow, {
        verifier: { jwksTimeoutMs: 5000 },
        listener: { handshakeTimeoutMs: 300 },
      });
      L.slowDeadline = rec;
      const started = Date.now();
      await refused(rec, `token=${await good()}`, 503, 'VERIFY_TIMEOUT');
      assert.ok(Date.now() - started < 4000);
    });

    it('JWKS slow beyond the fetch timeout: 401 keys unavailable', async function () {
      const slow = await startJwksServer([rsa]);
      servers.push(slow);
      slow.state.mode = 'hang';
      const rec = await jwksListener('/ws/slow-fetch', slow, {
        verifier: { jwksTimeoutMs: 300 },
        listener: { handshakeTimeoutMs: 3000 },
      });
      L.slowFetch = rec;
      await refused(rec, `token=${await good()}`, 401, 'KEYS_UNAVAILABLE');
    });

    it('JWKS garbage: 401, fetches held back after the failure', async function () {
      const garbage = await startJwksServer([rsa]);
      servers.push(garbage);
      garbage.state.mode = 'garbage';
      const rec = await jwksListener('/ws/garbage', garbage);
      L.garbage = rec;
      const t = await good();
      for (let i = 0; i < 10; i++) await refused(rec, `token=${t}`, 401, 'KEYS_UNAVAILABLE');
      assert.ok(garbage.fetches <= 2, `fetches: ${garbage.fetches}`);
    });

    it('JWKS oversized response: 401', async function () {
      const big = await startWatchedServer(() =>
        JSON.stringify({ keys: [rsa.publicJwk], pad: 'p'.repeat(1024 * 1024) }),
      );
      servers.push(big);
      const rec = startListener(srv, '/ws/big', { verifier: { mode: 'jwks', jwksUri: `${big.url}/jwks.json` } });
      L.big = rec;
      await refused(rec, `token=${await good()}`, 401, 'KEYS_UNAVAILABLE');
      assert.strictEqual(big.requests.length, 1);
    });

    it('JWKS HTTP 500: 401', async function () {
      const broken = await startJwksServer([rsa]);
      servers.push(broken);
      broken.state.mode = 'error';
      const rec = await jwksListener('/ws/500', broken);
      L.err500 = rec;
      await refused(rec, `token=${await good()}`, 401, 'KEYS_UNAVAILABLE');
    });

    it('JWKS redirect: 401 and the redirect target is never asked', async function () {
      const redirecting = await startJwksServer([rsa]);
      servers.push(redirecting);
      redirecting.state.mode = 'redirect';
      redirecting.state.redirectTo = `${watch.url}/jwks.json`;
      const rec = await jwksListener('/ws/redirect', redirecting);
      L.redirect = rec;
      await refused(rec, `token=${await signWithKey(attacker, claims())}`, 401, 'KEYS_UNAVAILABLE');
      assert.strictEqual(redirecting.fetches, 1);
      assert.deepStrictEqual(watch.requests, []);
    });

    it('custom verifier that never answers: 503 at the deadline, socket freed', async function () {
      await refused(L.customHang, 'token=anything', 503, 'VERIFY_TIMEOUT');
    });

    it('key rotation: a new kid is accepted after rotation, the removed kid is refused', async function () {
      const rotating = await startJwksServer([rsa]);
      servers.push(rotating);
      const rec = await jwksListener('/ws/rotate', rotating, { verifier: { jwksCooldownMs: 0 } });
      L.rotate = rec;
      await acceptedAndClose(rec, `token=${await good()}`);
      const next = await makeKey('ES256', 'ec-2025');
      rotating.setKeys([next]);
      const ws = await accepted(rec, `token=${await signWithKey(next, claims())}`);
      ws.terminate();
      await waitFor(() => rec.listener.connectionCount === 0);
      await refused(rec, `token=${await good()}`, 401, 'KEY_NOT_FOUND');
      assert.strictEqual(rotating.fetches, 3);
    });

    it('each JWKS URL has its own key cache: a kid from one set is unknown to another listener', async function () {
      const other = await makeKey('RS256', 'rsa-1'); // same kid, different key, other JWKS
      const otherSet = await startJwksServer([other]);
      servers.push(otherSet);
      const rec = await jwksListener('/ws/other-set', otherSet);
      L.otherSet = rec;
      await acceptedAndClose(rec, `token=${await signWithKey(other, claims())}`);
      // the first listener (cache primed with the real rsa-1) refuses the other set's token ...
      await refused(L.jwks, `token=${await signWithKey(other, claims())}`, 401, 'BAD_SIGNATURE');
      // ... and the second refuses the first set's token
      await refused(rec, `token=${await good()}`, 401, 'BAD_SIGNATURE');
      jwksFetchesUnchanged();
      assert.strictEqual(otherSet.fetches, 1);
    });
  });

  describe('connections that never complete a handshake', function () {
    let tight;
    let rec;
    before(async () => {
      // Node's own limits on incomplete requests, set small here (Node's defaults: headersTimeout
      // 60 s, requestTimeout 300 s, checked every 30 s).
      tight = await startHttpServer({ headersTimeout: 500, requestTimeout: 500, connectionsCheckingInterval: 100 });
      rec = startListener(tight, '/ws/tight', { verifier: { mode: 'hs256', secret: SECRET } });
    });
    after(async () => {
      await rec.listener.close();
      await tight.close();
    });

    it('a client that opens TCP and never sends anything is dropped by the HTTP server', async function () {
      const r = await rawHandshake(tight.port, { raw: '', timeoutMs: 5000 });
      assert.ok(r.status === 408 || r.closed, JSON.stringify(r));
      await waitFor(() => tight.sockets.size === 0, 2000, 'socket freed');
      assert.strictEqual(rec.refusals.length + rec.opens.length, 0);
    });

    it('a client that never finishes the upgrade request headers is dropped (408)', async function () {
      const r = await rawHandshake(tight.port, {
        raw: `GET /ws/tight?token=x HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n`,
        timeoutMs: 5000,
      });
      assert.ok(r.status === 408 || r.closed, JSON.stringify(r));
      await waitFor(() => tight.sockets.size === 0, 2000, 'socket freed');
      assert.strictEqual(rec.refusals.length + rec.opens.length, 0);
    });
  });

  describe('a listener closing (redeploy) while handshakes are in progress', function () {
    let own;
    beforeEach(async () => {
      own = await startHttpServer();
    });
    afterEach(async () => {
      await own.close();
    });

    it(
      'handshakes waiting on a JWKS that does not ' + 'answer get 503 "listener closing", not a hang-up',
      async function () {
        const slow = await startJwksServer([rsa]);
        servers.push(slow);
        slow.state.mode = 'hang';
        const rec = startListener(own, '/ws/closing', {
          verifier: { mode: 'jwks', jwksUri: slow.url, jwksTimeoutMs: 15000 },
          handshakeTimeoutMs: 15000,
        });
        const token = await good();
        const pending = [
          connect(rec.url(`token=${token}`)),
          connect(rec.url(`token=${token}`)),
          rawHandshake(own.port, { path: `/ws/closing?token=${token}` }),
        ];
        await waitFor(() => slow.fetches >= 1 && own.sockets.size === 3, 5000, 'three handshakes in verification');
        const closing = rec.listener.close();
        const [a, b, raw] = await Promise.all(pending);
        for (const r of [a, b]) {
          assert.strictEqual(r.status, 503);
          assert.strictEqual(r.body, 'listener closing');
          r.ws.terminate();
        }
        assert.strictEqual(raw.status, 503);
        assert.match(raw.head, /\r\nConnection: close\r\n/i);
        await closing;
        assert.deepStrictEqual(
          rec.refusals.map((e) => e.code),
          ['LISTENER_CLOSING', 'LISTENER_CLOSING', 'LISTENER_CLOSING'],
        );
        assert.strictEqual(rec.opens.length, 0);
        await waitFor(() => own.sockets.size === 0, 3000, 'the server to free the sockets');
      },
    );

    it('an upgrade that arrives while the listener is closing gets 503 "listener closing"', async function () {
      const rec = startListener(own, '/ws/closing-late', { verifier: { mode: 'none' } });
      const { ws } = await connect(rec.url());
      // The client stops reading: it never answers the close frame, so close() waits its grace.
      ws._socket.pause();
      const closing = rec.listener.close();
      const late = await connect(rec.url());
      assert.strictEqual(late.status, 503);
      assert.strictEqual(late.body, 'listener closing');
      late.ws.terminate();
      await closing;
      assert.deepStrictEqual(
        rec.refusals.map((e) => e.code),
        ['LISTENER_CLOSING'],
      );
      assert.strictEqual(rec.opens.length, 1);
      ws.terminate();
      await waitFor(() => own.sockets.size === 0, 3000, 'the server to free the sockets');
    });
  });

  describe('summary', function () {
    it('after all of the above: no session is open on any listener and the JWKS was fetched once', async function () {
      for (const rec of Object.values(L)) assert.strictEqual(rec.listener.connectionCount, 0);
      jwksFetchesUnchanged();
      assert.deepStrictEqual(watch.requests, []);
    });
  });
});
