/**
 * Verifies the handshake token with jose. Algorithms are pinned per mode, so a token can never
 * choose how it is checked (RFC 8725 §3.1): hs256 accepts HS256 only, jwks and public-key accept
 * asymmetric algorithms only, none verifies nothing but still refuses an expired token.
 * `jku`, `x5u` and `jwk` headers are never followed: keys come only from the configuration.
 */
import { createPublicKey, KeyObject, webcrypto } from 'node:crypto';
import * as jose from 'jose';
import { HandshakeError } from '../errors';
import { LISTENER_RUNTIME_DEFAULTS } from '../flow/defaults';

export type AuthMode = 'none' | 'hs256' | 'jwks' | 'publickey' | 'custom';

/** A site's own verifier (settings.js `websocketPlusListener.verifyToken`): claims or null. */
export type CustomVerifyFunction = (
  token: string,
  req: unknown,
) => Promise<Record<string, unknown> | null | undefined> | Record<string, unknown> | null | undefined;

export interface TokenVerifierOptions {
  mode: AuthMode;
  /** hs256: the shared secret. */
  secret?: string;
  /** jwks: where the key set is served. */
  jwksUri?: string;
  /** publickey: a PEM (SPKI) public key. */
  publicKey?: string;
  /** custom: the site's function. */
  verifyToken?: CustomVerifyFunction;
  issuer?: string;
  audience?: string;
  /** Seconds of clock skew accepted on exp, nbf and iat. Default is 5. */
  clockToleranceSeconds?: number;
  /** Longest accepted token, checked before any parsing. Default is 8192. */
  maxTokenLength?: number;
  /** jwks: fetch used for the key set (proxy support); defaults to the global fetch. */
  fetch?: typeof fetch;
  /** jwks: fetch timeout in ms. Default is 3000. */
  jwksTimeoutMs?: number;
  /** jwks: shortest time between two refetches caused by an unknown kid, ms. Default is 30000. */
  jwksCooldownMs?: number;
  /** jwks: how long a fetched key set is trusted before it is refetched, ms. Default is 600000. */
  jwksCacheMaxAgeMs?: number;
  /**
   * jwks: after a failed fetch, no new fetch for this long (handshakes fail at once), ms.
   * Default is 1000 (at most the cooldown).
   */
  jwksFailureBackoffMs?: number;
  /** jwks: largest key set response accepted, bytes. Default is 524288. */
  jwksMaxBytes?: number;
}

export interface VerifiedToken {
  /** Claims that were verified (null when no token was checked). */
  claims: Record<string, unknown> | null;
  subject: string | undefined;
  /** Token expiry as epoch ms, when the token has one. */
  expiresAt: number | undefined;
  authStatus: 'verified' | 'none';
}

export interface TokenVerifier {
  readonly mode: AuthMode;
  verify(token: string | undefined, req?: unknown): Promise<VerifiedToken>;
  /** How many times the JWKS was fetched (jwks mode), for diagnostics and benchmarks. */
  readonly keySetFetches: number;
  /** How many of those fetches failed (error, timeout, non-200 or unusable body). */
  readonly keySetFetchFailures?: number;
}

export const DEFAULT_MAX_TOKEN_LENGTH = 8192;
const DEFAULT_JWKS_FAILURE_BACKOFF_MS = 1000;
/**
 * Below the listener's default handshake deadline (4 s), so that core used on its own answers a
 * silent JWKS with 401 "keys unavailable" rather than 503 (see handshakeTiming in listener-config).
 */
export const DEFAULT_JWKS_TIMEOUT_MS = 3000;
const DEFAULT_JWKS_MAX_BYTES = 512 * 1024;
/** RFC 8725 §3.5: an HS256 key should have at least as many bytes as the hash output (32). */
export const MIN_HS256_SECRET_BYTES = 32;

/**
 * An HS256 verifier whose secret is shorter than MIN_HS256_SECRET_BYTES
 * (RFC 8725 §3.5: brute-forceable offline from one token).
 */
export function hasShortSecret(options: Pick<TokenVerifierOptions, 'mode' | 'secret'>): boolean {
  return options.mode === 'hs256' && Buffer.byteLength(options.secret ?? '') < MIN_HS256_SECRET_BYTES;
}

const ASYMMETRIC_ALGORITHMS = ['RS256', 'ES256'];
const JOSE_CODE_TO_REFUSAL: Record<string, ConstructorParameters<typeof HandshakeError>[0]> = {
  ERR_JWT_EXPIRED: 'TOKEN_EXPIRED',
  ERR_JWS_SIGNATURE_VERIFICATION_FAILED: 'BAD_SIGNATURE',
  ERR_JOSE_ALG_NOT_ALLOWED: 'ALG_NOT_ALLOWED',
  // With algorithms pinned, "not supported" means an unknown `crit` extension (RFC 7515 §4.1.11).
  ERR_JOSE_NOT_SUPPORTED: 'TOKEN_UNSUPPORTED',
  ERR_JWS_INVALID: 'TOKEN_MALFORMED',
  ERR_JWT_INVALID: 'TOKEN_MALFORMED',
  ERR_JWKS_NO_MATCHING_KEY: 'KEY_NOT_FOUND',
  ERR_JWKS_MULTIPLE_MATCHING_KEYS: 'KEY_NOT_FOUND',
  ERR_JWKS_TIMEOUT: 'KEYS_UNAVAILABLE',
  ERR_JWKS_INVALID: 'KEYS_UNAVAILABLE',
};

/** Maps anything jose (or a fetch under it) throws to a refusal; unknown failures fail closed. */
export function toHandshakeError(err: unknown, mode: AuthMode): HandshakeError {
  if (err instanceof HandshakeError) return err;
  const code = (err as { code?: unknown })?.code;
  const claim = (err as { claim?: unknown }).claim;
  // jose says "invalid" for a time claim that is present but not a number: a malformed token, as
  // a non-numeric time claim is in every other mode, not a failed time check.
  if (
    (code === 'ERR_JWT_CLAIM_VALIDATION_FAILED' || code === 'ERR_JWT_EXPIRED') &&
    (err as { reason?: unknown }).reason === 'invalid' &&
    (claim === 'exp' || claim === 'nbf' || claim === 'iat')
  ) {
    return new HandshakeError('TOKEN_MALFORMED', claim);
  }
  if (code === 'ERR_JWT_CLAIM_VALIDATION_FAILED') {
    if (claim === 'nbf') return new HandshakeError('TOKEN_NOT_YET_VALID');
    if (claim === 'iat') return new HandshakeError('TOKEN_ISSUED_IN_FUTURE');
    return new HandshakeError('CLAIM_INVALID', typeof claim === 'string' ? claim : undefined);
  }
  if (typeof code === 'string' && JOSE_CODE_TO_REFUSAL[code]) return new HandshakeError(JOSE_CODE_TO_REFUSAL[code]);
  // A failed fetch of the key set surfaces as a plain error from fetch.
  if (mode === 'jwks') return new HandshakeError('KEYS_UNAVAILABLE');
  if (mode === 'custom') return new HandshakeError('VERIFY_REJECTED');
  return new HandshakeError('TOKEN_MALFORMED');
}

/** Algorithms a PEM public key may verify, decided by the key, not by the token. */
function algorithmsForPublicKey(key: KeyObject): string[] {
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return ['RS256', 'PS256'];
    case 'rsa-pss':
      return ['PS256'];
    case 'ec':
      return key.asymmetricKeyDetails?.namedCurve === 'prime256v1' ? ['ES256'] : [];
    case 'ed25519':
      return ['EdDSA', 'Ed25519'];
    default:
      return [];
  }
}

function checkTimes(claims: Record<string, unknown>, toleranceSeconds: number, nowSeconds: number): void {
  const { exp, nbf, iat } = claims;
  if (exp !== undefined && (typeof exp !== 'number' || !Number.isFinite(exp)))
    throw new HandshakeError('TOKEN_MALFORMED', 'exp');
  if (typeof exp === 'number' && exp <= nowSeconds - toleranceSeconds) throw new HandshakeError('TOKEN_EXPIRED');
  if (nbf !== undefined && (typeof nbf !== 'number' || !Number.isFinite(nbf)))
    throw new HandshakeError('TOKEN_MALFORMED', 'nbf');
  if (typeof nbf === 'number' && nbf > nowSeconds + toleranceSeconds) throw new HandshakeError('TOKEN_NOT_YET_VALID');
  if (iat !== undefined && (typeof iat !== 'number' || !Number.isFinite(iat)))
    throw new HandshakeError('TOKEN_MALFORMED', 'iat');
  if (typeof iat === 'number' && iat > nowSeconds + toleranceSeconds)
    throw new HandshakeError('TOKEN_ISSUED_IN_FUTURE');
}

/** A response body as text, refused (not truncated) beyond `maxBytes`. */
async function readBounded(response: Response, maxBytes: number): Promise<string> {
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw new Error('key set response too large');
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function verifiedResult(claims: Record<string, unknown>, authStatus: 'verified' | 'none'): VerifiedToken {
  return {
    claims,
    subject: typeof claims.sub === 'string' ? claims.sub : undefined,
    expiresAt: typeof claims.exp === 'number' ? claims.exp * 1000 : undefined,
    authStatus,
  };
}

export function createTokenVerifier(options: TokenVerifierOptions): TokenVerifier {
  const mode = options.mode;
  const tolerance = options.clockToleranceSeconds ?? LISTENER_RUNTIME_DEFAULTS.clockToleranceSeconds;
  const maxLength = options.maxTokenLength ?? DEFAULT_MAX_TOKEN_LENGTH;
  let keySetFetches = 0;
  let keySetFetchFailures = 0;

  const claimChecks: jose.JWTVerifyOptions = { clockTolerance: tolerance };
  if (options.issuer) claimChecks.issuer = options.issuer;
  if (options.audience) claimChecks.audience = options.audience;

  let key: Parameters<typeof jose.jwtVerify>[1] | undefined;
  let hmacKeyReady: Promise<void> | undefined;
  let algorithms: string[] = [];
  if (mode === 'hs256') {
    if (!options.secret) throw new Error('hs256 mode needs a secret');
    // Imported once: jose would otherwise import raw secret bytes on every verify (about half the
    // cost of an HS256 handshake). Until the import settles, verify waits for it.
    const secretBytes = new TextEncoder().encode(options.secret);
    hmacKeyReady = webcrypto.subtle
      .importKey('raw', secretBytes, { name: 'HMAC', hash: 'SHA-256' }, false, ['verify'])
      .then((imported) => {
        key = imported;
      });
    algorithms = ['HS256'];
  } else if (mode === 'jwks') {
    const url = new URL(String(options.jwksUri));
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error('JWKS URI must be http(s)');
    const baseFetch = options.fetch ?? fetch;
    const cooldown = options.jwksCooldownMs ?? 30_000;
    const failureBackoff = options.jwksFailureBackoffMs ?? Math.min(cooldown, DEFAULT_JWKS_FAILURE_BACKOFF_MS);
    const maxBytes = options.jwksMaxBytes ?? DEFAULT_JWKS_MAX_BYTES;
    const timeoutMs = options.jwksTimeoutMs ?? DEFAULT_JWKS_TIMEOUT_MS;
    let lastFailureAt = Number.NEGATIVE_INFINITY;
    type FetchArgs = Parameters<typeof fetch>;
    const fetchKeySet = async (input: FetchArgs[0], init: FetchArgs[1], signal: AbortSignal): Promise<Response> => {
      // Never follow redirects: the key set must come from the configured address.
      const response = await baseFetch(input, { ...init, signal, redirect: 'error' });
      if (response.status !== 200) {
        await response.body?.cancel().catch(() => undefined);
        return response;
      }
      const body = await readBounded(response, maxBytes);
      JSON.parse(body);
      return new Response(body, { status: 200, headers: { 'content-type': 'application/json' } });
    };
    const countingFetch = (async (input: Parameters<typeof fetch>[0], init?: Parameters<typeof fetch>[1]) => {
      // jose refetches on every handshake while the key set is unusable; a failure holds back
      // further fetches for a moment, so a flood of handshakes cannot become a flood of fetches.
      if (Date.now() - lastFailureAt < failureBackoff) throw new Error('key set fetch backing off after a failure');
      keySetFetches++;
      // jose shares one pending fetch between every handshake that needs the keys: a fetch that never
      // settled would hold them all, for good. Whatever the fetch underneath does with its signal,
      // this one settles within the timeout (body included), and the next handshake fetches again.
      const controller = new AbortController();
      const outer = init?.signal;
      const onOuterAbort = (): void => controller.abort(outer?.reason);
      if (outer?.aborted) onOuterAbort();
      else outer?.addEventListener('abort', onOuterAbort, { once: true });
      const timer = setTimeout(
        () => controller.abort(new DOMException('key set fetch timed out', 'TimeoutError')),
        timeoutMs,
      );
      let onAbort: (() => void) | undefined;
      const aborted = new Promise<never>((_resolve, reject) => {
        onAbort = () => reject(controller.signal.reason);
        if (controller.signal.aborted) onAbort();
        else controller.signal.addEventListener('abort', onAbort, { once: true });
      });
      try {
        const response = await Promise.race([fetchKeySet(input, init, controller.signal), aborted]);
        if (response.status !== 200) {
          lastFailureAt = Date.now();
          keySetFetchFailures++;
        }
        return response;
      } catch (err) {
        lastFailureAt = Date.now();
        keySetFetchFailures++;
        throw err;
      } finally {
        clearTimeout(timer);
        outer?.removeEventListener('abort', onOuterAbort);
        if (onAbort) controller.signal.removeEventListener('abort', onAbort);
      }
    }) as typeof fetch;
    key = jose.createRemoteJWKSet(url, {
      timeoutDuration: timeoutMs,
      cooldownDuration: cooldown,
      cacheMaxAge: options.jwksCacheMaxAgeMs ?? 10 * 60_000,
      [jose.customFetch]: countingFetch,
    });
    algorithms = ASYMMETRIC_ALGORITHMS;
  } else if (mode === 'publickey') {
    let keyObject: KeyObject;
    // createPublicKey would derive a public key from a private one; a private key never belongs here.
    if (/PRIVATE KEY/.test(String(options.publicKey))) throw new Error('public key invalid');
    try {
      keyObject = createPublicKey(String(options.publicKey));
    } catch {
      throw new Error('public key invalid');
    }
    if (keyObject.type !== 'public') throw new Error('public key invalid');
    // jose would refuse every token of a short RSA key at verification; say so at configuration.
    if ((keyObject.asymmetricKeyDetails?.modulusLength ?? 2048) < 2048)
      throw new Error('RSA public key shorter than 2048 bits');
    algorithms = algorithmsForPublicKey(keyObject);
    if (algorithms.length === 0) throw new Error('public key type not supported');
    key = keyObject;
  } else if (mode === 'custom') {
    if (typeof options.verifyToken !== 'function') throw new Error('custom mode needs a verifyToken function');
  } else if (mode !== 'none') {
    throw new Error(`unknown auth mode ${String(mode)}`);
  }
  claimChecks.algorithms = algorithms;

  async function verify(token: string | undefined, req?: unknown): Promise<VerifiedToken> {
    if (token !== undefined && token.length > maxLength) throw new HandshakeError('TOKEN_TOO_LARGE');
    const nowSeconds = Math.floor(Date.now() / 1000);
    if (mode === 'none') {
      if (token === undefined || token === '')
        return { claims: null, subject: undefined, expiresAt: undefined, authStatus: 'none' };
      // Nothing in an unverified token is trusted, but a token that says it has expired is refused.
      let claims: Record<string, unknown>;
      try {
        claims = jose.decodeJwt(token);
      } catch {
        throw new HandshakeError('TOKEN_MALFORMED');
      }
      checkTimes(claims, tolerance, nowSeconds);
      return { claims: null, subject: undefined, expiresAt: undefined, authStatus: 'none' };
    }
    if (token === undefined || token === '') throw new HandshakeError('TOKEN_MISSING');
    if (mode === 'custom') {
      let claims: Record<string, unknown> | null | undefined;
      try {
        claims = await options.verifyToken!(token, req);
      } catch {
        throw new HandshakeError('VERIFY_REJECTED');
      }
      if (!claims || typeof claims !== 'object' || Array.isArray(claims)) throw new HandshakeError('VERIFY_REJECTED');
      checkTimes(claims, tolerance, nowSeconds);
      return verifiedResult(claims, 'verified');
    }
    try {
      if (key === undefined && hmacKeyReady) await hmacKeyReady;
      const { payload } = await jose.jwtVerify(
        token,
        key as Parameters<typeof jose.jwtVerify>[1] & jose.JWTVerifyGetKey,
        claimChecks,
      );
      // jose checks exp and nbf; an iat in the future is refused here too.
      checkTimes(payload as Record<string, unknown>, tolerance, nowSeconds);
      return verifiedResult(payload as Record<string, unknown>, 'verified');
    } catch (err) {
      throw toHandshakeError(err, mode);
    }
  }

  return {
    mode,
    verify,
    get keySetFetches() {
      return keySetFetches;
    },
    get keySetFetchFailures() {
      return keySetFetchFailures;
    },
  };
}
