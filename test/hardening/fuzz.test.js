'use strict';
// Bounded, seeded fuzzing of everything a handshake carries: 10,000 random query strings and
// tokens through readToken + the verifier of every mode (no crash, no accept, only typed
// refusals), a few hundred of them as real handshakes against a real listener, and random
// origins against an origin list. Replay a failure with FUZZ_SEED=<seed printed on failure>.
const assert = require('assert');
const { makeKey, signHS256, signWithKey, rawToken, now } = require('../helpers/tokens');
const { startJwksServer } = require('../helpers/jwks-server');
const { startHttpServer, startListener, rawHandshake, signRawHS256, prng, b64url } = require('../helpers/hardening');

const { built } = require('../helpers/built');
const { createTokenVerifier } = built('core/auth/token-verifier');
const { readToken } = built('core/auth/handshake-token');
const { HandshakeError } = built('core/errors');
const { isOriginAllowed } = built('core/auth/origin');
const { resolveTenant } = built('core/auth/tenant');

const SEED = Number(process.env.FUZZ_SEED || 0x5eed1234);
const CASES = 10_000;
const HANDSHAKES = 300;
const SECRET = 'fuzz-secret-0123456789abcdef-0123456789abcdef';

describe('hardening: seeded fuzz', function () {
  this.timeout(60000);
  let rsa;
  let ec;
  let jwks;
  let verifiers;
  let valid;
  let material;

  before(async function () {
    rsa = await makeKey('RS256', 'rsa-1');
    ec = await makeKey('ES256', 'ec-1');
    jwks = await startJwksServer([rsa, ec]);
    verifiers = {
      hs256: createTokenVerifier({ mode: 'hs256', secret: SECRET }),
      jwks: createTokenVerifier({ mode: 'jwks', jwksUri: jwks.url, jwksCooldownMs: 600_000 }),
      publickey: createTokenVerifier({ mode: 'publickey', publicKey: rsa.publicPem }),
      none: createTokenVerifier({ mode: 'none' }),
    };
    // Valid tokens per mode, used as seeds for mutation (the mutants must all be refused).
    valid = {
      hs256: await signHS256(SECRET, { tenant_id: 'acme', sub: 's' }),
      jwks: await signWithKey(rsa, { tenant_id: 'acme', sub: 's' }),
      jwksEc: await signWithKey(ec, { tenant_id: 'acme', sub: 's' }),
      publickey: await signWithKey({ ...rsa, kid: undefined }, { tenant_id: 'acme', sub: 's' }),
    };
    for (const [mode, v] of Object.entries(verifiers)) {
      if (mode === 'none') continue;
      const token = mode === 'jwks' ? valid.jwks : valid[mode];
      assert.strictEqual((await v.verify(token)).authStatus, 'verified', `control token for ${mode}`);
    }
    // What an attacker knows: public keys in every form, and guesses.
    material = [
      rsa.publicPem,
      rsa.publicPem.trim(),
      JSON.stringify(rsa.publicJwk),
      rsa.publicJwk.n,
      ec.publicPem,
      '',
      'secret',
      'null',
      SECRET.slice(0, -1),
    ];
  });

  after(() => jwks.close());

  const ALGS = [
    'none',
    'None',
    'NONE',
    'nOnE',
    'HS256',
    'HS384',
    'HS512',
    'RS256',
    'RS512',
    'ES256',
    'ES384',
    'PS256',
    'EdDSA',
    'Ed25519',
    'rs256',
    'RS256 ',
    '',
    null,
    1,
    {},
    ['RS256'],
  ];
  const ODD = [
    null,
    true,
    false,
    0,
    -1,
    1.5,
    2 ** 60,
    '',
    ' ',
    '0',
    [],
    {},
    ['a'],
    { $gt: '' },
    '\u0000',
    '../../etc/passwd',
    'x'.repeat(300),
    '☃',
    NaN,
  ];

  function randomString(r, max = 40) {
    const alphabets = [
      'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_',
      '.=&%+/ ?#;:@!$\'()*,[]{}"\\<>|^`~',
      '\u0000\u0001\u001f\u007f\u00ff\u2028\u2029\ud800\udfff☃💥é',
    ];
    let out = '';
    const n = r.int(max + 1);
    for (let i = 0; i < n; i++) {
      const a = alphabets[r() < 0.7 ? 0 : r() < 0.7 ? 1 : 2];
      out += a[r.int(a.length)];
    }
    return out;
  }

  function randomValue(r, depth = 0) {
    const k = r.int(depth > 1 ? 4 : 6);
    if (k === 0) return r.pick(ODD);
    if (k === 1) return randomString(r, 20);
    if (k === 2) return Math.floor((r() - 0.5) * 2 * now() * 2);
    if (k === 3) return now() + r.int(1000) - 500;
    if (k === 4) return Array.from({ length: r.int(4) }, () => randomValue(r, depth + 1));
    return randomObject(r, depth + 1);
  }

  function randomObject(r, depth = 0) {
    const keys = [
      'alg',
      'kid',
      'typ',
      'jku',
      'x5u',
      'jwk',
      'x5c',
      'crit',
      'b64',
      'exp',
      'nbf',
      'iat',
      'iss',
      'aud',
      'sub',
      'tenant_id',
      '__proto__',
      'constructor',
      randomString(r, 8),
    ];
    const o = {};
    const n = r.int(6);
    for (let i = 0; i < n; i++) o[r.pick(keys)] = randomValue(r, depth);
    return o;
  }

  function mutate(r, token) {
    const parts = token.split('.');
    for (;;) {
      const seg = r.int(3);
      const s = parts[seg];
      const kind = r.int(4);
      let next;
      const i = r.int(Math.max(1, s.length));
      const ch = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_'[r.int(64)];
      if (kind === 0) next = s.slice(0, i) + ch + s.slice(i + 1);
      else if (kind === 1) next = s.slice(0, i) + s.slice(i + 1);
      else if (kind === 2) next = s.slice(0, i) + ch + s.slice(i);
      else next = s.slice(0, i);
      const candidate = parts.slice();
      candidate[seg] = next;
      // Signature segments that decode to the same bytes are the same signature: not a mutant.
      if (seg === 2 && Buffer.from(next, 'base64url').equals(Buffer.from(s, 'base64url'))) continue;
      if (next === s) continue;
      return candidate.join('.');
    }
  }

  /** One random token: never signed with a secret or private key the verifiers trust. */
  async function randomToken(r, mode) {
    switch (r.int(8)) {
      case 0: // random segments
        return Array.from({ length: r.int(6) }, () => Buffer.from(randomString(r, 60)).toString('base64url')).join('.');
      case 1: // mutant of a valid token for this mode
        return mutate(r, mode === 'jwks' ? (r() < 0.5 ? valid.jwks : valid.jwksEc) : valid[mode] || valid.hs256);
      case 2: {
        // segments of different valid tokens spliced together
        const all = Object.values(valid).map((t) => t.split('.'));
        const t = [r.pick(all)[0], r.pick(all)[1], r.pick(all)[2]].join('.');
        return Object.values(valid).includes(t) ? mutate(r, t) : t;
      }
      case 3: // hostile header + random claims, unsigned or with a random signature
        return rawToken(
          { alg: r.pick(ALGS), ...randomObject(r) },
          randomObject(r),
          r() < 0.5 ? '' : b64url(randomString(r, 80)),
        );
      case 4: {
        // HS256 with attacker material (algorithm confusion)
        const header = {
          alg: r() < 0.8 ? 'HS256' : r.pick(ALGS),
          ...(r() < 0.5 ? { kid: r() < 0.5 ? 'rsa-1' : randomValue(r) } : {}),
        };
        return signRawHS256(r.pick(material), header, {
          tenant_id: randomValue(r),
          exp: now() + 300,
          ...randomObject(r),
        });
      }
      case 5: // truncated / extended valid token
        return (r() < 0.5 ? valid.jwks : valid.hs256).slice(0, r.int(400)) + (r() < 0.5 ? '' : randomString(r, 10));
      case 6: // raw random text (not a JWT at all)
        return randomString(r, 200);
      default: {
        // a valid token under a header that asks for another key
        const [, p, sig] = valid[r() < 0.5 ? 'jwks' : 'hs256'].split('.');
        const header = { alg: r.pick(ALGS), kid: randomValue(r), jku: 'http://127.0.0.1:1/jwks', jwk: rsa.publicJwk };
        return `${b64url(header)}.${p}.${sig}`;
      }
    }
  }

  /**
   * True when `token` is one of the valid control tokens, or differs from one only in how its
   * signature is spelled (same header, payload and signature bytes): that is not a forgery.
   */
  function equivalentToValid(token) {
    if (typeof token !== 'string') return false;
    const [h, p, sig, extra] = token.split('.');
    if (extra !== undefined || sig === undefined) return false;
    return Object.values(valid).some((t) => {
      const [vh, vp, vsig] = t.split('.');
      return h === vh && p === vp && Buffer.from(sig, 'base64url').equals(Buffer.from(vsig, 'base64url'));
    });
  }

  /** Percent-encodes every byte outside the unreserved set (lone surrogates become U+FFFD). */
  const pct = (s) =>
    Array.from(Buffer.from(s, 'utf8'), (b) =>
      /[A-Za-z0-9\-_.~]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).padStart(2, '0')}`,
    ).join('');

  /** A random query string carrying (or hiding, or repeating) the token. */
  function randomQuery(r, token) {
    const enc = r() < 0.8 ? pct(token) : token;
    switch (r.int(10)) {
      case 0:
        return `token=${enc}&token=${enc}`;
      case 1:
        return `%74oken=${enc}&token=${pct(randomString(r, 10))}`;
      case 2:
        return `TOKEN=${enc}`;
      case 3:
        return `token[]=${enc}`;
      case 4:
        return `${pct(randomString(r, 10))}=${enc}&token=${enc}`;
      case 5:
        return randomString(r, 80);
      case 6:
        return `token=${enc}#frag`;
      case 7:
        return `token=${enc}${randomString(r, 5)}`;
      default:
        return `token=${enc}`;
    }
  }

  it(
    `${CASES} random tokens and query strings: no crash, ` + `no accept, typed refusals only (seed ${SEED})`,
    async function () {
      const r = prng(SEED);
      const modes = ['hs256', 'jwks', 'publickey', 'none'];
      const outcomes = {};
      const fetchesBefore = jwks.fetches;
      for (let i = 0; i < CASES; i++) {
        const mode = modes[i % modes.length];
        const token = await randomToken(r, mode);
        const query = randomQuery(r, token);
        const where = `case ${i} (seed ${SEED}, mode ${mode})`;
        let read;
        try {
          read = readToken(`/ws?${query}`);
        } catch (err) {
          assert.ok(err instanceof HandshakeError, `${where}: readToken threw ${err && err.name}`);
          outcomes[err.code] = (outcomes[err.code] || 0) + 1;
          continue;
        }
        if (equivalentToValid(read)) {
          outcomes.equivalentToValid = (outcomes.equivalentToValid || 0) + 1;
          continue;
        }
        let result;
        try {
          result = await verifiers[mode].verify(read);
        } catch (err) {
          assert.ok(err instanceof HandshakeError, `${where}: verify threw ${err && err.name}: ${err && err.message}`);
          assert.ok(err.status === 401, `${where}: status ${err.status}`);
          outcomes[err.code] = (outcomes[err.code] || 0) + 1;
          continue;
        }
        // Only mode none may let a random token through, and then nothing in it is trusted.
        assert.strictEqual(mode, 'none', `${where}: a random token was ACCEPTED: ${JSON.stringify(query)}`);
        assert.strictEqual(result.authStatus, 'none');
        assert.strictEqual(result.claims, null);
        assert.strictEqual(
          resolveTenant({ from: 'claim', claim: 'tenant_id', staticTenantId: '' }, result.claims),
          'default',
        );
        outcomes.noneAccepted = (outcomes.noneAccepted || 0) + 1;
      }
      // Random kids did not turn into fetches.
      assert.ok(jwks.fetches - fetchesBefore <= 1, `JWKS fetches during fuzz: ${jwks.fetches - fetchesBefore}`);
      // The generators really exercised the checks (a fuzzer that only hits one branch proves little).
      for (const code of [
        'TOKEN_MALFORMED',
        'ALG_NOT_ALLOWED',
        'BAD_SIGNATURE',
        'TOKEN_AMBIGUOUS',
        'TOKEN_MISSING',
        'KEY_NOT_FOUND',
      ]) {
        assert.ok(outcomes[code] > 10, `too few ${code}: ${JSON.stringify(outcomes)}`);
      }
    },
  );

  it(`${HANDSHAKES} random handshakes against a real listener: never a 101`, async function () {
    const srv = await startHttpServer();
    const rec = startListener(srv, '/ws/fuzz', { verifier: verifiers.jwks });
    const recHs = startListener(srv, '/ws/fuzz-hs', { verifier: verifiers.hs256 });
    try {
      const r = prng(SEED ^ 0xabcdef);
      const statuses = {};
      for (let batch = 0; batch < HANDSHAKES / 20; batch++) {
        const requests = [];
        for (let i = 0; i < 20; i++) {
          const target = r() < 0.5 ? rec : recHs;
          let token = await randomToken(r, target === rec ? 'jwks' : 'hs256');
          while (equivalentToValid(token)) token = await randomToken(r, target === rec ? 'jwks' : 'hs256');
          // Only what an HTTP request line may carry: anything else percent-encoded.
          const query = randomQuery(r, token).replace(/[^\x21-\x7e]|#/gu, (c) => pct(c));
          requests.push(
            rawHandshake(srv.port, {
              path: `${target.path}?${query}`,
              headers: r() < 0.2 ? { Origin: randomString(r, 20).replace(/[^\x21-\x7e]/g, '') } : {},
            }),
          );
        }
        for (const result of await Promise.all(requests)) {
          assert.notStrictEqual(result.status, 101, 'a random handshake was upgraded');
          statuses[result.status] = (statuses[result.status] || 0) + 1;
        }
      }
      assert.strictEqual(rec.opens.length + recHs.opens.length, 0);
      assert.ok(
        Object.keys(statuses).every((s) => ['400', '401', '431'].includes(s)),
        JSON.stringify(statuses),
      );
      assert.ok(statuses[401] > HANDSHAKES / 2, JSON.stringify(statuses));
    } finally {
      await rec.listener.close();
      await recHs.listener.close();
      await srv.close();
    }
  });

  it('2,000 random origins: an accepted origin is always exactly a listed one', function () {
    const r = prng(SEED + 7);
    const allowed = ['https://app.example', 'http://localhost:1880'];
    const variants = [
      (o) => o,
      (o) => o.toUpperCase(),
      (o) => `${o}/`,
      (o) => `${o}/path?q#f`,
      (o) => `${o}.evil.example`,
      (o) => o.replace('://', '://user:pw@'),
      (o) => `${o}@evil.example`,
      (o) => o.replace('https', 'http'),
      (o) => `${o}:443`,
      (o) => `${o}:8443`,
      (o) => ` ${o} `,
      (o) => `${o}\u0000`,
      (o) => o.replace('app', 'аpp'),
      (o) => `${o},https://evil.example`,
      () => 'null',
      () => '',
      (o) => o.replace('//', '/'),
      (o) => `evil-${o}`,
    ];
    let accepted = 0;
    for (let i = 0; i < 2000; i++) {
      let origin = r.pick(allowed);
      const steps = 1 + r.int(3);
      for (let s = 0; s < steps; s++) origin = r.pick(variants)(origin);
      if (r() < 0.2) origin = randomString(r, 30);
      if (!isOriginAllowed(origin, allowed)) continue;
      accepted++;
      const parsed = new URL(origin.trim()).origin;
      assert.ok(allowed.includes(parsed), `accepted ${JSON.stringify(origin)} as ${parsed}`);
    }
    assert.ok(accepted > 50, `accepted only ${accepted}`);
  });
});
