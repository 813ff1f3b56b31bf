/**
 * Prometheus metrics of the package, built with prom-client on a registry of our own (never
 * prom-client's global default registry, which an application or another package may own).
 *
 * Listeners, outbound connections and their cluster buses are watched through what they already
 * offer: their events ('open', 'close', 'refused', 'enforced', 'refresh'; a client's 'message') and
 * the counters kept by the listener (traffic), the token verifier and the cluster bus, read at
 * scrape time. Labels are the listener path or the client's display URL only: never a token,
 * subject or session id. Tenants appear only for a listener that opts in, and then at most
 * `maxTenants` of them (the rest summed as `other`).
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { HandshakeError, SessionCloseCode } from '../errors';
import type { ListenerSession, ListenerTraffic, WebSocketListener } from '../server/listener';
import type { OutboundConnection } from '../client/outbound-connection';
import type { ClusterBusStats } from '../cluster/cluster-bus';

export const METRICS_PREFIX = 'websocket_plus_';
/** Tenants reported per listener when per-tenant gauges are on; the rest are summed as `other`. */
export const DEFAULT_MAX_TENANTS = 100;
export const OTHER_TENANTS = 'other';
/** Publish → receive lag of cluster deliveries, seconds: from a local Redis (sub-ms) to a loaded one far away. */
export const CLUSTER_LAG_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export type ClientState = 'idle' | 'connecting' | 'open' | 'closed' | 'waiting';
const CLIENT_STATES: readonly ClientState[] = ['idle', 'connecting', 'open', 'closed', 'waiting'];

/** Outcome of an in-band token refresh (see recordRefresh). */
export type RefreshOutcome = 'refreshed' | 'failed' | 'identity_changed' | 'rate_limited';

export interface WatchListenerOptions {
  /** Report open connections per tenant (off by default: tenants can be many and are data). */
  perTenant?: boolean;
  /** Most tenants reported for this listener; the rest are summed as `other`. */
  maxTenants?: number;
}

interface WatchedListener {
  listener: WebSocketListener;
  path: string;
  perTenant: boolean;
  maxTenants: number;
  /** Counter values already added from the verifier and the bus (they count from their creation). */
  seen: {
    fetches: number;
    fetchFailures: number;
    published: number;
    skipped: number;
    received: number;
    unroutable: number;
  };
  /**
   * The listener's own traffic totals already added (it counts them as plain numbers: a prom-client
   * increment costs about 0.1 µs, and even an event listener per message is measurable).
   */
  traffic: ListenerTraffic;
}

interface WatchedClient {
  url: string;
  state: ClientState;
}

/** A session closed by a peer or the network, not by the listener (closes_total's reason). */
function peerReason(code: number): string {
  return code === 1006 ? 'abnormal' : 'peer';
}

function clusterStats(listener: WebSocketListener): ClusterBusStats | undefined {
  const cluster = listener.cluster as { stats?: ClusterBusStats } | undefined;
  return cluster?.stats;
}

/** The bus's `lag` event, when the listener's cluster link is a bus that reports it. */
interface LagSource {
  on(event: 'lag', listener: (seconds: number) => void): unknown;
  off(event: 'lag', listener: (seconds: number) => void): unknown;
}

function lagSource(listener: WebSocketListener): LagSource | undefined {
  const cluster = listener.cluster as Partial<LagSource> | undefined;
  return typeof cluster?.on === 'function' && typeof cluster.off === 'function' ? (cluster as LagSource) : undefined;
}

export class WebSocketPlusMetrics {
  readonly registry = new Registry();
  private readonly listeners = new Set<WatchedListener>();
  private readonly clients = new Map<OutboundConnection, WatchedClient>();

  private readonly handshakes: Counter<'listener' | 'result' | 'category'>;
  private readonly messagesIn: Counter<'listener'>;
  private readonly messagesOut: Counter<'listener'>;
  private readonly bytesIn: Counter<'listener'>;
  private readonly bytesOut: Counter<'listener'>;
  private readonly closes: Counter<'listener' | 'reason'>;
  private readonly refreshes: Counter<'listener' | 'result'>;
  private readonly jwksFetches: Counter<'listener'>;
  private readonly jwksFailures: Counter<'listener'>;
  private readonly clusterPublished: Counter<'listener'>;
  private readonly clusterReceived: Counter<'listener'>;
  private readonly clusterSkipped: Counter<'listener'>;
  private readonly clusterUnroutable: Counter<'listener'>;
  private readonly clusterLag: Histogram<'listener'>;
  private readonly clientReconnects: Counter<'url'>;
  private readonly clientMessagesIn: Counter<'url'>;

  constructor() {
    const registers = [this.registry];
    // The gauges' collect() runs with `this` bound to the gauge: they read these collections.
    const listeners = this.listeners;
    const clients = this.clients;
    new Gauge({
      name: `${METRICS_PREFIX}connections`,
      help: 'Open WebSocket sessions per listener.',
      labelNames: ['listener'],
      registers,
      collect() {
        this.reset();
        for (const w of listeners) this.inc({ listener: w.path }, w.listener.connectionCount);
      },
    });
    new Gauge({
      name: `${METRICS_PREFIX}tenant_connections`,
      help: 'Open WebSocket sessions per tenant, for listeners that report tenants (capped; the rest as "other").',
      labelNames: ['listener', 'tenant'],
      registers,
      collect() {
        this.reset();
        for (const w of listeners) {
          if (!w.perTenant) continue;
          for (const [tenant, count] of tenantCounts(w.listener, w.maxTenants))
            this.inc({ listener: w.path, tenant }, count);
        }
      },
    });
    const sync = (): void => {
      for (const w of listeners) this.syncCounters(w);
    };
    this.handshakes = new Counter({
      name: `${METRICS_PREFIX}handshakes_total`,
      help:
        'WebSocket handshakes per listener by result (accepted/refused) and refusal category ' +
        '("none" when accepted).',
      labelNames: ['listener', 'result', 'category'],
      registers,
    });
    this.messagesIn = new Counter({
      name: `${METRICS_PREFIX}messages_received_total`,
      help: 'Messages received from clients.',
      labelNames: ['listener'],
      registers,
      collect: sync,
    });
    this.bytesIn = new Counter({
      name: `${METRICS_PREFIX}received_bytes_total`,
      help: 'Payload bytes received from clients.',
      labelNames: ['listener'],
      registers,
      collect: sync,
    });
    this.messagesOut = new Counter({
      name: `${METRICS_PREFIX}messages_sent_total`,
      help: 'Messages sent to clients (one per recipient).',
      labelNames: ['listener'],
      registers,
      collect: sync,
    });
    this.bytesOut = new Counter({
      name: `${METRICS_PREFIX}sent_bytes_total`,
      help: 'Payload bytes sent to clients (per recipient).',
      labelNames: ['listener'],
      registers,
      collect: sync,
    });
    this.closes = new Counter({
      name: `${METRICS_PREFIX}closes_total`,
      help:
        'Closed sessions by reason: what the listener enforced (rate_limit, slow_consumer, token_expired, ...), ' +
        'or peer / abnormal.',
      labelNames: ['listener', 'reason'],
      registers,
    });
    this.refreshes = new Counter({
      name: `${METRICS_PREFIX}token_refreshes_total`,
      help: 'In-band token refreshes by result.',
      labelNames: ['listener', 'result'],
      registers,
    });
    this.jwksFetches = new Counter({
      name: `${METRICS_PREFIX}jwks_fetches_total`,
      help: 'JWKS key set fetches.',
      labelNames: ['listener'],
      registers,
      collect: sync,
    });
    this.jwksFailures = new Counter({
      name: `${METRICS_PREFIX}jwks_fetch_failures_total`,
      help: 'JWKS key set fetches that failed (error, timeout, non-200, unusable body).',
      labelNames: ['listener'],
      registers,
      collect: sync,
    });
    this.clusterPublished = new Counter({
      name: `${METRICS_PREFIX}cluster_published_total`,
      help: 'Deliveries published to the other instances through Redis.',
      labelNames: ['listener'],
      registers,
      collect: sync,
    });
    this.clusterReceived = new Counter({
      name: `${METRICS_PREFIX}cluster_received_total`,
      help: 'Deliveries received from the other instances.',
      labelNames: ['listener'],
      registers,
      collect: sync,
    });
    this.clusterSkipped = new Counter({
      name: `${METRICS_PREFIX}cluster_skipped_total`,
      help: 'Deliveries not published because Redis was unavailable (delivered locally only).',
      labelNames: ['listener'],
      registers,
      collect: sync,
    });
    this.clusterUnroutable = new Counter({
      name: `${METRICS_PREFIX}cluster_unroutable_total`,
      help: 'Replies for a session that no instance holds (dropped).',
      labelNames: ['listener'],
      registers,
      collect: sync,
    });
    this.clusterLag = new Histogram({
      name: `${METRICS_PREFIX}cluster_lag_seconds`,
      help: "Time from a delivery's publication on one instance to its receipt on another (publisher's clock).",
      labelNames: ['listener'],
      buckets: CLUSTER_LAG_BUCKETS,
      registers,
    });
    new Gauge({
      name: `${METRICS_PREFIX}client_connections`,
      help: 'Outbound client connections by state (idle, connecting, open, closed, waiting to reconnect).',
      labelNames: ['url', 'state'],
      registers,
      collect() {
        this.reset();
        for (const c of clients.values())
          for (const state of CLIENT_STATES) this.inc({ url: c.url, state }, c.state === state ? 1 : 0);
      },
    });
    this.clientReconnects = new Counter({
      name: `${METRICS_PREFIX}client_reconnects_total`,
      help: 'Reconnect attempts scheduled by outbound clients.',
      labelNames: ['url'],
      registers,
    });
    this.clientMessagesIn = new Counter({
      name: `${METRICS_PREFIX}client_messages_received_total`,
      help: 'Messages received by outbound clients.',
      labelNames: ['url'],
      registers,
    });
  }

  /** The Prometheus text exposition of every metric (what the endpoint answers). */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /**
   * Counts what `listener` does from now on, labelled with its path (the full request path). The
   * returned function stops watching; the verifier's and the bus's last counts are taken first.
   */
  watchListener(listener: WebSocketListener, options: WatchListenerOptions = {}): () => void {
    const listenerLabel = { listener: listener.path };
    const watched: WatchedListener = {
      listener,
      path: listener.path,
      perTenant: options.perTenant === true,
      maxTenants: Math.max(1, Math.floor(options.maxTenants ?? DEFAULT_MAX_TENANTS)),
      seen: { fetches: 0, fetchFailures: 0, published: 0, skipped: 0, received: 0, unroutable: 0 },
      // Counted from now on, like everything else here.
      traffic: { ...listener.traffic },
    };
    const handshakesAccepted = this.handshakes.labels({ ...listenerLabel, result: 'accepted', category: 'none' });
    // Zero series from the start, so a dashboard sees a listener before its first event.
    for (const counter of [this.messagesIn, this.bytesIn, this.messagesOut, this.bytesOut])
      counter.inc(listenerLabel, 0);
    handshakesAccepted.inc(0);
    const enforcedReasons = new WeakMap<ListenerSession, SessionCloseCode>();

    const onOpen = (): void => handshakesAccepted.inc();
    const onRefused = (err: HandshakeError): void => {
      this.handshakes.inc({ ...listenerLabel, result: 'refused', category: String(err.code).toLowerCase() });
    };
    const onEnforced = (session: ListenerSession, reason: SessionCloseCode): void => {
      // The first reason is the cause; anything later is the same session being cut again.
      if (!enforcedReasons.has(session)) enforcedReasons.set(session, reason);
    };
    const onRefresh = (_session: ListenerSession, result: RefreshOutcome): void => {
      this.recordRefresh(listener.path, result);
    };
    const onClose = (session: ListenerSession, code: number): void => {
      const enforced = enforcedReasons.get(session);
      this.closes.inc({ ...listenerLabel, reason: enforced ? enforced.toLowerCase() : peerReason(code) });
    };
    listener.on('open', onOpen);
    listener.on('refused', onRefused);
    listener.on('enforced', onEnforced);
    listener.on('close', onClose);
    listener.on('refresh', onRefresh);
    const bus = lagSource(listener);
    const lag = bus ? this.clusterLag.labels(listenerLabel) : undefined;
    const onLag = (seconds: number): void => lag?.observe(seconds);
    bus?.on('lag', onLag);
    this.listeners.add(watched);
    return () => {
      if (!this.listeners.delete(watched)) return;
      this.syncCounters(watched);
      bus?.off('lag', onLag);
      listener.off('open', onOpen);
      listener.off('refused', onRefused);
      listener.off('enforced', onEnforced);
      listener.off('close', onClose);
      listener.off('refresh', onRefresh);
    };
  }

  /**
   * Counts one in-band token refresh of a session of the listener at `listenerPath`: the hook the
   * refresh handling calls with its outcome.
   */
  recordRefresh(listenerPath: string, result: RefreshOutcome): void {
    this.refreshes.inc({ listener: listenerPath, result });
  }

  /** Reports `connection`'s state and reconnects under `url` (its display URL: no token, no query). */
  watchClient(connection: OutboundConnection, url: string = connection.displayUrl): () => void {
    const watched: WatchedClient = { url, state: 'idle' };
    const reconnects = this.clientReconnects.labels({ url });
    const messagesIn = this.clientMessagesIn.labels({ url });
    reconnects.inc(0);
    messagesIn.inc(0);
    const onConnecting = (): void => {
      watched.state = 'connecting';
    };
    const onOpen = (): void => {
      watched.state = 'open';
    };
    const onClose = (): void => {
      watched.state = 'closed';
    };
    const onReconnecting = (): void => {
      watched.state = 'waiting';
      reconnects.inc();
    };
    const onMessage = (): void => messagesIn.inc();
    connection.on('connecting', onConnecting);
    connection.on('open', onOpen);
    connection.on('close', onClose);
    connection.on('reconnecting', onReconnecting);
    connection.on('message', onMessage);
    this.clients.set(connection, watched);
    return () => {
      if (this.clients.get(connection) !== watched) return;
      this.clients.delete(connection);
      connection.off('connecting', onConnecting);
      connection.off('open', onOpen);
      connection.off('close', onClose);
      connection.off('reconnecting', onReconnecting);
      connection.off('message', onMessage);
    };
  }

  /** Adds the traffic and what the verifier and the cluster bus counted since the last look. */
  private syncCounters(w: WatchedListener): void {
    const label = { listener: w.path };
    const seen = w.traffic;
    const now = w.listener.traffic;
    seen.messagesIn = addDelta(this.messagesIn, label, now.messagesIn, seen.messagesIn);
    seen.bytesIn = addDelta(this.bytesIn, label, now.bytesIn, seen.bytesIn);
    seen.messagesOut = addDelta(this.messagesOut, label, now.messagesOut, seen.messagesOut);
    seen.bytesOut = addDelta(this.bytesOut, label, now.bytesOut, seen.bytesOut);
    const verifier = w.listener.verifier;
    if (verifier.mode === 'jwks') {
      w.seen.fetches = addDelta(this.jwksFetches, label, verifier.keySetFetches, w.seen.fetches);
      w.seen.fetchFailures = addDelta(
        this.jwksFailures,
        label,
        verifier.keySetFetchFailures ?? 0,
        w.seen.fetchFailures,
      );
    }
    const stats = clusterStats(w.listener);
    if (stats) {
      w.seen.published = addDelta(this.clusterPublished, label, stats.published, w.seen.published);
      w.seen.skipped = addDelta(this.clusterSkipped, label, stats.skipped, w.seen.skipped);
      w.seen.received = addDelta(this.clusterReceived, label, stats.received, w.seen.received);
      w.seen.unroutable = addDelta(this.clusterUnroutable, label, stats.unroutable ?? 0, w.seen.unroutable);
    }
  }
}

/** Adds `current - seen` to `counter` (at least creating the series); returns the new `seen`. */
function addDelta(counter: Counter<'listener'>, label: { listener: string }, current: number, seen: number): number {
  counter.inc(label, Math.max(0, current - seen));
  return Math.max(current, seen);
}

/**
 * Open sessions per tenant: the `max` largest tenants (ties by name), the rest summed under `other`
 * (a tenant that is itself called "other" is added to the same series).
 */
export function tenantCounts(listener: WebSocketListener, max: number): Map<string, number> {
  const registry = listener.registry;
  const all: Array<[string, number]> = [];
  for (const tenant of registry.tenants()) {
    const count = registry.countForTenant(tenant);
    if (count > 0) all.push([tenant, count]);
  }
  const out = new Map<string, number>();
  if (all.length > max) all.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  for (let i = 0; i < all.length; i++) {
    const [tenant, count] = all[i];
    const key = i < max ? tenant : OTHER_TENANTS;
    out.set(key, (out.get(key) ?? 0) + count);
  }
  return out;
}

let shared: WebSocketPlusMetrics | undefined;

/** The package's one metrics registry in this process (what the admin endpoint serves). */
export function packageMetrics(): WebSocketPlusMetrics {
  shared ??= new WebSocketPlusMetrics();
  return shared;
}

/** packageMetrics().watchListener: the one line a listener config node needs. */
export function watchListener(listener: WebSocketListener, options?: WatchListenerOptions): () => void {
  return packageMetrics().watchListener(listener, options);
}

/** packageMetrics().watchClient: the one line a client config node needs. */
export function watchClient(connection: OutboundConnection, url?: string): () => void {
  return packageMetrics().watchClient(connection, url);
}
