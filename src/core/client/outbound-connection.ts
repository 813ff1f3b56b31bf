/**
 * One outbound WebSocket connection that stays up: it connects, keeps the link checked with pings,
 * and reconnects with exponential backoff and jitter after any close, error or refused handshake.
 * There is never more than one socket: the next attempt is only scheduled from the previous
 * socket's 'close'. `close()` stops it for good and leaves no timer behind.
 *
 * The token travels in the `token` query parameter (what our listener reads). It is secret: no
 * event, error or property of this class ever carries it (ws error messages can contain the URL,
 * so every error is rebuilt from a sanitised message).
 */
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import type { Agent } from 'node:http';
import { WebSocket, ClientOptions, RawData } from 'ws';
import { keepWsSendShape } from '../ws-send-shape';
import { ConfigError, SessionClose, SessionCloseCode } from '../errors';
import { proxyAgentFor, ProxySettings, redactUrl, TlsOptions } from './proxy';
import { sanitiseError } from '../secrets';
import { REFRESH_TYPE } from '../server/refresh';

export type OutboundAuthMode = 'jwt' | 'none';

export interface BackoffOptions {
  /** First delay after a failure, ms (default 1000). */
  initialDelayMs?: number;
  /** Longest delay, ms (default 60000). */
  maxDelayMs?: number;
  /** A connection open at least this long resets the backoff, ms (default 30000). */
  stableAfterMs?: number;
}

export interface OutboundConnectionOptions {
  /** ws:// or wss:// URL; it must not carry a token itself. */
  url: string;
  /** 'jwt' (default) appends `token=<jwt>`; 'none' sends no token. */
  authMode?: OutboundAuthMode;
  /** The token, or a function read at each connect (so a rotated token is used on reconnect); see also setToken(). */
  token?: string | (() => string | undefined);
  /** Comma-separated subprotocols; empty means none. Default is none. */
  subprotocol?: string;
  /** Extra handshake headers, resolved at each connect (environment variables may change). */
  headers?: () => Record<string, string> | undefined;
  /** Only used for wss://. */
  tls?: TlsOptions;
  /** `RED.settings.proxyOptions`-shaped settings; the environment is used when they name no proxy. */
  proxy?: ProxySettings | null;
  /** Ping interval in ms; a ping unanswered when the next is due terminates the socket. 0 = off. Default is 0. */
  heartbeatMs?: number;
  backoff?: BackoffOptions;
  /** Longest time from the start of an attempt to the open socket (proxy included), ms. Default is 30000. */
  handshakeTimeoutMs?: number;
  /**
   * Largest incoming message in bytes; bigger closes the socket with 1009. Default is ws's (100 MiB);
   * the client node sets 1048576.
   */
  maxPayload?: number;
}

export interface OutboundConnectionEvents {
  /** An attempt starts (1 for the first attempt after start or after a stable connection). */
  connecting: [attempt: number];
  open: [connectionId: string];
  message: [data: Buffer | string, isBinary: boolean, connectionId: string];
  /** An open socket closed. */
  close: [code: number, reason: string, connectionId: string];
  /** The server (or the proxy) answered the handshake with an HTTP status instead of upgrading. */
  refused: [status: number];
  /** Something failed; the message never contains the token. Only emitted when listened to. */
  error: [err: Error];
  /** The next attempt is scheduled after `delayMs`. */
  reconnecting: [delayMs: number, attempt: number];
}

const DEFAULT_BACKOFF = { initialDelayMs: 1000, maxDelayMs: 60_000, stableAfterMs: 30_000 };
const DEFAULT_HANDSHAKE_TIMEOUT_MS = 30_000;
/** How long close() waits for the peer's close frame before cutting the socket. */
const CLOSE_GRACE_MS = 2000;
/** RFC 7230 token characters: what a subprotocol name may contain. */
const SUBPROTOCOL = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Splits `"a, b"` into `["a","b"]`; empty entries dropped (ws throws on `[""]`). */
export function parseSubprotocols(value: string | undefined): string[] {
  const list = String(value ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  for (const p of list)
    if (!SUBPROTOCOL.test(p)) throw new ConfigError('OPTION_INVALID', 'subprotocol contains invalid characters');
  if (new Set(list).size !== list.length) throw new ConfigError('OPTION_INVALID', 'subprotocol listed twice');
  return list;
}

/** Appends `token=<token>` URL-encoded, leaving the existing query exactly as written. */
export function appendToken(url: string, token: string): string {
  const hash = url.indexOf('#');
  const base = hash === -1 ? url : url.slice(0, hash);
  const separator = base.includes('?') ? (base.endsWith('?') || base.endsWith('&') ? '' : '&') : '?';
  return `${base}${separator}token=${encodeURIComponent(token)}`;
}

/** Delay before attempt number `failures + 1`: doubling from initial, capped, with jitter in [d/2, d]. */
export function backoffDelay(
  failures: number,
  initialMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  const base = Math.min(maxMs, initialMs * 2 ** Math.min(failures, 30));
  return Math.round(base / 2 + (base / 2) * random());
}

export class OutboundConnection extends EventEmitter<OutboundConnectionEvents> {
  /** The URL without token, credentials or query: safe for status and logs. */
  readonly displayUrl: string;
  private readonly options: OutboundConnectionOptions;
  private readonly baseUrl: string;
  private readonly protocols: string[];
  private readonly backoff: Required<BackoffOptions>;
  private ws: WebSocket | undefined;
  private socketId: string | undefined;
  private started = false;
  private stopped = false;
  /** Failures since the last stable connection: drives the backoff. */
  private failures = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private attemptTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private closeGraceTimer: NodeJS.Timeout | undefined;
  private retryAfterMs = 0;
  /** Disconnected on request (see disconnect()): no retry until reconnect(). */
  private held = false;
  /** The current socket is being closed by reconnect(): connect again as soon as it is gone. */
  private reconnectNow = false;
  private lastToken: string | undefined;
  /** A token given by setToken(): it replaces the configured one for every later connect. */
  private replacedToken: string | undefined;
  /** Aborted when the current attempt's socket is done with: ends its tunnel socket at the proxy. */
  private tunnel: AbortController | undefined;

  constructor(options: OutboundConnectionOptions) {
    super();
    keepWsSendShape();
    this.options = { ...options };
    let url: URL;
    try {
      url = new URL(String(options.url ?? '').trim());
    } catch {
      throw new ConfigError('URL_INVALID');
    }
    if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new ConfigError('URL_INVALID');
    if (url.hash) throw new ConfigError('URL_INVALID', 'a fragment (#) is not allowed');
    const mode = options.authMode ?? 'jwt';
    if (mode !== 'jwt' && mode !== 'none') throw new ConfigError('OPTION_INVALID', 'authMode must be jwt or none');
    // A token written into the URL would be exported with the flow: it belongs in the credential.
    if (url.searchParams.has('token'))
      throw new ConfigError('OPTION_INVALID', 'the URL must not contain a token parameter');
    if (mode === 'jwt' && typeof options.token !== 'function' && !options.token) throw new ConfigError('TOKEN_MISSING');
    this.baseUrl = url.href;
    this.displayUrl = redactUrl(url);
    this.protocols = parseSubprotocols(options.subprotocol);
    this.backoff = { ...DEFAULT_BACKOFF, ...definedOnly(options.backoff ?? {}) };
  }

  /** Id of the current socket (or of the last one once it closed); a new id for every socket. */
  get id(): string | undefined {
    return this.socketId;
  }

  get connected(): boolean {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  /** The subprotocol the server chose on the current socket ('' when none). */
  get protocol(): string {
    return this.ws?.protocol ?? '';
  }

  /** Starts connecting; calling it again does nothing. */
  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    this.connect();
  }

  /** Sends on the open socket: a Buffer as a binary frame, anything else as text. False when not open. */
  send(data: Buffer | string): boolean {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    const binary = Buffer.isBuffer(data);
    ws.send(binary ? data : String(data), { binary });
    return true;
  }

  /**
   * Replaces the token without a restart: every later connect uses it, and on an open socket it is
   * also sent as a refresh frame (`{"type":"websocket-plus:refresh","token":...}`, which a listener
   * with refresh "message" verifies and answers). True when the refresh frame was sent.
   */
  setToken(token: string): boolean {
    if (typeof token !== 'string' || token === '') throw new ConfigError('TOKEN_MISSING');
    this.replacedToken = token;
    if ((this.options.authMode ?? 'jwt') !== 'jwt') return false;
    return this.send(JSON.stringify({ type: REFRESH_TYPE, token }));
  }

  /**
   * Closes the current socket for a reason of ours (e.g. a message the flow cannot take) with that
   * reason's close code; unlike close(), the connection reconnects with its backoff.
   */
  closeSocket(reason: SessionCloseCode): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    ws.close(SessionClose[reason].code, SessionClose[reason].reason);
    const grace = setTimeout(() => ws.terminate(), CLOSE_GRACE_MS);
    grace.unref();
    ws.once('close', () => clearTimeout(grace));
  }

  /**
   * Closes the current socket with `code` and `reason` and stays disconnected (no backoff retry)
   * until reconnect() or a restart. True when an open socket was closed.
   */
  disconnect(code: number, reason: string): boolean {
    if (this.stopped) return false;
    this.held = true;
    this.reconnectNow = false;
    this.clearTimer('retryTimer');
    const ws = this.ws;
    if (!ws) return false;
    if (ws.readyState === WebSocket.CONNECTING) {
      this.clearTimer('attemptTimer');
      ws.terminate();
      this.tunnel?.abort();
      return false;
    }
    if (ws.readyState !== WebSocket.OPEN) return false;
    this.closeWithGrace(ws, code, reason);
    return true;
  }

  /**
   * Closes the current socket (if open) and connects again at once, without the backoff delay;
   * also ends a disconnect(). An attempt already in progress is left to finish.
   */
  reconnect(): void {
    if (this.stopped || !this.started) return;
    this.held = false;
    const ws = this.ws;
    if (ws && ws.readyState === WebSocket.OPEN) {
      this.reconnectNow = true;
      this.closeWithGrace(ws, SessionClose.CONTROL_RECONNECT.code, SessionClose.CONTROL_RECONNECT.reason);
      return;
    }
    if (ws) return;
    this.clearTimer('retryTimer');
    this.connect();
  }

  private closeWithGrace(ws: WebSocket, code: number, reason: string): void {
    ws.close(code, reason);
    const grace = setTimeout(() => ws.terminate(), CLOSE_GRACE_MS);
    grace.unref();
    ws.once('close', () => clearTimeout(grace));
  }

  /**
   * Stops for good: no further attempt, no timer. An open socket gets a normal close (1000) and is
   * cut if the peer does not answer within a short grace period. Resolves once no socket is left.
   */
  close(): Promise<void> {
    this.stopped = true;
    this.clearTimer('retryTimer');
    this.clearTimer('attemptTimer');
    this.stopHeartbeat();
    const ws = this.ws;
    if (!ws) {
      this.tunnel?.abort();
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      ws.once('close', () => resolve());
      if (ws.readyState === WebSocket.OPEN) {
        ws.close(1000);
        if (!this.closeGraceTimer) {
          this.closeGraceTimer = setTimeout(() => ws.terminate(), CLOSE_GRACE_MS);
          this.closeGraceTimer.unref();
        }
      } else if (ws.readyState === WebSocket.CONNECTING) {
        ws.terminate();
        // A request still waiting for the proxy's CONNECT reply has no socket ws could destroy.
        this.tunnel?.abort();
      }
    });
  }

  private emitError(err: unknown): void {
    // An EventEmitter 'error' nobody listens to would throw and take the runtime down.
    if (this.listenerCount('error') > 0) this.emit('error', sanitiseError(err, [this.lastToken, this.replacedToken]));
  }

  private clearTimer(name: 'retryTimer' | 'attemptTimer' | 'heartbeatTimer' | 'closeGraceTimer'): void {
    const timer = this[name];
    if (timer) {
      clearTimeout(timer);
      this[name] = undefined;
    }
  }

  private stopHeartbeat(): void {
    this.clearTimer('heartbeatTimer');
  }

  /** Everything an attempt needs that may change between attempts, resolved now. */
  private prepare(): { address: string; clientOptions: ClientOptions } {
    let address = this.baseUrl;
    if ((this.options.authMode ?? 'jwt') === 'jwt') {
      const configured = this.options.token;
      const token = this.replacedToken ?? (typeof configured === 'function' ? configured() : configured);
      if (!token) throw new ConfigError('TOKEN_MISSING');
      this.lastToken = token;
      address = appendToken(address, token);
    }
    // No redirects: the token must only ever go to the configured host. No compression: zlib per
    // message costs memory and CPU per socket, and compressing secrets next to attacker-chosen data
    // is how CRIME-style leaks work.
    const clientOptions: ClientOptions = { followRedirects: false, perMessageDeflate: false };
    if (this.options.maxPayload) clientOptions.maxPayload = this.options.maxPayload;
    const headers = this.options.headers?.();
    if (headers && Object.keys(headers).length > 0) clientOptions.headers = headers;
    if (this.baseUrl.startsWith('wss:') && this.options.tls) {
      const tls = this.options.tls;
      for (const key of ['ca', 'cert', 'key', 'passphrase', 'rejectUnauthorized', 'servername'] as const) {
        if (tls[key] !== undefined) (clientOptions as Record<string, unknown>)[key] = tls[key];
      }
    }
    const agent: Agent | undefined = proxyAgentFor(this.baseUrl, this.options.proxy, this.tunnel?.signal);
    if (agent) clientOptions.agent = agent;
    return { address, clientOptions };
  }

  private connect(): void {
    this.retryTimer = undefined;
    if (this.stopped || this.ws) return;
    this.emit('connecting', this.failures + 1);
    const tunnel = new AbortController();
    this.tunnel = tunnel;
    let ws: WebSocket;
    try {
      const { address, clientOptions } = this.prepare();
      ws = new WebSocket(address, this.protocols, clientOptions);
    } catch (err) {
      tunnel.abort();
      this.emitError(err);
      this.failures++;
      this.scheduleRetry();
      return;
    }
    const id = randomUUID();
    this.ws = ws;
    this.socketId = id;
    let openedAt = 0;
    let refused = false;
    /** Set when we cut the attempt ourselves: ws's own "closed before established" is not news. */
    let aborted = false;
    let heartbeatMissed = false;
    let awaitingPong = false;

    // ws's own handshake timeout only starts once a socket exists; a proxy that never answers
    // CONNECT would hang the attempt forever without this one.
    this.attemptTimer = setTimeout(() => {
      this.attemptTimer = undefined;
      if (ws.readyState === WebSocket.CONNECTING) {
        this.emitError(new Error('opening handshake timed out'));
        aborted = true;
        ws.terminate();
        tunnel.abort();
      }
    }, this.options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS);

    ws.on('unexpected-response', (_req, res) => {
      refused = true;
      const status = res.statusCode ?? 0;
      const retryAfter = Number(res.headers['retry-after']);
      this.retryAfterMs = Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : 0;
      res.resume();
      ws.terminate();
      this.emit('refused', status);
    });
    ws.on('open', () => {
      this.clearTimer('attemptTimer');
      openedAt = Date.now();
      const heartbeatMs = this.options.heartbeatMs ?? 0;
      if (heartbeatMs > 0) {
        this.heartbeatTimer = setInterval(() => {
          if (awaitingPong) {
            heartbeatMissed = true;
            this.stopHeartbeat();
            ws.terminate();
            return;
          }
          awaitingPong = true;
          ws.ping();
        }, heartbeatMs);
      }
      this.emit('open', id);
    });
    ws.on('pong', () => {
      awaitingPong = false;
    });
    ws.on('message', (data: RawData, isBinary: boolean) => {
      const buffer = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
      this.emit('message', isBinary ? buffer : buffer.toString('utf8'), isBinary, id);
    });
    ws.on('error', (err) => {
      // A refused handshake is reported by 'refused'; the abort that follows is not news.
      if (!refused && !aborted && !this.stopped) this.emitError(err);
    });
    ws.on('close', (code: number, reasonBuffer: Buffer) => {
      // Whatever ended this socket, nothing of it may stay open at the proxy.
      tunnel.abort();
      // Only the current socket drives the state; a stray late event from another cannot.
      if (this.ws !== ws) return;
      this.clearTimer('attemptTimer');
      this.clearTimer('closeGraceTimer');
      this.stopHeartbeat();
      this.ws = undefined;
      if (openedAt) {
        if (Date.now() - openedAt >= this.backoff.stableAfterMs) this.failures = 0;
        const reason = heartbeatMissed ? SessionClose.HEARTBEAT_MISSED.reason : reasonBuffer.toString('utf8');
        this.emit('close', code, reason, id);
      }
      if (this.stopped || this.held) return;
      if (this.reconnectNow) {
        this.reconnectNow = false;
        this.connect();
        return;
      }
      this.failures++;
      this.scheduleRetry();
    });
  }

  private scheduleRetry(): void {
    if (this.stopped || this.held || this.retryTimer) return;
    const { initialDelayMs, maxDelayMs } = this.backoff;
    let delay = backoffDelay(this.failures - 1, initialDelayMs, maxDelayMs);
    // A server that says when to come back (429/503 Retry-After) is obeyed, within the cap.
    if (this.retryAfterMs) delay = Math.min(maxDelayMs, Math.max(delay, this.retryAfterMs));
    this.retryAfterMs = 0;
    this.emit('reconnecting', delay, this.failures + 1);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(
    Object.entries(value).filter(([, v]) => v !== undefined && v !== null && v !== ''),
  ) as Partial<T>;
}
