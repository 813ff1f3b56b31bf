/**
 * Turns a listener's flow properties (strings, as the editor stores them) into validated options.
 * Every problem is a ConfigError with a stable code; nothing here guesses a missing value.
 */
import { ConfigError } from '../errors';
import type { RoutingScope } from '../server/session-registry';
import { normaliseTenantId, TenantPolicy } from '../auth/tenant';
import type { AuthMode, CustomVerifyFunction, TokenVerifierOptions } from '../auth/token-verifier';
import type { Server } from 'node:http';
import { joinNodeRoot, normalisePath, refuseUpgrades } from '../server/upgrade-dispatcher';
import { normaliseOrigin } from '../auth/origin';
import { clusterPrefixProblem, redisUrlProblem, sentinelNameProblem } from '../cluster/cluster-bus';
import type { ClusterTopology } from '../cluster/cluster-bus';
import { parsePeerProps, PeerProps } from './peer-props';
import { LISTENER_DEFAULTS as D, LISTENER_RUNTIME_DEFAULTS as R } from './defaults';

export interface ListenerProperties {
  path?: unknown;
  wholemsg?: unknown;
  peerProps?: unknown;
  authMode?: unknown;
  jwksUri?: unknown;
  publicKey?: unknown;
  issuer?: unknown;
  audience?: unknown;
  tenantFrom?: unknown;
  tenantClaim?: unknown;
  tenantId?: unknown;
  scope?: unknown;
  sessionTimeout?: unknown;
  onExpiry?: unknown;
  refresh?: unknown;
  refreshWindow?: unknown;
  rateLimit?: unknown;
  maxConnections?: unknown;
  maxPayload?: unknown;
  origins?: unknown;
  heartbeat?: unknown;
  clockTolerance?: unknown;
  cluster?: unknown;
  sentinelName?: unknown;
  clusterPrefix?: unknown;
  metricsPerTenant?: unknown;
}

export interface ListenerConfig {
  /** Path as configured (normalised, before httpNodeRoot is joined). */
  path: string;
  /** The whole message travels as JSON. Default is false (msg.payload only). */
  wholeMessage: boolean;
  /**
   * Properties a peer's entire-message frame may set; null = every one ("*", and always in payload
   * mode). Default is null.
   */
  peerProps: PeerProps;
  /** How the handshake token is verified. Default mode is "hs256", clock tolerance 5 s. */
  verifier: TokenVerifierOptions;
  /** Where the tenant comes from. Default is the `tenant_id` claim. */
  tenant: TenantPolicy;
  /** Where a reply goes. Default is "tenant" (migrated listeners: "session"). */
  scope: RoutingScope;
  /** Close sessions after this many ms (4002); 0 = never. Default is 0. */
  sessionTimeoutMs: number;
  /** What happens at the token's exp: close with 4001, or keep the session. Default is "disconnect". */
  onExpiry: 'disconnect' | 'allow';
  /**
   * In-band token refresh: "message" consumes `{"type":"websocket-plus:refresh","token":...}` text
   * frames and moves the session's expiry to the new token's exp. Default is "off".
   */
  refresh: 'off' | 'message';
  /**
   * With refresh "message": ms before exp at which the client is sent an "expiring" notice; 0 = none.
   * Default is 30000.
   */
  refreshWindowMs: number;
  /** Messages per second per connection; beyond it the connection is closed with 1008. 0 = none. Default is 0. */
  rateLimit: number;
  /** Connections per tenant; beyond it the handshake gets 429. 0 = none. Default is 0. */
  maxConnectionsPerTenant: number;
  /** Largest incoming message in bytes; bigger closes with 1009. Default is 1048576 (1 MiB). */
  maxPayload: number;
  /** Allowed browser origins; empty = no check. Default is empty. */
  origins: string[];
  /** Ping interval in ms; a client that misses a pong is terminated. 0 = off. Default is 30000. */
  heartbeatMs: number;
  /**
   * Scale-out through Redis (one node, Redis Cluster or Sentinel); "off" unless the listener asks for
   * it. Default is off.
   */
  cluster: ClusterConfig;
  /** Per-tenant connection gauges in the metrics. Default is false. */
  metricsPerTenant: boolean;
}

/** The parsed options the core listener takes as they are (ListenerOptions derives from them). */
export type ListenerTuning = Pick<
  ListenerConfig,
  | 'tenant'
  | 'scope'
  | 'sessionTimeoutMs'
  | 'onExpiry'
  | 'refresh'
  | 'refreshWindowMs'
  | 'rateLimit'
  | 'maxConnectionsPerTenant'
  | 'maxPayload'
  | 'origins'
  | 'heartbeatMs'
>;

/** The listener's `cluster` values that use Redis, and the Redis topology each one connects to. */
export const CLUSTER_TOPOLOGIES = Object.freeze({
  redis: 'single',
  'redis-cluster': 'cluster',
  'redis-sentinel': 'sentinel',
} as const);

export type ClusterMode = keyof typeof CLUSTER_TOPOLOGIES;

export type ClusterConfig =
  | { mode: 'off' }
  | {
      mode: ClusterMode;
      topology: ClusterTopology;
      /**
       * The credential as written: one URL (single), or comma-separated seed node URLs (cluster)
       * or sentinel URLs (sentinel). May hold passwords.
       */
      redisUrl: string;
      /** Sentinel's master group name; "" for the other topologies. */
      sentinelName: string;
      /** Credentials of the sentinels themselves (Sentinel only; "" when they need none). */
      sentinelUsername: string;
      sentinelPassword: string;
      prefix: string;
    };

/** Refused anywhere in a listener path (the specification reserves it for Node-RED's debug socket). */
const RESERVED_PATH_FRAGMENT = '/debug/ws';

/** The runtime settings that decide where Node-RED's own upgrade endpoints live. */
export interface RuntimeHttpSettings {
  httpNodeRoot?: unknown;
  httpAdminRoot?: unknown;
  inboundWebSocketTimeout?: unknown;
}

/**
 * Request paths (normalised) on which Node-RED itself answers upgrades: the editor's comms socket
 * at `<httpAdminRoot>comms`, built exactly as @node-red/editor-api does. No admin root (false), no
 * comms. A listener there would answer the editor's own socket as well.
 */
export function reservedUpgradePaths(settings: RuntimeHttpSettings): string[] {
  if (settings.httpAdminRoot === false) return [];
  let root = typeof settings.httpAdminRoot === 'string' && settings.httpAdminRoot !== '' ? settings.httpAdminRoot : '/';
  root = (root.startsWith('/') ? '' : '/') + root + (root.endsWith('/') ? '' : '/');
  return [normalisePath(`${root}comms`)];
}

/**
 * The request path a listener serves (httpNodeRoot joined), refused with PATH_FORBIDDEN when it is
 * one of Node-RED's own upgrade endpoints.
 */
export function listenerRequestPath(path: string, settings: RuntimeHttpSettings): string {
  const full = joinNodeRoot(typeof settings.httpNodeRoot === 'string' ? settings.httpNodeRoot : '/', path);
  if (full.includes(RESERVED_PATH_FRAGMENT) || reservedUpgradePaths(settings).includes(full))
    throw new ConfigError('PATH_FORBIDDEN', full);
  return full;
}

/**
 * A listener that cannot start answers its path with 503 (fail closed, and fast) until redeployed;
 * never a path of Node-RED's own (the editor's comms keeps working). Returns the function that
 * stops refusing, or undefined when the path itself is unusable.
 */
export function refuseWhileMisconfigured(
  server: Server | undefined,
  path: unknown,
  settings: RuntimeHttpSettings,
): (() => void) | undefined {
  if (!server) return undefined;
  try {
    return refuseUpgrades(server, listenerRequestPath(validateListenerPath(path), settings), 503);
  } catch {
    return undefined;
  }
}

/** Node-RED destroys an upgrade that nothing answered within `inboundWebSocketTimeout` ms, 5000 by default. */
const NODE_RED_INBOUND_WEBSOCKET_TIMEOUT_MS = 5000;

export interface HandshakeTiming {
  /** When Node-RED cuts an unanswered upgrade. */
  inboundTimeoutMs: number;
  /** The listener's handshake deadline (503), before Node-RED's cut. */
  handshakeTimeoutMs: number;
  /** JWKS fetch timeout (401 "keys unavailable"), before the handshake deadline. */
  jwksTimeoutMs: number;
}

/**
 * Handshake deadlines that answer before Node-RED's own cut: a client then always gets an HTTP
 * status, never a bare hang-up. Each step keeps a margin of 25 % (at most 1 s) for a busy event
 * loop: with Node-RED's default of 5 s, the deadline is 4 s and the JWKS timeout 3 s.
 */
export function handshakeTiming(inboundWebSocketTimeout: unknown): HandshakeTiming {
  // Node-RED reads the setting as `value || 5000` and hands it to setTimeout (which coerces it).
  const n = Number(inboundWebSocketTimeout || NODE_RED_INBOUND_WEBSOCKET_TIMEOUT_MS);
  const inboundTimeoutMs = Number.isFinite(n) && n >= 1 ? n : NODE_RED_INBOUND_WEBSOCKET_TIMEOUT_MS;
  const below = (ms: number): number => Math.max(1, Math.floor(ms - Math.min(1000, ms * 0.25)));
  const handshakeTimeoutMs = below(inboundTimeoutMs);
  return { inboundTimeoutMs, handshakeTimeoutMs, jwksTimeoutMs: below(handshakeTimeoutMs) };
}

function text(value: unknown): string {
  return typeof value === 'string' ? value.trim() : value === undefined || value === null ? '' : String(value).trim();
}

/** A count or duration: "" (or absent) is `fallback`; otherwise a finite number ≥ 0. */
function nonNegativeNumber(value: unknown, name: string, fallback: number): number {
  const raw = text(value);
  if (raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new ConfigError('OPTION_INVALID', `${name} must be a number ≥ 0`);
  return n;
}

/** Bytes of the largest incoming message: "" (or 0) is `fallback`; fractions are cut. */
export function parseMaxPayload(value: unknown, fallback: number): number {
  return Math.floor(nonNegativeNumber(value, 'maxPayload', fallback)) || fallback;
}

function oneOf<T extends string>(value: unknown, allowed: readonly T[], fallback: T, name: string): T {
  const raw = text(value);
  if (raw === '') return fallback;
  if (!(allowed as readonly string[]).includes(raw))
    throw new ConfigError('OPTION_INVALID', `${name} must be one of ${allowed.join(', ')}`);
  return raw as T;
}

function validateListenerPath(value: unknown): string {
  const raw = text(value);
  if (raw === '') throw new ConfigError('PATH_INVALID', 'empty');
  if (/[?#\s]/.test(raw)) throw new ConfigError('PATH_INVALID', 'must not contain ?, # or spaces');
  const path = normalisePath(raw);
  if (path.includes(RESERVED_PATH_FRAGMENT)) throw new ConfigError('PATH_FORBIDDEN', RESERVED_PATH_FRAGMENT);
  return path;
}

export interface ListenerSecrets {
  secret?: string;
  /** settings.js `websocketPlusListener.verifyToken` for custom mode. */
  verifyToken?: CustomVerifyFunction;
  /**
   * Credential `redisUrl`: one redis:// or rediss:// URL, or for Redis Cluster and Sentinel a
   * comma-separated list; may hold passwords.
   */
  redisUrl?: string;
  /**
   * Credentials `sentinelUsername` / `sentinelPassword`: what the sentinels themselves require
   * (Sentinel `requirepass`, an ACL user); the URLs' own user and password are the master group's.
   */
  sentinelUsername?: string;
  sentinelPassword?: string;
}

export function parseListenerConfig(props: ListenerProperties, secrets: ListenerSecrets): ListenerConfig {
  const path = validateListenerPath(props.path);
  const mode = oneOf<AuthMode>(
    props.authMode,
    ['none', 'hs256', 'jwks', 'publickey', 'custom'],
    D.authMode,
    'authMode',
  );
  const verifier: TokenVerifierOptions = {
    mode,
    issuer: text(props.issuer) || undefined,
    audience: text(props.audience) || undefined,
    clockToleranceSeconds: nonNegativeNumber(props.clockTolerance, 'clockTolerance', R.clockToleranceSeconds),
  };
  if (mode === 'hs256') {
    if (!secrets.secret) throw new ConfigError('SECRET_MISSING');
    verifier.secret = secrets.secret;
  } else if (mode === 'jwks') {
    const uri = text(props.jwksUri);
    let url: URL;
    try {
      url = new URL(uri);
    } catch {
      throw new ConfigError('JWKS_URI_INVALID');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError('JWKS_URI_INVALID');
    verifier.jwksUri = url.href;
  } else if (mode === 'publickey') {
    const pem = text(props.publicKey);
    // A private key pasted here would sit in the flow file in clear: refuse it, never derive from it.
    if (!pem.includes('PUBLIC KEY') || pem.includes('PRIVATE KEY')) throw new ConfigError('PUBLIC_KEY_INVALID');
    verifier.publicKey = pem;
  } else if (mode === 'custom') {
    if (typeof secrets.verifyToken !== 'function') throw new ConfigError('CUSTOM_VERIFIER_MISSING');
    verifier.verifyToken = secrets.verifyToken;
  }

  const tenantFrom = oneOf(props.tenantFrom, ['claim', 'static'] as const, D.tenantFrom, 'tenantFrom');
  const staticTenantId = text(props.tenantId);
  if (tenantFrom === 'static' && staticTenantId === '') throw new ConfigError('TENANT_MISSING');
  // Refused here, at deploy, rather than on every handshake.
  if (staticTenantId !== '') {
    try {
      normaliseTenantId(staticTenantId);
    } catch {
      throw new ConfigError('OPTION_INVALID', 'tenantId must be printable, well-formed text of at most 256 characters');
    }
  }

  const origins = text(props.origins)
    .split(/[\s,]+/)
    .filter((o) => o !== '');
  // An entry that is not an origin would silently refuse every browser: say so instead.
  for (const o of origins) {
    if (normaliseOrigin(o) === undefined)
      throw new ConfigError('OPTION_INVALID', `origins: "${o}" is not an origin like https://app.example`);
  }

  const wholeMessage = props.wholemsg === true || text(props.wholemsg) === 'true';
  return {
    path,
    wholeMessage,
    // Payload mode puts the frame in msg.payload only: the list is not used there, so not checked either.
    peerProps: wholeMessage ? parsePeerProps(props.peerProps) : null,
    verifier,
    tenant: { from: tenantFrom, claim: text(props.tenantClaim) || D.tenantClaim, staticTenantId },
    scope: oneOf<RoutingScope>(props.scope, ['session', 'tenant', 'global'], D.scope, 'scope'),
    sessionTimeoutMs: nonNegativeNumber(props.sessionTimeout, 'sessionTimeout', R.sessionTimeoutMs / 1000) * 1000,
    onExpiry: oneOf(props.onExpiry, ['disconnect', 'allow'] as const, D.onExpiry, 'onExpiry'),
    refresh: oneOf(props.refresh, ['off', 'message'] as const, D.refresh as 'off', 'refresh'),
    refreshWindowMs: nonNegativeNumber(props.refreshWindow, 'refreshWindow', R.refreshWindowMs / 1000) * 1000,
    rateLimit: nonNegativeNumber(props.rateLimit, 'rateLimit', R.rateLimit),
    maxConnectionsPerTenant: Math.floor(
      nonNegativeNumber(props.maxConnections, 'maxConnections', R.maxConnectionsPerTenant),
    ),
    maxPayload: parseMaxPayload(props.maxPayload, R.maxPayload),
    origins,
    heartbeatMs: nonNegativeNumber(props.heartbeat, 'heartbeat', R.heartbeatMs / 1000) * 1000,
    cluster: parseCluster(props, secrets),
    metricsPerTenant: props.metricsPerTenant === true || text(props.metricsPerTenant) === 'true',
  };
}

/**
 * `prefix` "" means: derive it from the listener's full path (defaultClusterPrefix). Problems name
 * the field and what is wrong with it, never the URL (it may hold a password).
 */
function parseCluster(props: ListenerProperties, secrets: ListenerSecrets): ClusterConfig {
  const modes = ['off', ...(Object.keys(CLUSTER_TOPOLOGIES) as ClusterMode[])] as const;
  const mode = oneOf<'off' | ClusterMode>(props.cluster, modes, D.cluster as 'off', 'cluster');
  if (mode === 'off') return { mode };
  const topology = CLUSTER_TOPOLOGIES[mode];
  const redisUrl = text(secrets.redisUrl);
  const urlProblem = redisUrlProblem(redisUrl, topology);
  if (urlProblem) throw new ConfigError('REDIS_URL_INVALID', urlProblem);
  // Only Sentinel reads the name: a value left over from switching topologies is not an error.
  const sentinel = topology === 'sentinel';
  const sentinelName = sentinel ? text(props.sentinelName) : '';
  // Kept as written: a password may begin or end with a space.
  const sentinelUsername = sentinel ? String(secrets.sentinelUsername ?? '') : '';
  const sentinelPassword = sentinel ? String(secrets.sentinelPassword ?? '') : '';
  if (sentinel) {
    const nameProblem = sentinelNameProblem(sentinelName);
    if (nameProblem) throw new ConfigError('SENTINEL_NAME_INVALID', nameProblem);
    // A user without a password would never be sent (AUTH needs both): say so rather than connect without.
    if (sentinelUsername !== '' && sentinelPassword === '')
      throw new ConfigError('OPTION_INVALID', 'Sentinel username given without the Sentinel password');
  }
  const prefix = text(props.clusterPrefix);
  const prefixProblem = clusterPrefixProblem(prefix);
  if (prefixProblem) throw new ConfigError('OPTION_INVALID', prefixProblem);
  return { mode, topology, redisUrl, sentinelName, sentinelUsername, sentinelPassword, prefix };
}
