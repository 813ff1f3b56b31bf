'use strict';
// Tokens really signed with jose, and key pairs for JWKS / public-key tests.
const jose = require('jose');

const now = () => Math.floor(Date.now() / 1000);

async function signHS256(secret, claims = {}, options = {}) {
  const jwt = new jose.SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT', ...(options.header || {}) });
  if (options.expiresIn !== null) jwt.setExpirationTime(options.exp ?? now() + (options.expiresIn ?? 300));
  if (options.iat !== undefined) jwt.setIssuedAt(options.iat);
  return jwt.sign(new TextEncoder().encode(secret));
}

/** A signing key: { alg, kid, privateKey, publicJwk, publicPem } */
async function makeKey(alg, kid) {
  const { privateKey, publicKey } = await jose.generateKeyPair(alg, { extractable: true });
  const publicJwk = { ...(await jose.exportJWK(publicKey)), kid, alg, use: 'sig' };
  const publicPem = await jose.exportSPKI(publicKey);
  return { alg, kid, privateKey, publicKey, publicJwk, publicPem };
}

async function signWithKey(key, claims = {}, options = {}) {
  const header = { alg: key.alg, typ: 'JWT', ...(key.kid ? { kid: key.kid } : {}), ...(options.header || {}) };
  const jwt = new jose.SignJWT(claims).setProtectedHeader(header);
  if (options.expiresIn !== null) jwt.setExpirationTime(options.exp ?? now() + (options.expiresIn ?? 300));
  return jwt.sign(key.privateKey);
}

/** Hand-assembles a token from raw parts (for malformed / unsigned cases). */
function rawToken(header, payload, signature = '') {
  const enc = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
  return `${enc(header)}.${enc(payload)}.${signature}`;
}

module.exports = { signHS256, makeKey, signWithKey, rawToken, now };
