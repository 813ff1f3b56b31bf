/**
 * Scale-out through Redis pub/sub: tenant and global deliveries made on one Node-RED instance reach
 * the connections held by every other instance of the same listener.
 *
 * Design (documented for users in docs/cluster.md):
 * - Channels are `<prefix>:tenant`, `<prefix>:global` and `<prefix>:session`; the prefix defaults
 *   to `wsplus:<listener path>`, so two listeners never share a channel.
 * - The publishing instance delivers to its own connections directly and publishes once; every
 *   instance receives the publication, and each drops its own echo by instance id.
 * - A tenant publication names the tenant that the publishing instance read from its own handshake
 *   record (never a message field). A session that is not known locally is published on
 *   `<prefix>:session` as a "route by session id" request: only the instance that owns the session
 *   (live or recently closed) acts on it, with its own record.
 * - Frames travel as raw bytes in a small binary envelope with a text/binary flag, so a Buffer
 *   arrives as a binary frame and a string as the same text frame.
 * - Two connections: one publishes (and carries the connection limiter's commands), one
 *   subscribes. ioredis reconnects by itself; commands are never queued while Redis is away, so a
 *   message published during an outage is delivered locally only and never replayed later.
 *
 * ioredis is loaded with require() when a bus is created, so a listener without cluster mode never
 * loads it.
 */
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import type { Redis as RedisClient, RedisOptions } from 'ioredis';
import { bounded } from '../server/timers';

export type ClusterKind = 'tenant' | 'global' | 'session';
export type ClusterState = 'connecting' | 'ready' | 'degraded' | 'closed';

/** What a listener offers the bus: deliveries published by other instances. */
export interface ClusterReceiver {
  /**
   * `tenant`: send to the local connections of tenant `key`. `global`: to every local connection.
   * `session`: a route request for session id `key`; only the owner of that session acts on it.
   */
  receiveFromCluster(kind: ClusterKind, key: string, frame: Buffer, binary: boolean): void;
}

/** What a listener needs from the bus. */
export interface ClusterLink {
  readonly instanceId: string;
  attach(receiver: ClusterReceiver): void;
  /** Publishes to the other instances; false when Redis is unavailable (local delivery only). */
  publish(kind: ClusterKind, key: string, frame: Buffer, binary: boolean): boolean;
  close(): Promise<void>;
}

export interface ClusterBusOptions {
  /** redis:// or rediss:// URL (password, db as ioredis reads them). */
  url: string;
  /** Channel and key prefix; see defaultClusterPrefix(). */
  prefix: string;
  instanceId?: string;
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
}

export interface ClusterBusStats {
  published: number;
  /** Not published because Redis was unavailable (delivered locally only). */
  skipped: number;
  received: number;
  ownEchoes: number;
  malformed: number;
}

type RedisConstructor = new (url: string, options: RedisOptions) => RedisClient;

const DEFAULT_CONNECT_TIMEOUT_MS = 5000;
const DEFAULT_COMMAND_TIMEOUT_MS = 2000;
const DEFAULT_MAX_RECONNECT_DELAY_MS = 2000;
const QUIT_TIMEOUT_MS = 1000;
const MAX_PREFIX_LENGTH = 200;

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

/** Checks a Redis URL without echoing it (it may hold a password). */
export function redisUrlProblem(url: string | undefined): string | undefined {
  if (!url) return 'Redis URL missing';
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'Redis URL invalid';
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:')
    return 'Redis URL must start with redis:// or rediss://';
  if (!parsed.hostname) return 'Redis URL has no host';
  return undefined;
}

/** Loads ioredis on demand; a clear error when it is not installed. */
export function loadRedisModule(moduleId = 'ioredis'): RedisConstructor {
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
  return ctor as RedisConstructor;
}

// Envelope: version, kind, flags, origin length, origin, key length (uint16 BE), key, frame bytes.
const ENVELOPE_VERSION = 1;
const KIND_CODES: Record<ClusterKind, number> = { tenant: 1, global: 2, session: 3 };
const KINDS_BY_CODE: Record<number, ClusterKind | undefined> = { 1: 'tenant', 2: 'global', 3: 'session' };
const FLAG_BINARY = 1;
const MAX_KEY_BYTES = 0xffff;

export function encodeEnvelope(origin: string, kind: ClusterKind, key: string, frame: Buffer, binary: boolean): Buffer {
  const originBytes = Buffer.from(origin, 'utf8');
  const keyBytes = Buffer.from(key, 'utf8');
  if (originBytes.length > 255) throw new Error('instance id too long');
  if (keyBytes.length > MAX_KEY_BYTES) throw new Error('routing key too long');
  const head = Buffer.allocUnsafe(4 + originBytes.length + 2);
  head[0] = ENVELOPE_VERSION;
  head[1] = KIND_CODES[kind];
  head[2] = binary ? FLAG_BINARY : 0;
  head[3] = originBytes.length;
  originBytes.copy(head, 4);
  head.writeUInt16BE(keyBytes.length, 4 + originBytes.length);
  return Buffer.concat([head, keyBytes, frame]);
}

interface Envelope {
  origin: string;
  kind: ClusterKind;
  key: string;
  frame: Buffer;
  binary: boolean;
}

/** Decodes an envelope; undefined when it is not one of ours. The frame is a view, not a copy. */
export function decodeEnvelope(data: Buffer): Envelope | undefined {
  if (data.length < 6 || data[0] !== ENVELOPE_VERSION) return undefined;
  const kind = KINDS_BY_CODE[data[1]];
  if (!kind) return undefined;
  const originEnd = 4 + data[3];
  if (data.length < originEnd + 2) return undefined;
  const keyLength = data.readUInt16BE(originEnd);
  const keyEnd = originEnd + 2 + keyLength;
  if (data.length < keyEnd) return undefined;
  return {
    origin: data.toString('utf8', 4, originEnd),
    kind,
    key: data.toString('utf8', originEnd + 2, keyEnd),
    frame: data.subarray(keyEnd),
    binary: (data[2] & FLAG_BINARY) !== 0,
  };
}

export class ClusterBus extends EventEmitter<ClusterBusEvents> implements ClusterLink {
  readonly instanceId: string;
  readonly prefix: string;
  readonly stats: ClusterBusStats = { published: 0, skipped: 0, received: 0, ownEchoes: 0, malformed: 0 };
  private readonly Redis: RedisConstructor;
  private readonly channels: Record<ClusterKind, string>;
  private readonly kindsByChannel = new Map<string, ClusterKind>();
  private publisher: RedisClient | undefined;
  private subscriber: RedisClient | undefined;
  private receiver: ClusterReceiver | undefined;
  private subscribed = false;
  /** Set once the bus has been fully ready or has failed: from then on "not ready" is "degraded". */
  private settled = false;
  private currentState: ClusterState = 'connecting';
  private closePromise: Promise<void> | undefined;
  /** Side channels `<prefix>:<name>` on the same connections (session control), channel → handler. */
  private readonly sideChannels = new Map<string, (message: Buffer) => void>();

  constructor(private readonly options: ClusterBusOptions) {
    super();
    const urlProblem = redisUrlProblem(options.url);
    if (urlProblem) throw new Error(urlProblem);
    const prefixProblem = clusterPrefixProblem(options.prefix);
    if (prefixProblem) throw new Error(prefixProblem);
    this.Redis = loadRedisModule(options.moduleId);
    this.instanceId = options.instanceId ?? randomUUID();
    this.prefix = options.prefix;
    this.channels = {
      tenant: `${this.prefix}:tenant`,
      global: `${this.prefix}:global`,
      session: `${this.prefix}:session`,
    };
    for (const [kind, channel] of Object.entries(this.channels)) this.kindsByChannel.set(channel, kind as ClusterKind);
  }

  get state(): ClusterState {
    return this.currentState;
  }

  /** The command connection when it is usable right now (the limiter's way to Redis). */
  get commands(): RedisClient | undefined {
    return this.publisher?.status === 'ready' ? this.publisher : undefined;
  }

  /** Connects both connections and starts handing other instances' deliveries to `receiver`. */
  attach(receiver: ClusterReceiver): void {
    if (this.closePromise) throw new Error('cluster bus closed');
    if (this.receiver) throw new Error('cluster bus already attached');
    this.receiver = receiver;
    this.publisher = this.connect('pub');
    this.subscriber = this.connect('sub');
    const subscriber = this.subscriber;
    subscriber.on('messageBuffer', (channel: Buffer, message: Buffer) => this.onMessage(channel, message));
    subscriber.on('ready', () => {
      // Subscribed again on every (re)connection; the bus is ready once Redis has confirmed it.
      subscriber.subscribe(...Object.values(this.channels), ...this.sideChannels.keys()).then(
        () => {
          this.subscribed = subscriber.status === 'ready';
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
    });
    for (const event of ['close', 'end', 'reconnecting'] as const) {
      subscriber.on(event, () => {
        this.subscribed = false;
        this.updateState();
      });
    }
  }

  private connect(role: 'pub' | 'sub'): RedisClient {
    const maxDelay = this.options.maxReconnectDelayMs ?? DEFAULT_MAX_RECONNECT_DELAY_MS;
    const commandTimeout = this.options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    const client = new this.Redis(this.options.url, {
      connectionName: `wsplus-${role}-${this.instanceId}`,
      connectTimeout: this.options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      // On both connections: connectTimeout ends at TCP connect, so a Redis that accepts and never
      // answers is only noticed by the setup commands and the ready check timing out (ioredis then
      // reconnects). Without it the subscriber would wait on such a connection forever.
      commandTimeout,
      // Never queue while Redis is away: a message is published now or delivered locally only.
      enableOfflineQueue: false,
      autoResubscribe: false,
      autoResendUnfulfilledCommands: false,
      maxRetriesPerRequest: 0,
      retryStrategy: (times: number) => Math.min(100 * times, maxDelay),
      lazyConnect: false,
    });
    client.on('error', (err: Error) => {
      this.settled = true;
      this.updateState();
      if (this.currentState !== 'closed') this.emit('connectionError', err);
    });
    for (const event of ['ready', 'close', 'end', 'reconnecting'] as const) client.on(event, () => this.updateState());
    return client;
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

  publish(kind: ClusterKind, key: string, frame: Buffer, binary: boolean): boolean {
    const publisher = this.commands;
    // Only a ready bus publishes: while degraded (either connection down, or one about to notice
    // it is) delivery is local only, as documented, rather than a write to a dying connection.
    if (!publisher || this.closePromise || this.currentState !== 'ready') {
      this.stats.skipped++;
      return false;
    }
    let envelope: Buffer;
    try {
      envelope = encodeEnvelope(this.instanceId, kind, key, frame, binary);
    } catch {
      // A routing key no instance could own (e.g. a session id of 64 KiB from a flow): not sent.
      this.stats.skipped++;
      return false;
    }
    publisher.publish(this.channels[kind], envelope).catch((err: Error) => {
      if (!this.closePromise) this.emit('connectionError', err);
    });
    this.stats.published++;
    return true;
  }

  /**
   * Also receives `<prefix>:<name>` (a channel of its own, not a delivery kind) and hands every
   * message on it, own ones included, to `handler`. Subscribed with the delivery channels, now and
   * on every reconnection.
   */
  onSideChannel(name: string, handler: (message: Buffer) => void): void {
    const channel = `${this.prefix}:${name}`;
    if (this.kindsByChannel.has(channel)) throw new Error(`${name} is a delivery channel`);
    this.sideChannels.set(channel, handler);
    const subscriber = this.subscriber;
    if (subscriber?.status === 'ready') {
      subscriber.subscribe(channel).catch((err: Error) => {
        if (!this.closePromise) this.emit('connectionError', err);
      });
    }
  }

  /** Publishes `message` on `<prefix>:<name>`; false when the bus is not ready (nothing is queued). */
  publishSide(name: string, message: Buffer | string): boolean {
    const publisher = this.commands;
    if (!publisher || this.closePromise || this.currentState !== 'ready') return false;
    publisher.publish(`${this.prefix}:${name}`, message).catch((err: Error) => {
      if (!this.closePromise) this.emit('connectionError', err);
    });
    return true;
  }

  private onMessage(channel: Buffer, message: Buffer): void {
    const side = this.sideChannels.get(channel.toString('utf8'));
    if (side) {
      if (this.closePromise) return;
      try {
        side(message);
      } catch (err) {
        this.emit('deliveryError', err instanceof Error ? err : new Error(String(err)));
      }
      return;
    }
    const kind = this.kindsByChannel.get(channel.toString('utf8'));
    if (!kind || !this.receiver || this.closePromise) return;
    const envelope = decodeEnvelope(message);
    if (!envelope || envelope.kind !== kind) {
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
    try {
      this.receiver.receiveFromCluster(envelope.kind, envelope.key, envelope.frame, envelope.binary);
    } catch (err) {
      this.emit('deliveryError', err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** Closes both connections and stops reconnecting; no timer or socket is left behind. */
  close(): Promise<void> {
    if (!this.closePromise) {
      this.closePromise = Promise.all([closeClient(this.publisher), closeClient(this.subscriber)]).then(
        () => undefined,
      );
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
