/**
 * Scale-out through Redis pub/sub: tenant and global deliveries made on one Node-RED instance reach
 * the connections held by the other instances of the same listener, and only the instances that
 * need them.
 *
 * Design (documented for users in docs/cluster.md):
 * - Channels, under a prefix that defaults to `wsplus:<listener path>` (two listeners never share
 *   one):
 *   - `<prefix>:global`: global-scope deliveries (subscribed by global-scope listeners only);
 *   - `<prefix>:t:<tenant hash>`: one per tenant, subscribed while this instance holds at least one
 *     session of that tenant (tenant scope). The hash is the first 22 characters of the base64url
 *     SHA-256 of the tenant id's UTF-8 bytes: any tenant id gives a short channel name of safe
 *     characters, with no `{` `}` that would pin every tenant to one Redis Cluster slot. The
 *     envelope still names the tenant, and a delivery whose tenant does not match the channel's is
 *     dropped, so even a hash collision could only cost a wasted delivery, never a misdelivery.
 *   - `<prefix>:i:<owner tag>`: one per instance; replies to sessions of that instance.
 * - Owner-routed replies: every session id made by a clustered listener begins with its bus's owner
 *   tag (8 random hex digits replacing the first 8 of a random UUID; 90 random bits remain, so ids
 *   stay unguessable). A reply to a session this instance does not hold goes to the owner's channel
 *   only; the owner resolves the tenant from its own handshake record (never from the message). An
 *   id without a tag, with this instance's own tag, or whose channel has no subscriber is counted
 *   as unroutable and reaches nobody.
 * - After its last session of a tenant closes, an instance keeps the tenant's channel for
 *   `tenantLingerMs` (default 30 s): a connection that flaps costs no SUBSCRIBE/UNSUBSCRIBE churn.
 *   Every (re)connection subscribes the current set again.
 * - The publishing instance delivers to its own connections directly and publishes once; it drops
 *   its own echo (by instance id) when it is subscribed to the same channel.
 * - Frames travel as raw bytes in a small binary envelope with a text/binary flag and the publish
 *   time (ms since the epoch, the publisher's clock); every delivery received reports its lag.
 * - Topologies: 'single' (one Redis, PUBLISH/SUBSCRIBE), 'sentinel' (ioredis asks the sentinels for
 *   the master and follows failovers; the same commands), 'cluster' (Redis Cluster ≥ 7 or Valkey,
 *   sharded pub/sub: SPUBLISH/SSUBSCRIBE, so a channel's messages stay on the shard of its slot and
 *   ioredis keeps one subscriber connection per shard).
 * - Two connections (single, sentinel): one publishes (and carries the connection limiter's and the
 *   session control's commands), one subscribes; in cluster mode one ioredis Cluster client does
 *   both (its sharded subscribers are connections of their own). ioredis reconnects by itself;
 *   commands are never queued while Redis is away, so a message published during an outage or a
 *   failover is delivered locally only and never replayed later.
 *
 * ioredis is loaded with require() when a bus is created, so a listener without cluster mode never
 * loads it.
 */
import { EventEmitter } from 'node:events';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Cluster as RedisCluster, ClusterOptions, Redis as RedisClient, RedisOptions } from 'ioredis';
import { bounded } from '../server/timers';

export type ClusterKind = 'tenant' | 'global' | 'session';
export type ClusterState = 'connecting' | 'ready' | 'degraded' | 'closed';
export type ClusterTopology = 'single' | 'cluster' | 'sentinel';

/** What a listener offers the bus: deliveries published by other instances. */
export interface ClusterReceiver {
  /** The listener's routing scope: which channels the bus needs (global, tenants). */
  readonly scope?: 'session' | 'tenant' | 'global';
  /**
   * `tenant`: send to the local connections of tenant `key`. `global`: to every local connection.
   * `session`: a reply for session id `key` of this instance; false when it does not know the
   * session (any more).
   */
  receiveFromCluster(kind: ClusterKind, key: string, frame: Buffer, binary: boolean): boolean | void;
}

/** What a listener needs from the bus. */
export interface ClusterLink {
  readonly instanceId: string;
  attach(receiver: ClusterReceiver): void;
  /** Publishes to the other instances; false when Redis is unavailable (local delivery only). */
  publish(kind: ClusterKind, key: string, frame: Buffer, binary: boolean): boolean;
  /** A new session id that routes replies from the other instances to this one. */
  newSessionId(): string;
  /** The listener now holds a session of `tenantId` (called for its first one). */
  holdTenant(tenantId: string): void;
  /** The listener's last session of `tenantId` closed. */
  releaseTenant(tenantId: string): void;
  /**
   * A handshake of `tenantId` is under way: subscribes the tenant's channel if needed (kept for the
   * linger if no session follows). Resolves once Redis confirmed it, at once when it already has or
   * when Redis is unavailable; never rejects.
   */
  prepareTenant?(tenantId: string): Promise<void> | undefined;
  close(): Promise<void>;
}

export interface ClusterBusOptions {
  /** 'single' (default), 'cluster' (Redis Cluster, sharded pub/sub) or 'sentinel'. */
  topology?: ClusterTopology;
  /**
   * single: one redis:// or rediss:// URL (password, db as ioredis reads them). cluster:
   * comma-separated seed node URLs (user, password and TLS from the first; database 0 only).
   * sentinel: comma-separated sentinel URLs; user, password, db and TLS of the first are the
   * master group's (the data nodes'). In a list, a comma in a password is written %2C.
   */
  url: string;
  /** sentinel: the master group name the sentinels monitor (required there). */
  sentinelName?: string;
  /** sentinel: credentials of the sentinels themselves, when they require any. */
  sentinelUsername?: string;
  sentinelPassword?: string;
  /** Channel and key prefix; see defaultClusterPrefix(). */
  prefix: string;
  instanceId?: string;
  /** How long a tenant's channel stays subscribed after the last local session of it closed. */
  tenantLingerMs?: number;
  /** Longest wait for a TCP/TLS connection to Redis. */
  connectTimeoutMs?: number;
  /**
   * Longest wait for one command's reply (limiter calls, subscribe, the connection's setup and ready
   * check); then it counts as failed.
   */
  commandTimeoutMs?: number;
  /** Upper bound of the reconnect back-off. */
  maxReconnectDelayMs?: number;
  /** Module to load (tests use a missing name to check the error). */
  moduleId?: string;
}

export interface ClusterBusEvents {
  state: [state: ClusterState];
  /** A connection problem (message only, never the URL). The bus keeps reconnecting. */
  connectionError: [error: Error];
  /** A publication that could not be decoded or a receiver that threw. */
  deliveryError: [error: Error];
  /** Seconds from publication to receipt of one delivery from another instance (publisher's clock). */
  lag: [seconds: number];
}

export interface ClusterBusStats {
  published: number;
  /** Not published because Redis was unavailable (delivered locally only). */
  skipped: number;
  /** Deliveries received from the other instances. */
  received: number;
  ownEchoes: number;
  malformed: number;
  /** Replies for a session no instance holds: no owner in the id, or no subscriber on the owner's channel. */
  unroutable: number;
  /** Replies that reached this instance (as the id's owner) for a session it does not know (any more). */
  unknownSessions: number;
  /** Tenant channels subscribed / unsubscribed (each SUBSCRIBE of a channel, resubscriptions included). */
  tenantSubscribes: number;
  tenantUnsubscribes: number;
}

type RedisConstructor = new (...args: unknown[]) => RedisClient;
type ClusterConstructor = new (nodes: { host: string; port: number }[], options: ClusterOptions) => RedisCluster;

const DEFAULT_CONNECT_TIMEOUT_MS = 5000;
const DEFAULT_COMMAND_TIMEOUT_MS = 2000;
const DEFAULT_MAX_RECONNECT_DELAY_MS = 2000;
export const DEFAULT_TENANT_LINGER_MS = 30_000;
const QUIT_TIMEOUT_MS = 1000;
const MAX_PREFIX_LENGTH = 200;
/** Channels per SUBSCRIBE command when a whole set is subscribed again. */
const SUBSCRIBE_BATCH = 500;
const OWNER_TAG = /^([0-9a-f]{8})-/;

/** The default prefix: one per listener path, so two listeners never share channels or keys. */
export function defaultClusterPrefix(fullPath: string): string {
  return `wsplus:${fullPath}`;
}

/** Checks a user-supplied prefix; returns the message of the problem, or undefined. */
export function clusterPrefixProblem(prefix: string): string | undefined {
  if (prefix.length > MAX_PREFIX_LENGTH) return `clusterPrefix longer than ${MAX_PREFIX_LENGTH} characters`;
  // eslint-disable-next-line no-control-regex -- control characters are exactly what it refuses
  if (/[\s\u0000-\u001f\u007f]/.test(prefix)) return 'clusterPrefix must not contain spaces or control characters';
  return undefined;
}

function parseRedisUrl(url: string): URL | string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'Redis URL invalid';
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:')
    return 'Redis URL must start with redis:// or rediss://';
  if (!parsed.hostname) return 'Redis URL has no host';
  return parsed;
}

/**
 * Checks the Redis URL(s) of a topology without echoing them (they may hold a password). single:
 * one URL; cluster and sentinel: one or more, comma-separated.
 */
export function redisUrlProblem(url: string | undefined, topology: ClusterTopology = 'single'): string | undefined {
  if (!url || !url.trim()) return 'Redis URL missing';
  if (topology === 'single') {
    // One URL, read as before (a comma may be part of its password).
    const one = parseRedisUrl(url);
    return typeof one === 'string' ? one : undefined;
  }
  // A list: a comma in a password must be written %2C.
  const parts = url.split(',').map((part) => part.trim());
  const parsed: URL[] = [];
  for (const part of parts) {
    if (!part) return 'Redis URL list has an empty entry';
    const one = parseRedisUrl(part);
    if (typeof one === 'string') return parts.length > 1 ? `${one} (entry ${parsed.length + 1})` : one;
    parsed.push(one);
  }
  if (topology === 'cluster' && parsed.some((u) => u.pathname !== '' && u.pathname !== '/' && u.pathname !== '/0'))
    return 'Redis Cluster has database 0 only: no database in the URL';
  return undefined;
}

/** Checks the sentinel master group name (required in sentinel mode). */
export function sentinelNameProblem(name: string | undefined): string | undefined {
  if (!name) return 'Sentinel master name missing';
  // eslint-disable-next-line no-control-regex -- control characters are exactly what it refuses
  if (name.length > 200 || /[\s\u0000-\u001f\u007f]/.test(name)) return 'Sentinel master name invalid';
  return undefined;
}

interface RedisModule {
  Redis: RedisConstructor;
  Cluster: ClusterConstructor | undefined;
}

function loadModule(moduleId: string): RedisModule {
  let mod: unknown;
  try {
    // An optional dependency, loaded only in cluster mode.
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- optional dependency
    mod = require(moduleId);
  } catch (err) {
    const code = (err as { code?: string }).code ?? 'load error';
    throw new Error(
      `cluster mode needs the "${moduleId}" package, which could not be loaded (${code}); ` +
        'install it next to node-red-contrib-websocket-plus',
    );
  }
  const ctor = (mod as { Redis?: unknown }).Redis ?? (mod as { default?: unknown }).default ?? mod;
  if (typeof ctor !== 'function') throw new Error(`cluster mode: "${moduleId}" does not export a Redis client`);
  const cluster = (mod as { Cluster?: unknown }).Cluster;
  return {
    Redis: ctor as RedisConstructor,
    Cluster: typeof cluster === 'function' ? (cluster as ClusterConstructor) : undefined,
  };
}

/** Loads ioredis on demand; a clear error when it is not installed. */
export function loadRedisModule(moduleId = 'ioredis'): RedisConstructor {
  return loadModule(moduleId).Redis;
}

/** The channel of one tenant: see the file header. */
export function tenantChannel(prefix: string, tenantId: string): string {
  const hash = createHash('sha256').update(tenantId, 'utf8').digest('base64url').slice(0, 22);
  return `${prefix}:t:${hash}`;
}

/** The owner tag a session id carries, or undefined when it carries none. */
export function ownerTagOf(sessionId: string): string | undefined {
  return OWNER_TAG.exec(sessionId)?.[1];
}

// Envelope: version, kind, flags, origin length, origin, publish time (float64 BE, ms since the
// epoch), key length (uint16 BE), key, frame bytes.
const ENVELOPE_VERSION = 2;
const KIND_CODES: Record<ClusterKind, number> = { tenant: 1, global: 2, session: 3 };
const KINDS_BY_CODE: Record<number, ClusterKind | undefined> = { 1: 'tenant', 2: 'global', 3: 'session' };
const FLAG_BINARY = 1;
const MAX_KEY_BYTES = 0xffff;

export function encodeEnvelope(
  origin: string,
  kind: ClusterKind,
  key: string,
  frame: Buffer,
  binary: boolean,
  publishedAt: number = Date.now(),
): Buffer {
  const originBytes = Buffer.from(origin, 'utf8');
  const keyBytes = Buffer.from(key, 'utf8');
  if (originBytes.length > 255) throw new Error('instance id too long');
  if (keyBytes.length > MAX_KEY_BYTES) throw new Error('routing key too long');
  const head = Buffer.allocUnsafe(4 + originBytes.length + 8 + 2);
  head[0] = ENVELOPE_VERSION;
  head[1] = KIND_CODES[kind];
  head[2] = binary ? FLAG_BINARY : 0;
  head[3] = originBytes.length;
  originBytes.copy(head, 4);
  head.writeDoubleBE(publishedAt, 4 + originBytes.length);
  head.writeUInt16BE(keyBytes.length, 4 + originBytes.length + 8);
  return Buffer.concat([head, keyBytes, frame]);
}

interface Envelope {
  origin: string;
  kind: ClusterKind;
  key: string;
  publishedAt: number;
  frame: Buffer;
  binary: boolean;
}

/** Decodes an envelope; undefined when it is not one of ours. The frame is a view, not a copy. */
export function decodeEnvelope(data: Buffer): Envelope | undefined {
  if (data.length < 14 || data[0] !== ENVELOPE_VERSION) return undefined;
  const kind = KINDS_BY_CODE[data[1]];
  if (!kind) return undefined;
  const originEnd = 4 + data[3];
  if (data.length < originEnd + 10) return undefined;
  const publishedAt = data.readDoubleBE(originEnd);
  const keyLength = data.readUInt16BE(originEnd + 8);
  const keyStart = originEnd + 10;
  const keyEnd = keyStart + keyLength;
  if (data.length < keyEnd || !Number.isFinite(publishedAt)) return undefined;
  return {
    origin: data.toString('utf8', 4, originEnd),
    kind,
    key: data.toString('utf8', keyStart, keyEnd),
    publishedAt,
    frame: data.subarray(keyEnd),
    binary: (data[2] & FLAG_BINARY) !== 0,
  };
}

/** What a subscribed channel is for. */
type ChannelRole =
  | { kind: 'global' }
  | { kind: 'session' }
  | { kind: 'tenant'; tenantId: string }
  | { kind: 'side'; handler: (message: Buffer) => void };

interface TenantSubscription {
  channel: string;
  /** Set while no local session of the tenant is left: the unsubscription is due when it fires. */
  linger?: NodeJS.Timeout;
}

/** Seeds, sentinels and credentials read from the URL list of a cluster or sentinel topology. */
function nodeOptions(url: string): { nodes: { host: string; port: number }[]; first: URL } {
  const urls = url.split(',').map((part) => new URL(part.trim()));
  return {
    nodes: urls.map((u) => ({ host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 0) })),
    first: urls[0],
  };
}

function credentials(u: URL): { username?: string; password?: string } {
  return {
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
  };
}

export class ClusterBus extends EventEmitter<ClusterBusEvents> implements ClusterLink {
  readonly instanceId: string;
  readonly prefix: string;
  readonly topology: ClusterTopology;
  /** Starts the id of every session of this instance; replies for those come on `<prefix>:i:<tag>`. */
  readonly ownerTag: string;
  readonly stats: ClusterBusStats = {
    published: 0,
    skipped: 0,
    received: 0,
    ownEchoes: 0,
    malformed: 0,
    unroutable: 0,
    unknownSessions: 0,
    tenantSubscribes: 0,
    tenantUnsubscribes: 0,
  };
  private readonly module: RedisModule;
  private readonly globalChannel: string;
  private readonly ownChannel: string;
  private readonly lingerMs: number;
  /** Every channel this bus wants subscribed, with what it is for. */
  private readonly roles = new Map<string, ChannelRole>();
  /** Tenants with a channel: held now, or lingering after their last session closed. */
  private readonly tenants = new Map<string, TenantSubscription>();
  /** cluster: channels handed to ioredis's sharded subscribers (it subscribes them again itself). */
  private readonly issued = new Set<string>();
  /** cluster: channels dropped while the cluster was away; unsubscribed at the next ready. */
  private readonly dropped = new Set<string>();
  /** Channels Redis confirmed on the current connection(s). */
  private readonly confirmed = new Set<string>();
  /** Subscriptions sent one by one and not answered yet (what a handshake may wait for). */
  private readonly confirming = new Map<string, Promise<void>>();
  private publisher: RedisClient | undefined;
  private subscriber: RedisClient | undefined;
  private receiver: ClusterReceiver | undefined;
  private subscribed = false;
  /** Set once the bus has been fully ready or has failed: from then on "not ready" is "degraded". */
  private settled = false;
  private currentState: ClusterState = 'connecting';
  private closePromise: Promise<void> | undefined;
  /** Clients that ended without close(), waiting to connect again. */
  private readonly revivals = new Map<RedisClient, NodeJS.Timeout>();

  constructor(private readonly options: ClusterBusOptions) {
    super();
    this.topology = options.topology ?? 'single';
    const urlProblem = redisUrlProblem(options.url, this.topology);
    if (urlProblem) throw new Error(urlProblem);
    if (this.topology === 'sentinel') {
      const nameProblem = sentinelNameProblem(options.sentinelName);
      if (nameProblem) throw new Error(nameProblem);
    }
    const prefixProblem = clusterPrefixProblem(options.prefix);
    if (prefixProblem) throw new Error(prefixProblem);
    this.module = loadModule(options.moduleId ?? 'ioredis');
    if (this.topology === 'cluster' && !this.module.Cluster)
      throw new Error('cluster mode: the Redis client package has no Cluster client');
    this.instanceId = options.instanceId ?? randomUUID();
    this.prefix = options.prefix;
    this.ownerTag = randomBytes(4).toString('hex');
    this.globalChannel = `${this.prefix}:global`;
    this.ownChannel = `${this.prefix}:i:${this.ownerTag}`;
    this.lingerMs = Math.max(0, options.tenantLingerMs ?? DEFAULT_TENANT_LINGER_MS);
  }

  get state(): ClusterState {
    return this.currentState;
  }

  /** The command connection when it is usable right now (the limiter's and session control's way to Redis). */
  get commands(): RedisClient | undefined {
    return this.publisher?.status === 'ready' ? this.publisher : undefined;
  }

  /** Tenants whose channel this instance is subscribed to (held or lingering). */
  get subscribedTenants(): number {
    return this.tenants.size;
  }

  /** Whether Redis has confirmed this instance's subscription to the tenant's channel. */
  isSubscribed(tenantId: string): boolean {
    const entry = this.tenants.get(tenantId);
    return entry !== undefined && this.confirmed.has(entry.channel);
  }

  /** Connects and starts handing other instances' deliveries to `receiver`. */
  attach(receiver: ClusterReceiver): void {
    if (this.closePromise) throw new Error('cluster bus closed');
    if (this.receiver) throw new Error('cluster bus already attached');
    this.receiver = receiver;
    const scope = receiver.scope;
    if (scope === 'global' || scope === undefined) this.roles.set(this.globalChannel, { kind: 'global' });
    if (scope !== 'global') this.roles.set(this.ownChannel, { kind: 'session' });
    if (this.topology === 'cluster') {
      const cluster = this.connectCluster();
      this.publisher = cluster;
      this.subscriber = cluster;
      cluster.on('smessageBuffer', (channel: Buffer, message: Buffer) => this.onMessage(channel, message));
    } else {
      this.publisher = this.connect('pub');
      this.subscriber = this.connect('sub');
      this.subscriber.on('messageBuffer', (channel: Buffer, message: Buffer) => this.onMessage(channel, message));
    }
    const subscriber = this.subscriber;
    subscriber.on('ready', () => this.subscribeAll(subscriber));
    for (const event of ['close', 'end', 'reconnecting'] as const) {
      subscriber.on(event, () => {
        this.subscribed = false;
        this.confirmed.clear();
        this.updateState();
      });
    }
  }

  /**
   * On every (re)connection: subscribes the whole current set (cluster: the channels ioredis does
   * not know yet; it subscribes the others again itself). The bus is ready once Redis confirmed.
   */
  private subscribeAll(subscriber: RedisClient): void {
    const channels = [...this.roles.keys()].filter((c) => this.topology !== 'cluster' || !this.issued.has(c));
    if (this.topology === 'cluster' && this.dropped.size > 0) {
      const dropped = [...this.dropped];
      this.dropped.clear();
      this.unsubscribe(dropped);
    }
    for (const channel of channels) if (this.roles.get(channel)?.kind === 'tenant') this.stats.tenantSubscribes++;
    this.subscribe(subscriber, channels).then(
      () => {
        this.subscribed = subscriber.status === 'ready';
        if (this.subscribed) {
          // cluster: the channels ioredis subscribed again itself are taken as confirmed too.
          for (const channel of this.roles.keys()) this.confirmed.add(channel);
        }
        this.updateState();
      },
      (err: Error) => {
        // e.g. an ACL that forbids the channels: not ready, and said so.
        this.settled = true;
        this.updateState();
        if (this.closePromise) return;
        this.emit('connectionError', err);
        // No answer at all is a connection problem, not a refusal: a fresh connection may get one.
        if (/timed out/i.test(err.message) && subscriber.status === 'ready') subscriber.disconnect(true);
      },
    );
  }

  private subscribe(subscriber: RedisClient, channels: string[]): Promise<unknown> {
    if (channels.length === 0) return Promise.resolve();
    if (this.topology === 'cluster') {
      // Sharded subscriptions: all channels of one SSUBSCRIBE must share a slot, so one each.
      const cluster = subscriber as unknown as RedisCluster;
      for (const channel of channels) this.issued.add(channel);
      return Promise.all(channels.map((channel) => cluster.ssubscribe(channel)));
    }
    const batches: Promise<unknown>[] = [];
    for (let i = 0; i < channels.length; i += SUBSCRIBE_BATCH)
      batches.push(subscriber.subscribe(...channels.slice(i, i + SUBSCRIBE_BATCH)));
    return Promise.all(batches);
  }

  private unsubscribe(channels: string[]): void {
    const subscriber = this.subscriber;
    if (!subscriber || this.closePromise) return;
    const onError = (err: Error): void => {
      if (!this.closePromise) this.emit('connectionError', err);
    };
    if (this.topology === 'cluster') {
      const cluster = subscriber as unknown as RedisCluster;
      for (const channel of channels) {
        this.issued.delete(channel);
        // While the cluster is away ioredis would keep the channel and subscribe it again.
        if (cluster.status !== 'ready') this.dropped.add(channel);
        else cluster.sunsubscribe(channel).catch(onError);
      }
      return;
    }
    // A connection that is not ready subscribes only the current set when it is back.
    if (subscriber.status === 'ready') subscriber.unsubscribe(...channels).catch(onError);
  }

  /** Subscribes one more channel now if connected (else the next connection does). */
  private want(channel: string, role: ChannelRole): void {
    this.roles.set(channel, role);
    this.dropped.delete(channel);
    const subscriber = this.subscriber;
    if (!subscriber || subscriber.status !== 'ready' || this.closePromise) return;
    if (role.kind === 'tenant') this.stats.tenantSubscribes++;
    const confirming = this.subscribe(subscriber, [channel]).then(
      () => {
        if (this.roles.has(channel) && subscriber.status === 'ready') this.confirmed.add(channel);
      },
      (err: Error) => {
        if (this.closePromise) return;
        this.emit('connectionError', err);
        if (/timed out/i.test(err.message) && subscriber.status === 'ready') subscriber.disconnect(true);
      },
    );
    this.confirming.set(channel, confirming);
    void confirming.finally(() => {
      if (this.confirming.get(channel) === confirming) this.confirming.delete(channel);
    });
  }

  private connectionOptions(role: string): RedisOptions {
    const commandTimeout = this.options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    return {
      connectionName: `wsplus-${role}-${this.instanceId}`,
      connectTimeout: this.options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      // connectTimeout ends at TCP connect, so a Redis that accepts and never answers is only
      // noticed by the setup commands and the ready check timing out (ioredis then reconnects).
      // Without it the subscriber would wait on such a connection forever.
      commandTimeout,
      autoResubscribe: false,
      autoResendUnfulfilledCommands: false,
      maxRetriesPerRequest: 0,
    };
  }

  private connect(role: 'pub' | 'sub'): RedisClient {
    const maxDelay = this.options.maxReconnectDelayMs ?? DEFAULT_MAX_RECONNECT_DELAY_MS;
    const options: RedisOptions = {
      ...this.connectionOptions(role),
      // Never queue while Redis is away: a message is published now or delivered locally only.
      enableOfflineQueue: false,
      retryStrategy: (times: number) => Math.min(100 * times, maxDelay),
      lazyConnect: false,
    };
    let client: RedisClient;
    if (this.topology === 'sentinel') {
      const { nodes, first } = nodeOptions(this.options.url);
      const db = Number(first.pathname.slice(1) || 0);
      const tls = first.protocol === 'rediss:';
      client = new this.module.Redis({
        ...options,
        ...credentials(first),
        db: Number.isInteger(db) ? db : 0,
        sentinels: nodes.map((n) => ({ host: n.host, port: n.port || 26379 })),
        name: this.options.sentinelName,
        sentinelUsername: this.options.sentinelUsername,
        sentinelPassword: this.options.sentinelPassword,
        sentinelRetryStrategy: (times: number) => Math.min(100 * times, maxDelay),
        sentinelCommandTimeout: options.commandTimeout,
        // A master demoted without dying answers writes with READONLY: ask the sentinels again.
        // (ioredis's failoverDetector is not used: a +switch-master that arrives while a client is
        // connecting ends that client for good.)
        reconnectOnError: (err: Error) => /^READONLY/.test(err.message),
        ...(tls ? { tls: {}, enableTLSForSentinelMode: true } : {}),
      } as RedisOptions);
    } else {
      client = new this.module.Redis(this.options.url, options);
    }
    this.watch(client);
    return client;
  }

  private connectCluster(): RedisClient {
    const maxDelay = this.options.maxReconnectDelayMs ?? DEFAULT_MAX_RECONNECT_DELAY_MS;
    const { nodes, first } = nodeOptions(this.options.url);
    const base = this.connectionOptions('cluster');
    const cluster = new this.module.Cluster!(
      nodes.map((n) => ({ host: n.host, port: n.port || 6379 })),
      {
        // Never queue while Redis is away: a message is published now or delivered locally only.
        enableOfflineQueue: false,
        enableReadyCheck: true,
        shardedSubscribers: true,
        clusterRetryStrategy: (times: number) => Math.min(100 * times, maxDelay),
        slotsRefreshTimeout: base.commandTimeout,
        lazyConnect: false,
        redisOptions: {
          ...base,
          ...credentials(first),
          ...(first.protocol === 'rediss:' ? { tls: {} } : {}),
        },
      },
    );
    // The Cluster client offers the same commands as a single connection (single-key commands are
    // routed to their slot's master), which is all the limiter and the session control use.
    const client = cluster as unknown as RedisClient;
    this.watch(client);
    return client;
  }

  private watch(client: RedisClient): void {
    client.on('error', (err: Error) => {
      this.settled = true;
      this.updateState();
      if (this.currentState !== 'closed') this.emit('connectionError', err);
    });
    for (const event of ['ready', 'close', 'end', 'reconnecting'] as const) client.on(event, () => this.updateState());
    client.on('end', () => {
      // The retry strategies never give up, but ioredis ends a client whose connector failed while
      // connecting (e.g. the sentinels' answer cut short): connect it again, after the back-off.
      if (this.closePromise || this.revivals.has(client)) return;
      const timer = setTimeout(() => {
        this.revivals.delete(client);
        if (!this.closePromise && client.status === 'end') client.connect().catch(() => undefined);
      }, this.options.maxReconnectDelayMs ?? DEFAULT_MAX_RECONNECT_DELAY_MS);
      timer.unref();
      this.revivals.set(client, timer);
    });
  }

  private updateState(): void {
    let next: ClusterState;
    if (this.closePromise) next = 'closed';
    else if (this.publisher?.status === 'ready' && this.subscribed) {
      next = 'ready';
      this.settled = true;
    } else next = this.settled ? 'degraded' : 'connecting';
    if (next === this.currentState) return;
    this.currentState = next;
    this.emit('state', next);
  }

  newSessionId(): string {
    // A flat string (see newSessionId in the listener): the concatenation would be a tree of parts.
    return Buffer.from(this.ownerTag + randomUUID().slice(8), 'latin1').toString('latin1');
  }

  holdTenant(tenantId: string): void {
    if (this.closePromise || !this.wantsTenants()) return;
    const entry = this.tenants.get(tenantId);
    if (entry) {
      // Back within the linger: still subscribed, nothing to send.
      if (entry.linger) clearTimeout(entry.linger);
      entry.linger = undefined;
      return;
    }
    const channel = tenantChannel(this.prefix, tenantId);
    this.tenants.set(tenantId, { channel });
    this.want(channel, { kind: 'tenant', tenantId });
  }

  prepareTenant(tenantId: string): Promise<void> | undefined {
    if (this.closePromise || !this.wantsTenants()) return undefined;
    let entry = this.tenants.get(tenantId);
    if (!entry) {
      // Subscribed as if its last session had just closed: the session, when it comes, holds it;
      // a handshake that fails leaves it to the linger.
      this.holdTenant(tenantId);
      this.releaseTenant(tenantId);
      entry = this.tenants.get(tenantId);
    }
    return entry ? this.confirming.get(entry.channel) : undefined;
  }

  releaseTenant(tenantId: string): void {
    const entry = this.tenants.get(tenantId);
    if (!entry || entry.linger || this.closePromise) return;
    entry.linger = setTimeout(() => this.dropTenant(tenantId), this.lingerMs);
    entry.linger.unref();
  }

  private dropTenant(tenantId: string): void {
    const entry = this.tenants.get(tenantId);
    if (!entry) return;
    this.tenants.delete(tenantId);
    this.roles.delete(entry.channel);
    this.confirmed.delete(entry.channel);
    this.stats.tenantUnsubscribes++;
    this.unsubscribe([entry.channel]);
  }

  /** Tenant channels serve tenant-scope listeners only. */
  private wantsTenants(): boolean {
    const scope = this.receiver?.scope;
    return scope === 'tenant' || scope === undefined;
  }

  publish(kind: ClusterKind, key: string, frame: Buffer, binary: boolean): boolean {
    const publisher = this.commands;
    // Only a ready bus publishes: while degraded (either connection down, or one about to notice
    // it is) delivery is local only, as documented, rather than a write to a dying connection.
    if (!publisher || this.closePromise || this.currentState !== 'ready') {
      this.stats.skipped++;
      return false;
    }
    let channel: string;
    if (kind === 'global') channel = this.globalChannel;
    else if (kind === 'tenant') channel = this.tenants.get(key)?.channel ?? tenantChannel(this.prefix, key);
    else {
      const owner = ownerTagOf(key);
      // No owner, or this instance itself (which does not know the session): nobody has it.
      if (owner === undefined || owner === this.ownerTag || Buffer.byteLength(key) > MAX_KEY_BYTES) {
        this.stats.unroutable++;
        return false;
      }
      channel = `${this.prefix}:i:${owner}`;
    }
    let envelope: Buffer;
    try {
      envelope = encodeEnvelope(this.instanceId, kind, key, frame, binary);
    } catch {
      this.stats.skipped++;
      return false;
    }
    const sent =
      this.topology === 'cluster'
        ? (publisher as unknown as RedisCluster).spublish(channel, envelope)
        : publisher.publish(channel, envelope);
    sent.then(
      (receivers) => {
        // Redis counts the subscribers it handed the message to: none means no owner is listening.
        if (kind === 'session' && Number(receivers) === 0) this.stats.unroutable++;
      },
      (err: Error) => {
        if (!this.closePromise) this.emit('connectionError', err);
      },
    );
    this.stats.published++;
    return true;
  }

  /**
   * Also receives `<prefix>:<name>` (a channel of its own, not a delivery kind) and hands every
   * message on it, own ones included, to `handler`. Subscribed with the delivery channels, now and
   * on every reconnection.
   */
  onSideChannel(name: string, handler: (message: Buffer) => void): void {
    if (name === 'global' || /^[ti]:/.test(name)) throw new Error(`${name} is a delivery channel`);
    this.want(`${this.prefix}:${name}`, { kind: 'side', handler });
  }

  /** Publishes `message` on `<prefix>:<name>`; false when the bus is not ready (nothing is queued). */
  publishSide(name: string, message: Buffer | string): boolean {
    const publisher = this.commands;
    if (!publisher || this.closePromise || this.currentState !== 'ready') return false;
    const channel = `${this.prefix}:${name}`;
    const sent =
      this.topology === 'cluster'
        ? (publisher as unknown as RedisCluster).spublish(channel, message)
        : publisher.publish(channel, message);
    sent.catch((err: Error) => {
      if (!this.closePromise) this.emit('connectionError', err);
    });
    return true;
  }

  private onMessage(channel: Buffer, message: Buffer): void {
    if (this.closePromise) return;
    const role = this.roles.get(channel.toString('utf8'));
    // A channel given up a moment ago: its last messages are nobody's.
    if (!role) return;
    if (role.kind === 'side') {
      try {
        role.handler(message);
      } catch (err) {
        this.emit('deliveryError', err instanceof Error ? err : new Error(String(err)));
      }
      return;
    }
    const receiver = this.receiver;
    if (!receiver) return;
    const envelope = decodeEnvelope(message);
    if (
      !envelope ||
      envelope.kind !== role.kind ||
      (role.kind === 'tenant' && envelope.key !== role.tenantId) ||
      (role.kind === 'session' && ownerTagOf(envelope.key) !== this.ownerTag)
    ) {
      this.stats.malformed++;
      this.emit('deliveryError', new Error('undecodable cluster message dropped'));
      return;
    }
    if (envelope.origin === this.instanceId) {
      // Already delivered locally when it was published.
      this.stats.ownEchoes++;
      return;
    }
    this.stats.received++;
    this.emit('lag', Math.max(0, Date.now() - envelope.publishedAt) / 1000);
    try {
      const known = receiver.receiveFromCluster(envelope.kind, envelope.key, envelope.frame, envelope.binary);
      if (envelope.kind === 'session' && known === false) this.stats.unknownSessions++;
    } catch (err) {
      this.emit('deliveryError', err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** Closes the connections and stops reconnecting; no timer or socket is left behind. */
  close(): Promise<void> {
    if (!this.closePromise) {
      for (const entry of this.tenants.values()) if (entry.linger) clearTimeout(entry.linger);
      for (const timer of this.revivals.values()) clearTimeout(timer);
      this.revivals.clear();
      const clients = new Set([this.publisher, this.subscriber]);
      this.closePromise = Promise.all([...clients].map((client) => closeClient(client))).then(() => undefined);
      this.subscribed = false;
      this.updateState();
    }
    return this.closePromise;
  }
}

async function closeClient(client: RedisClient | undefined): Promise<void> {
  if (!client || client.status === 'end') return;
  // QUIT lets replies still in flight (the limiter's last writes) arrive first.
  if (client.status === 'ready') await bounded(client.quit(), QUIT_TIMEOUT_MS);
  const status = client.status as string;
  if (status === 'end') return;
  if (status === 'reconnecting') {
    // Between attempts there is no socket: dropping the pending retry is all there is to do.
    client.disconnect(false);
    return;
  }
  const ended = new Promise<void>((resolve) => client.once('end', () => resolve()));
  client.disconnect(false);
  await bounded(ended, QUIT_TIMEOUT_MS);
}
