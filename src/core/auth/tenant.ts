/**
 * Decides the tenant of a connection at the handshake. The result is recorded with the session
 * and is the only tenant the router ever uses.
 */
import { HandshakeError } from '../errors';

export type TenantSource = 'claim' | 'static';

export interface TenantPolicy {
  from: TenantSource;
  /** Claim that names the tenant (claim source). */
  claim: string;
  /** The tenant of every connection (static source). */
  staticTenantId: string;
}

/** Tenant of every connection when nothing can be trusted to name one (mode none, no static id). */
const DEFAULT_TENANT = 'default';
const MAX_TENANT_LENGTH = 256;

/**
 * A lone surrogate has no UTF-8 form: Redis and every other UTF-8 channel would turn it into U+FFFD,
 * so two distinct ids (`acme\uD800`, `acme\uFFFD`) would become one tenant on the bus and in the
 * cluster limiter.
 */
function isWellFormed(id: string): boolean {
  return (id as string & { isWellFormed(): boolean }).isWellFormed();
}

/**
 * A tenant id must be a short, printable, well-formed (UTF-16 without lone surrogates) string or a
 * safe integer; anything else is refused.
 */
export function normaliseTenantId(value: unknown): string {
  let id: string;
  if (typeof value === 'string') id = value;
  else if (typeof value === 'number' && Number.isSafeInteger(value)) id = String(value);
  else throw new HandshakeError('TENANT_INVALID', 'not a string or integer');
  // eslint-disable-next-line no-control-regex -- control characters are exactly what it refuses
  if (id.length === 0 || id.length > MAX_TENANT_LENGTH || /[\u0000-\u001f\u007f]/.test(id)) {
    throw new HandshakeError('TENANT_INVALID', 'empty, too long or not printable');
  }
  if (!isWellFormed(id)) throw new HandshakeError('TENANT_INVALID', 'not well-formed Unicode');
  return id;
}

/**
 * The tenant for a verified connection. `claims` is null when no token was verified: then no
 * claim may name the tenant, whatever the policy says.
 */
export function resolveTenant(policy: TenantPolicy, claims: Record<string, unknown> | null): string {
  if (policy.from === 'static') return normaliseTenantId(policy.staticTenantId || DEFAULT_TENANT);
  if (claims === null) return normaliseTenantId(policy.staticTenantId || DEFAULT_TENANT);
  if (!Object.prototype.hasOwnProperty.call(claims, policy.claim))
    throw new HandshakeError('TENANT_INVALID', 'claim missing');
  return normaliseTenantId(claims[policy.claim]);
}
