/**
 * The one home of every flow-property default. The editor's `defaults` (src/editor), `migrate`, the
 * parsers (listener-config, client-config) and the runtime classes all read these objects; a test
 * parses the editor HTML and checks its defaults equal them. Values are written as the editor
 * stores them (strings; "" = none); the runtime values below are derived from them.
 */

/** Flow properties of a `websocket-plus-listener`, with their defaults, in the editor's order. */
export const LISTENER_DEFAULTS = Object.freeze({
  path: '',
  /** "true": the whole message travels as JSON; "false": msg.payload only. */
  wholemsg: 'false',
  /** Properties a peer's entire-message frame may set; "*" = every one. */
  peerProps: '*',
  authMode: 'hs256',
  jwksUri: '',
  publicKey: '',
  issuer: '',
  audience: '',
  tenantFrom: 'claim',
  tenantClaim: 'tenant_id',
  tenantId: '',
  scope: 'tenant',
  /** Seconds; "" = never. */
  sessionTimeout: '',
  onExpiry: 'disconnect',
  /** In-band token refresh: "off", or "message" (refresh frames on the open connection). */
  refresh: 'off',
  /** Seconds before exp at which an "expiring" notice is sent (refresh "message" only); "0" = none. */
  refreshWindow: '30',
  /** Messages per second per connection; "" = no limit. */
  rateLimit: '',
  /** Connections per tenant; "" = no limit. */
  maxConnections: '',
  /** Bytes. */
  maxPayload: '1048576',
  origins: '',
  /** Seconds; "0" = off. */
  heartbeat: '30',
  /** Seconds. */
  clockTolerance: '5',
  /** Scale-out: "off", or through Redis: "redis" (one node), "redis-cluster" or "redis-sentinel". */
  cluster: 'off',
  /** Redis Sentinel's master group name ("redis-sentinel" only; not a secret). */
  sentinelName: '',
  clusterPrefix: '',
  /** Also report open connections per tenant in the metrics (the 100 largest; the rest as "other"). */
  metricsPerTenant: false,
});

/** Flow properties of a `websocket-plus-client`, with their defaults, in the editor's order. */
export const CLIENT_DEFAULTS = Object.freeze({
  /** ws:// or wss:// URL. */
  path: '',
  /** Id of a tls-config node; "" = none. */
  tls: '',
  subprotocol: '',
  wholemsg: 'false',
  peerProps: '*',
  authMode: 'jwt',
  /** Heartbeat seconds; "" or "0" = off. */
  hb: '',
  /** Largest incoming message in bytes (the listener's default). */
  maxPayload: '1048576',
  headers: Object.freeze([]) as readonly never[],
});

/** The listener's runtime values for its defaults (what parseListenerConfig yields for the defaults). */
export const LISTENER_RUNTIME_DEFAULTS = Object.freeze({
  maxPayload: Number(LISTENER_DEFAULTS.maxPayload),
  heartbeatMs: Number(LISTENER_DEFAULTS.heartbeat) * 1000,
  clockToleranceSeconds: Number(LISTENER_DEFAULTS.clockTolerance),
  sessionTimeoutMs: 0,
  refreshWindowMs: Number(LISTENER_DEFAULTS.refreshWindow) * 1000,
  rateLimit: 0,
  maxConnectionsPerTenant: 0,
});

/** The client's runtime values for its defaults. */
export const CLIENT_RUNTIME_DEFAULTS = Object.freeze({
  maxPayload: Number(CLIENT_DEFAULTS.maxPayload),
  heartbeatMs: 0,
});
