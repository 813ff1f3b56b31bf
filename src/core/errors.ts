/**
 * Typed errors with stable codes. Every refusal and every close the package makes is named here,
 * and this file is the one place that maps a code to an HTTP status (handshake refusals) or a
 * WebSocket close code (closing an open session). Messages name the reason category only: they
 * never contain a token or a claim value.
 */

/** Reasons a handshake is refused before any WebSocket frame is exchanged. */
export const HandshakeRefusal = {
  TOKEN_MISSING: { status: 401, reason: 'token missing' },
  TOKEN_AMBIGUOUS: { status: 401, reason: 'token ambiguous' },
  TOKEN_TOO_LARGE: { status: 401, reason: 'token too large' },
  TOKEN_MALFORMED: { status: 401, reason: 'malformed token' },
  TOKEN_EXPIRED: { status: 401, reason: 'expired' },
  TOKEN_NOT_YET_VALID: { status: 401, reason: 'not yet valid' },
  TOKEN_ISSUED_IN_FUTURE: { status: 401, reason: 'issued in the future' },
  BAD_SIGNATURE: { status: 401, reason: 'bad signature' },
  ALG_NOT_ALLOWED: { status: 401, reason: 'algorithm not allowed' },
  TOKEN_UNSUPPORTED: { status: 401, reason: 'unsupported critical header' },
  CLAIM_INVALID: { status: 401, reason: 'claim check failed' },
  KEY_NOT_FOUND: { status: 401, reason: 'no matching key' },
  KEYS_UNAVAILABLE: { status: 401, reason: 'keys unavailable' },
  VERIFY_REJECTED: { status: 401, reason: 'rejected by verifier' },
  VERIFY_TIMEOUT: { status: 503, reason: 'verification timed out' },
  TENANT_INVALID: { status: 401, reason: 'tenant invalid' },
  ORIGIN_NOT_ALLOWED: { status: 403, reason: 'origin not allowed' },
  TENANT_CONNECTION_LIMIT: { status: 429, reason: 'tenant connection limit reached' },
  LISTENER_CLOSING: { status: 503, reason: 'listener closing' },
} as const;

export type HandshakeRefusalCode = keyof typeof HandshakeRefusal;

/** Reasons the server closes an open session, with the close code sent to the peer. */
export const SessionClose = {
  TOKEN_EXPIRED: { code: 4001, reason: 'token expired' },
  SESSION_TIMEOUT: { code: 4002, reason: 'session timeout' },
  LISTENER_CLOSED: { code: 1001, reason: 'listener closed' },
  RATE_LIMIT: { code: 1008, reason: 'rate limit exceeded' },
  MESSAGE_TOO_BIG: { code: 1009, reason: 'message too big' },
  /** Entire-message mode: the JSON nests deeper than the flow may carry (see MAX_MESSAGE_DEPTH). */
  MESSAGE_TOO_DEEP: { code: 1009, reason: 'message nested too deep' },
  /** More continuation frames or buffered parts than ws allows for one message (ws sends the 1008). */
  TOO_MANY_FRAGMENTS: { code: 1008, reason: 'too many fragments' },
  /** Handing the message to the flow threw: the session goes, the runtime and other sessions stay. */
  DELIVERY_FAILED: { code: 1011, reason: 'delivery failed' },
  SLOW_CONSUMER: { code: 1013, reason: 'slow consumer' },
  HEARTBEAT_MISSED: { code: 1006, reason: 'heartbeat missed' },
  /** A refresh token that names another tenant or subject: identity never changes on an open connection. */
  IDENTITY_CHANGED: { code: 1008, reason: 'identity changed' },
  /** Refresh frames more often than once a second. */
  REFRESH_TOO_FAST: { code: 1008, reason: 'refresh too fast' },
  /**
   * Closed from a flow by the control node (logout, revocation); the flow may pick another
   * 4000–4999 code and reason.
   */
  CONTROL_CLOSED: { code: 4003, reason: 'closed by control' },
  /** The client side: a control node asked the client to drop its socket and connect again at once. */
  CONTROL_RECONNECT: { code: 1000, reason: 'reconnecting' },
} as const;

export type SessionCloseCode = keyof typeof SessionClose;

/** Configuration mistakes found when a listener or client is created. */
export const ConfigProblem = {
  PATH_FORBIDDEN: 'path is reserved by Node-RED',
  PATH_INVALID: 'path is invalid',
  PATH_CONFLICT: 'path is already used by another listener',
  SECRET_MISSING: 'shared secret missing',
  JWKS_URI_INVALID: 'JWKS URI must be http(s)',
  PUBLIC_KEY_INVALID: 'public key invalid',
  CUSTOM_VERIFIER_MISSING: 'custom verifier missing in settings',
  TENANT_MISSING: 'static tenant ID missing',
  OPTION_INVALID: 'option invalid',
  REDIS_URL_INVALID: 'Redis URL invalid',
  SENTINEL_NAME_INVALID: 'Sentinel master name invalid',
  URL_INVALID: 'URL must be ws:// or wss://',
  SERVER_MISSING: 'no HTTP server',
  TOKEN_MISSING: 'token missing',
} as const;

export type ConfigProblemCode = keyof typeof ConfigProblem;

/** Control-node requests that are refused before anything is closed or listed. */
export const ControlProblem = {
  ACTION_UNKNOWN: 'unknown action',
  SELECTOR_MISSING: 'no session selected: give msg.sessionId, msg.subject or msg.tenantId, or msg.all = true',
  SELECTOR_INVALID: 'selector must be a non-empty string',
  CODE_INVALID: 'close code must be an integer from 4000 to 4999',
  REASON_INVALID: 'close reason must be a string of at most 123 bytes (UTF-8)',
  TARGET_MISSING: 'no listener or client configured',
  TOKEN_INVALID: 'msg.token must be a non-empty string',
} as const;

export type ControlProblemCode = keyof typeof ControlProblem;

/** Problems with the input of `migrate` (the flow file is not a Node-RED flow). */
export const MigrationProblem = {
  FLOW_INVALID: 'not a Node-RED flow',
} as const;

export type MigrationProblemCode = keyof typeof MigrationProblem;

/** The code tables by kind; each code has a message catalogue text under the kind's section. */
const CATALOGUE_SECTIONS = {
  handshake: 'refusals',
  close: 'closes',
  config: 'errors',
  migration: 'migration',
  control: 'control.errors',
} as const;

export type ErrorKind = keyof typeof CATALOGUE_SECTIONS;

interface CodesOfKind {
  handshake: HandshakeRefusalCode;
  close: SessionCloseCode;
  config: ConfigProblemCode;
  migration: MigrationProblemCode;
  control: ControlProblemCode;
}

/**
 * The message catalogue key of a code, derived from it: ConfigError `PATH_FORBIDDEN` →
 * `websocket-plus.errors.path-forbidden`, refusal `TOKEN_EXPIRED` → `websocket-plus.refusals.token-expired`.
 */
export function messageKey<K extends ErrorKind>(kind: K, code: CodesOfKind[K]): string {
  return `websocket-plus.${CATALOGUE_SECTIONS[kind]}.${code.toLowerCase().replace(/_/g, '-')}`;
}

/** A handshake that must be refused; `status` is the HTTP status sent back. */
export class HandshakeError extends Error {
  readonly code: HandshakeRefusalCode;
  readonly status: number;
  constructor(code: HandshakeRefusalCode, detail?: string) {
    super(detail ? `${HandshakeRefusal[code].reason}: ${detail}` : HandshakeRefusal[code].reason);
    this.name = 'HandshakeError';
    this.code = code;
    this.status = HandshakeRefusal[code].status;
  }
  /** What the peer sees in the HTTP reason body: the category, never details. */
  get publicReason(): string {
    return HandshakeRefusal[this.code].reason;
  }
}

/** A listener or client configuration that cannot work. */
export class ConfigError extends Error {
  readonly code: ConfigProblemCode;
  constructor(code: ConfigProblemCode, detail?: string) {
    super(detail ? `${ConfigProblem[code]}: ${detail}` : ConfigProblem[code]);
    this.name = 'ConfigError';
    this.code = code;
  }
}

/** A flow given to `migrate` that is not a Node-RED flow. */
export class MigrationError extends Error {
  readonly code: MigrationProblemCode;
  constructor(code: MigrationProblemCode, detail?: string) {
    super(detail ? `${MigrationProblem[code]}: ${detail}` : MigrationProblem[code]);
    this.name = 'MigrationError';
    this.code = code;
  }
}

/** A control request that cannot be carried out; nothing was changed. */
export class ControlError extends Error {
  readonly code: ControlProblemCode;
  constructor(code: ControlProblemCode, detail?: string) {
    super(detail ? `${ControlProblem[code]}: ${detail}` : ControlProblem[code]);
    this.name = 'ControlError';
    this.code = code;
  }
}

/**
 * A deploy-time problem for the node's status and log: a ConfigError in the reader's language
 * (`translate` answers "" or the key itself for a key it has no text for) followed by its detail;
 * anything else as is.
 */
export function describeConfigError(err: unknown, translate: (key: string) => string): string {
  if (err instanceof ConfigError) {
    const key = messageKey('config', err.code);
    const translated = translate(key);
    return translated && translated !== key ? `${translated} (${err.message})` : err.message;
  }
  return err instanceof Error ? err.message : String(err);
}

export function isHandshakeError(err: unknown): err is HandshakeError {
  return err instanceof HandshakeError;
}
