/**
 * A WebSocket listener on a path of an existing HTTP(S) server. The handshake is verified in ws's
 * `verifyClient` (async form): every refusal is an HTTP status before the upgrade, so a refused
 * client never exchanges a frame. Each accepted connection becomes a session recorded with the
 * tenant decided at its handshake; outgoing messages are routed by that record only.
 */
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import { keepWsSendShape } from '../ws-send-shape';
import { HandshakeError, SessionClose, SessionCloseCode } from '../errors';
import { route, RoutingScope, SessionRegistry, SessionRecord, RouteMiss } from './session-registry';
import { resolveTenant } from '../auth/tenant';
import { DEFAULT_MAX_TOKEN_LENGTH, toHandshakeError, TokenVerifier, VerifiedToken } from '../auth/token-verifier';
import { destroySocket, dispatcherFor, UpgradeHandler } from './upgrade-dispatcher';
import { LocalTenantLimiter, TenantConnectionLimiter } from './tenant-limiter';
import { TokenBucket } from './rate-limiter';
import { LongTimeout, setTimeoutAt } from './timers';
import { ExpirySchedule } from './expiry-schedule';
import { isOriginAllowed } from '../auth/origin';
import { readToken } from '../auth/handshake-token';
import {
  expiringFrame,
  MIN_REFRESH_INTERVAL_MS,
  readRefreshFrame,
  REFRESH_IN_PROGRESS,
  refreshedFrame,
  refreshFailedFrame,
  RefreshResult,
} from './refresh';
import type { ClusterKind, ClusterLink, ClusterReceiver } from '../cluster/cluster-bus';
import type { ListenerTuning } from '../flow/listener-config';
import { LISTENER_RUNTIME_DEFAULTS } from '../flow/defaults';

/**
 * What the listener takes from the parsed flow configuration (documented with their defaults on
 * ListenerConfig), plus what only the runtime knows.
 */
export type ListenerOptions = Pick<ListenerTuning, 'tenant' | 'scope'> &
  Partial<Omit<ListenerTuning, 'tenant' | 'scope'>> & {
    server: Server;
    /** Full request path (httpNodeRoot already joined). */
    path: string;
    verifier: TokenVerifier;
    /** Replaces the local per-tenant counter (cluster-wide counting). */
    tenantLimiter?: TenantConnectionLimiter;
    /** Scale-out: tenant/global deliveries and unknown sessions go to the other instances too. */
    cluster?: ClusterLink;
    /** Bytes queued for one client before it is closed as a slow consumer (1013). Default is 4194304 (4 MiB). */
    maxBufferedBytes?: number;
    /** Longest handshake verification before 503, ms. Default is 4000. */
    handshakeTimeoutMs?: number;
  };

export interface SessionInfo {
  type: 'websocket';
  id: string;
  tenantId: string;
  subject: string | undefined;
  authStatus: 'verified' | 'none';
  routingScope: RoutingScope;
}

export interface ListenerSession extends SessionRecord<WebSocket> {
  readonly info: Readonly<SessionInfo>;
  readonly openedAt: number;
}

interface SessionState {
  alive: boolean;
  closing: boolean;
  /** A heartbeat ping is out: its pong is ours and costs the peer nothing. */
  awaitingPong: boolean;
  bucket?: TokenBucket;
  /** Made for the first timer of the session (most have none). */
  timers?: LongTimeout[];
  /** When the session is due to close at its token's exp (key in the listener's expiry schedule). */
  expiresAt?: number;
  /** When the "expiring" notice is due (key in the listener's warning schedule). */
  warnAt?: number;
  /** When the last refresh frame arrived (epoch ms). */
  lastRefreshAt?: number;
  /** Ends the refresh being verified (its deadline timer) when the session closes first. */
  cancelRefresh?: () => void;
  /** custom mode with refresh: the handshake request, handed to the site's verifier again. */
  req?: IncomingMessage;
}

export interface DeliveryResult {
  delivered: number;
  miss?: RouteMiss;
  tenantId?: string;
  /** Also handed to the other instances (cluster); an unknown session may be theirs. */
  published?: boolean;
}

/**
 * Why a delivery from the flow reached nobody, when the flow should hear of it: undefined when it
 * was delivered, or when an unknown session may live on another instance (the cluster routes it).
 */
export function deliveryProblem(result: DeliveryResult): 'no-session' | 'session-closed' | undefined {
  if (result.published && result.miss === 'unknown-session') return undefined;
  if (result.miss === 'no-session' || result.miss === 'unknown-session') return 'no-session';
  return result.miss === 'session-closed' ? 'session-closed' : undefined;
}

export interface ListenerEvents {
  open: [session: ListenerSession];
  message: [session: ListenerSession, data: Buffer | string, isBinary: boolean];
  close: [session: ListenerSession, code: number, reason: string];
  refused: [error: HandshakeError];
  /** A session closed by the listener itself (expiry, timeout, limits). */
  enforced: [session: ListenerSession, reason: SessionCloseCode];
  /** One frame of `bytes` written to `recipients` local sessions (deliveries and cluster receipts). */
  sent: [recipients: number, bytes: number];
  /** A refresh frame was handled (refresh "message" only); the token itself is never passed on. */
  refresh: [session: ListenerSession, result: RefreshResult];
}

const DEFAULT_MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
/** ws's send options, one object per kind rather than one per delivery (ws copies them). */
const BINARY = Object.freeze({ binary: true });
const TEXT = Object.freeze({ binary: false });
/**
 * Below Node-RED's default `inboundWebSocketTimeout` (5 s), after which it destroys an upgrade that
 * nothing answered: the 503 must reach the client first (see handshakeTiming in listener-config).
 */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 4000;
const CLOSE_GRACE_MS = 2000;
/** ws errors that mean the listener's own limits cut the session (ws sends the close itself). */
const WS_LIMIT_ERRORS: Record<string, SessionCloseCode> = {
  WS_ERR_UNSUPPORTED_MESSAGE_LENGTH: 'MESSAGE_TOO_BIG',
  WS_ERR_TOO_MANY_BUFFERED_PARTS: 'TOO_MANY_FRAGMENTS',
};

/** A session's socket carries its listener, session and state for the shared event handlers. */
const LINK = Symbol('websocket-plus.session');
type LinkedSocket = WebSocket & {
  [LINK]: { listener: WebSocketListener; session: ListenerSession; state: SessionState };
};

/** Key under which a verified handshake travels from verifyClient to the connection callback. */
const VERIFIED = Symbol('websocket-plus.verified');
interface VerifiedRequest extends IncomingMessage {
  [VERIFIED]?: { token: VerifiedToken; tenantId: string };
}

/** Messages and payload bytes since the listener was made (the metrics read them at scrape time). */
export interface ListenerTraffic {
  /** Messages from clients handed to the flow (what 'message' is emitted for) and their payload bytes. */
  messagesIn: number;
  bytesIn: number;
  /** Frames written to sessions, one per recipient (what 'sent' reports), and their payload bytes. */
  messagesOut: number;
  bytesOut: number;
}

export class WebSocketListener extends EventEmitter<ListenerEvents> implements ClusterReceiver {
  readonly path: string;
  readonly scope: RoutingScope;
  readonly registry = new SessionRegistry<WebSocket>();
  /** Counted here rather than by a listener of 'message' and 'sent': no extra event per message. */
  readonly traffic: ListenerTraffic = { messagesIn: 0, bytesIn: 0, messagesOut: 0, bytesOut: 0 };
  private readonly wss: WebSocketServer;
  private readonly states = new WeakMap<ListenerSession, SessionState>();
  private readonly limiter: TenantConnectionLimiter | undefined;
  private readonly pendingSockets = new Set<Duplex>();
  /** Refuses the handshakes still being verified; called once when the listener closes. */
  private readonly pendingRefusals = new Set<(err: HandshakeError) => void>();
  private readonly expiries = new ExpirySchedule<ListenerSession>((session) =>
    this.closeSession(session, 'TOKEN_EXPIRED'),
  );
  /** The "expiring" notices, refreshWindow ahead of each session's expiry. */
  private readonly warnings = new ExpirySchedule<ListenerSession>((session) => this.sendExpiring(session));
  private readonly upgradeHandler: UpgradeHandler;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private started = false;
  private closing = false;

  constructor(private readonly options: ListenerOptions) {
    super();
    keepWsSendShape();
    this.path = options.path;
    this.scope = options.scope;
    const max = options.maxConnectionsPerTenant ?? 0;
    this.limiter = options.tenantLimiter ?? (max > 0 ? new LocalTenantLimiter(max) : undefined);
    this.wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      maxPayload: options.maxPayload ?? LISTENER_RUNTIME_DEFAULTS.maxPayload,
      // Pings are answered by onPing, after the rate limit and the slow-consumer check.
      autoPong: false,
      verifyClient: (info, callback) => {
        this.verifyHandshake(info.req, info.origin).then(
          (verified) => {
            (info.req as VerifiedRequest)[VERIFIED] = verified;
            callback(true);
          },
          (err: unknown) => {
            const refusal = toHandshakeError(err, options.verifier.mode);
            this.emit('refused', refusal);
            callback(false, refusal.status, refusal.publicReason);
          },
        );
      },
    });
    this.upgradeHandler = (req, socket, head) => this.handleUpgrade(req, socket, head);
  }

  /** The handshake verifier (its counters are read by the metrics). */
  get verifier(): TokenVerifier {
    return this.options.verifier;
  }

  /** The cluster link, when the listener has one. */
  get cluster(): ClusterLink | undefined {
    return this.options.cluster;
  }

  get connectionCount(): number {
    return this.registry.size;
  }

  /** Starts serving; throws a ConfigError when the path is taken. */
  start(): void {
    if (this.started) return;
    dispatcherFor(this.options.server).register(this.path, this.upgradeHandler);
    this.started = true;
    this.options.cluster?.attach(this);
    const heartbeatMs = this.options.heartbeatMs ?? LISTENER_RUNTIME_DEFAULTS.heartbeatMs;
    if (heartbeatMs > 0) {
      this.heartbeatTimer = setInterval(() => this.heartbeat(), heartbeatMs);
      this.heartbeatTimer.unref();
    }
  }

  private handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // A reset peer must not crash a server that has no 'error' handler of its own (ws adds one
    // only for the handshake and hands the socket to the session after it).
    socket.on('error', destroySocket);
    // While closing, the upgrade still goes through ws: verifyClient refuses it with 503
    // "listener closing" (Connection: close), and ws ends the socket once the answer is written.
    this.pendingSockets.add(socket);
    const forget = (): void => {
      this.pendingSockets.delete(socket);
    };
    socket.once('close', forget);
    this.wss.handleUpgrade(req, socket, head, (ws, upgradedReq) => {
      // Adopted: the session's own close handling takes over; keep no per-socket leftovers.
      socket.removeListener('close', forget);
      socket.removeListener('error', destroySocket);
      this.pendingSockets.delete(socket);
      this.adopt(ws, upgradedReq as VerifiedRequest);
    });
  }

  private async verifyHandshake(
    req: IncomingMessage,
    origin: string | undefined,
  ): Promise<{ token: VerifiedToken; tenantId: string }> {
    if (this.closing) throw new HandshakeError('LISTENER_CLOSING');
    if (!isOriginAllowed(origin, this.options.origins)) throw new HandshakeError('ORIGIN_NOT_ALLOWED');
    const rawToken = readToken(req.url);
    // One deadline for the whole handshake: verification and taking the tenant slot together.
    const ms = this.options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
    const until = ms > 0 ? Date.now() + ms : Number.POSITIVE_INFINITY;
    const token = await this.withDeadline(this.options.verifier.verify(rawToken, req), until);
    const tenantId = resolveTenant(this.options.tenant, token.authStatus === 'verified' ? token.claims : null);
    if (this.closing) throw new HandshakeError('LISTENER_CLOSING');
    if (this.limiter) {
      const acquiring = Promise.resolve(this.limiter.acquire(tenantId));
      let granted: boolean;
      try {
        granted = await this.withDeadline(acquiring, until);
      } catch (err) {
        // A slot granted after the deadline belongs to nobody: give it back.
        acquiring.then(
          (late) => late && this.limiter?.release(tenantId),
          () => undefined,
        );
        throw err;
      }
      if (!granted) throw new HandshakeError('TENANT_CONNECTION_LIMIT');
      // The slot belongs to this socket until a session takes it over; any earlier end frees it.
      const socket = req.socket;
      const releaseSlot = (): void => this.limiter?.release(tenantId);
      if (socket.destroyed) {
        releaseSlot();
        throw new HandshakeError('LISTENER_CLOSING');
      }
      socket.once('close', releaseSlot);
      slotGuards.set(req, () => socket.removeListener('close', releaseSlot));
    }
    // Clustered, a tenant new to this instance: its channel is subscribed before the client is
    // accepted, so the session receives every tenant delivery published once it is open.
    const subscribing = this.options.cluster?.prepareTenant?.(tenantId);
    if (subscribing) await this.withDeadline(subscribing, until);
    return { token, tenantId };
  }

  /**
   * `promise`, or a 503 refusal at the epoch-ms time `until` ("verification timed out"), or when
   * the listener closes first ("listener closing").
   */
  private withDeadline<T>(promise: Promise<T>, until: number): Promise<T> {
    if (this.closing) return Promise.reject(new HandshakeError('LISTENER_CLOSING'));
    let timer: NodeJS.Timeout | undefined;
    let refuse: ((err: HandshakeError) => void) | undefined;
    const deadline = new Promise<never>((_, reject) => {
      refuse = reject;
      if (until === Number.POSITIVE_INFINITY) return;
      timer = setTimeout(() => reject(new HandshakeError('VERIFY_TIMEOUT')), Math.max(0, until - Date.now()));
      timer.unref();
    });
    this.pendingRefusals.add(refuse!);
    return Promise.race([promise, deadline]).finally(() => {
      clearTimeout(timer);
      this.pendingRefusals.delete(refuse!);
    });
  }

  private adopt(socket: WebSocket, req: VerifiedRequest): void {
    const verified = req[VERIFIED];
    slotGuards.get(req)?.();
    slotGuards.delete(req);
    if (!verified) {
      // Cannot happen through verifyClient; fail closed all the same.
      socket.terminate();
      return;
    }
    const { token, tenantId } = verified;
    const cluster = this.options.cluster;
    // Clustered: the id names this instance, so a reply made on another one is routed straight here.
    const id = cluster ? cluster.newSessionId() : newSessionId();
    const info: SessionInfo = Object.freeze({
      type: 'websocket',
      id,
      tenantId,
      subject: token.subject,
      authStatus: token.authStatus,
      routingScope: this.scope,
    });
    const session: ListenerSession = {
      id,
      tenantId,
      subject: token.subject,
      authStatus: token.authStatus,
      connection: socket,
      info,
      openedAt: Date.now(),
    };
    const state: SessionState = { alive: true, closing: false, awaitingPong: false };
    if (this.options.rateLimit && this.options.rateLimit > 0) state.bucket = new TokenBucket(this.options.rateLimit);
    this.states.set(session, state);
    this.registry.add(session);
    // The first session of its tenant here: the tenant's deliveries from other instances are needed.
    if (cluster && this.registry.countForTenant(tenantId) === 1) cluster.holdTenant(tenantId);

    // The handlers are shared by all sessions and find theirs through the socket: five closures
    // (and their context) per connection cost about 350 bytes of heap.
    (socket as LinkedSocket)[LINK] = { listener: this, session, state };
    socket.on('message', WebSocketListener.onSocketMessage);
    socket.on('ping', WebSocketListener.onSocketPing);
    socket.on('pong', WebSocketListener.onSocketPong);
    socket.on('error', WebSocketListener.onSocketError);
    // 'close' is emitted once by ws; a plain listener avoids a once-wrapper per session.
    socket.on('close', WebSocketListener.onSocketClose);

    if (this.closing) {
      this.closeSession(session, 'LISTENER_CLOSED');
      return;
    }
    if (this.options.refresh === 'message' && this.options.verifier.mode === 'custom') state.req = req;
    this.scheduleExpiry(session, state, token.expiresAt);
    const timeout = this.options.sessionTimeoutMs ?? 0;
    if (timeout > 0) {
      (state.timers ??= []).push(
        setTimeoutAt(Date.now() + timeout, () => this.closeSession(session, 'SESSION_TIMEOUT')),
      );
    }
    this.emit('open', session);
  }

  private static onSocketMessage(this: WebSocket, data: Buffer, isBinary: boolean): void {
    const link = (this as LinkedSocket)[LINK];
    link.listener.onMessage(link.session, link.state, data, isBinary);
  }

  private static onSocketPing(this: WebSocket, data: Buffer): void {
    const link = (this as LinkedSocket)[LINK];
    link.listener.onPing(link.session, link.state, data);
  }

  private static onSocketPong(this: WebSocket): void {
    const link = (this as LinkedSocket)[LINK];
    link.listener.onPong(link.session, link.state);
  }

  private static onSocketError(this: WebSocket, err: Error & { code?: string }): void {
    // ws closes the socket after an error; for its limits (size, fragments) it sends the close code itself.
    const limit = err.code === undefined ? undefined : WS_LIMIT_ERRORS[err.code];
    const link = (this as LinkedSocket)[LINK];
    if (limit) link.listener.emit('enforced', link.session, limit);
  }

  private static onSocketClose(this: WebSocket, code: number, reason: Buffer): void {
    const link = (this as LinkedSocket)[LINK];
    link.listener.onClose(link.session, link.state, code, reason.toString());
  }

  private onMessage(session: ListenerSession, state: SessionState, data: Buffer, isBinary: boolean): void {
    if (state.closing) return;
    state.alive = true;
    if (state.bucket && !state.bucket.take()) {
      this.closeSession(session, 'RATE_LIMIT');
      return;
    }
    if (!isBinary && this.options.refresh === 'message') {
      const refresh = readRefreshFrame(data, DEFAULT_MAX_TOKEN_LENGTH);
      if (refresh) {
        this.onRefresh(session, state, refresh.token, refresh.tooLarge === true);
        return;
      }
    }
    const traffic = this.traffic;
    traffic.messagesIn++;
    traffic.bytesIn += data.length;
    try {
      this.emit('message', session, isBinary ? data : data.toString(), isBinary);
    } catch {
      // Whatever a listener of ours throws (a flow that cannot copy or handle the message) must not
      // escape into ws's event and take the process down: this session goes, the others stay.
      this.closeSession(session, 'DELIVERY_FAILED');
    }
  }

  /**
   * A ping from the peer costs what a message costs: a token of the rate limit, and its pong is
   * only queued for a peer that reads (the slow-consumer bound, as for data frames). A flood is
   * closed, never buffered. (ws's maxPendingAutoPongs would count pongs not yet written, which a
   * burst of pings in one TCP read reaches even from a peer that reads.)
   */
  private onPing(session: ListenerSession, state: SessionState, data: Buffer): void {
    if (state.closing) return;
    state.alive = true;
    if (state.bucket && !state.bucket.take()) {
      this.closeSession(session, 'RATE_LIMIT');
      return;
    }
    const socket = session.connection;
    if (socket.readyState !== WebSocket.OPEN) return;
    if (this.overBuffered(socket)) {
      this.closeSession(session, 'SLOW_CONSUMER');
      return;
    }
    socket.pong(data);
  }

  /** The pong to our own heartbeat ping is free; any other (unsolicited) pong counts like a message. */
  private onPong(session: ListenerSession, state: SessionState): void {
    state.alive = true;
    if (state.awaitingPong) {
      state.awaitingPong = false;
      return;
    }
    if (state.closing) return;
    if (state.bucket && !state.bucket.take()) this.closeSession(session, 'RATE_LIMIT');
  }

  private onClose(session: ListenerSession, state: SessionState, code: number, reason: string): void {
    state.closing = true;
    if (state.timers) for (const timer of state.timers) timer.cancel();
    if (state.expiresAt !== undefined) this.expiries.remove(session, state.expiresAt);
    if (state.warnAt !== undefined) this.warnings.remove(session, state.warnAt);
    state.cancelRefresh?.();
    state.req = undefined;
    state.timers = undefined;
    this.registry.remove(session.id);
    this.limiter?.release(session.tenantId);
    const cluster = this.options.cluster;
    if (cluster && this.registry.countForTenant(session.tenantId) === 0) cluster.releaseTenant(session.tenantId);
    this.emit('close', session, code, reason);
  }

  /**
   * Closes a session for a reason of the listener's own, with that reason's close code (or with
   * `frame`, a code and text the caller chose, e.g. a control node's 4000–4999 code). False when
   * the session was already closing.
   */
  closeSession(session: ListenerSession, reason: SessionCloseCode, frame?: { code: number; reason: string }): boolean {
    const state = this.states.get(session);
    if (!state || state.closing) return false;
    state.closing = true;
    const { code, reason: text } = frame ?? SessionClose[reason];
    this.emit('enforced', session, reason);
    const socket = session.connection;
    if (reason === 'HEARTBEAT_MISSED') {
      socket.terminate();
      return true;
    }
    socket.close(code, text);
    // A peer that never answers the close frame is cut off.
    const grace = setTimeout(() => socket.terminate(), CLOSE_GRACE_MS);
    grace.unref();
    socket.once('close', () => clearTimeout(grace));
    return true;
  }

  /**
   * Puts the session on the expiry schedule for `expiresAt` (epoch ms; none when undefined), and on
   * the warning schedule refreshWindow ahead of it, replacing what it was scheduled for before.
   */
  private scheduleExpiry(session: ListenerSession, state: SessionState, expiresAt: number | undefined): void {
    if (state.expiresAt !== undefined) this.expiries.remove(session, state.expiresAt);
    if (state.warnAt !== undefined) this.warnings.remove(session, state.warnAt);
    state.expiresAt = undefined;
    state.warnAt = undefined;
    if (expiresAt === undefined || (this.options.onExpiry ?? 'disconnect') !== 'disconnect') return;
    state.expiresAt = expiresAt;
    this.expiries.add(session, expiresAt);
    const windowMs = this.options.refreshWindowMs ?? LISTENER_RUNTIME_DEFAULTS.refreshWindowMs;
    if (this.options.refresh === 'message' && windowMs > 0) {
      state.warnAt = expiresAt - windowMs;
      this.warnings.add(session, state.warnAt);
    }
  }

  private sendExpiring(session: ListenerSession): void {
    const state = this.states.get(session);
    if (!state || state.closing || state.expiresAt === undefined) return;
    state.warnAt = undefined;
    this.sendControl(session, expiringFrame(state.expiresAt));
  }

  /** A frame of the listener's own to one session (refresh answers, notices), within the slow-consumer bound. */
  private sendControl(session: ListenerSession, frame: string): void {
    const socket = session.connection;
    if (socket.readyState !== WebSocket.OPEN) return;
    if (this.overBuffered(socket)) {
      this.closeSession(session, 'SLOW_CONSUMER');
      return;
    }
    socket.send(frame);
  }

  /**
   * A refresh frame: at most one a second (faster closes with 1008) and one verification at a time.
   * The token is verified as at the handshake; a token of another tenant or subject closes the
   * session (1008), a token that fails keeps the old expiry and is answered with its category.
   */
  private onRefresh(session: ListenerSession, state: SessionState, token: string | undefined, tooLarge: boolean): void {
    const now = Date.now();
    const last = state.lastRefreshAt;
    state.lastRefreshAt = now;
    if (last !== undefined && now - last < MIN_REFRESH_INTERVAL_MS) {
      this.emit('refresh', session, 'rate_limited');
      this.closeSession(session, 'REFRESH_TOO_FAST');
      return;
    }
    const fail = (reason: string): void => {
      this.emit('refresh', session, 'failed');
      this.sendControl(session, refreshFailedFrame(reason));
    };
    if (state.cancelRefresh) {
      fail(REFRESH_IN_PROGRESS);
      return;
    }
    if (token === undefined) {
      fail(new HandshakeError(tooLarge ? 'TOKEN_TOO_LARGE' : 'TOKEN_MALFORMED').publicReason);
      return;
    }
    const ms = this.options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
    let timer: NodeJS.Timeout | undefined;
    let abandon: ((err: HandshakeError) => void) | undefined;
    const deadline = new Promise<never>((_, reject) => {
      abandon = reject;
      if (ms > 0) {
        timer = setTimeout(() => reject(new HandshakeError('VERIFY_TIMEOUT')), ms);
        timer.unref();
      }
    });
    state.cancelRefresh = () => {
      clearTimeout(timer);
      abandon?.(new HandshakeError('LISTENER_CLOSING'));
    };
    const verifier = this.options.verifier;
    Promise.race([verifier.verify(token, state.req), deadline])
      .then(
        (verified) => {
          // A session that closed meanwhile is left alone.
          if (state.closing) return;
          let tenantId: string;
          try {
            tenantId = resolveTenant(this.options.tenant, verified.authStatus === 'verified' ? verified.claims : null);
          } catch (err) {
            fail(toHandshakeError(err, verifier.mode).publicReason);
            return;
          }
          if (tenantId !== session.tenantId || verified.subject !== session.subject) {
            this.emit('refresh', session, 'identity_changed');
            this.closeSession(session, 'IDENTITY_CHANGED');
            return;
          }
          this.scheduleExpiry(session, state, verified.expiresAt);
          this.emit('refresh', session, 'refreshed');
          this.sendControl(session, refreshedFrame(verified.expiresAt));
        },
        (err: unknown) => {
          if (state.closing) return;
          fail(toHandshakeError(err, verifier.mode).publicReason);
        },
      )
      .finally(() => {
        clearTimeout(timer);
        state.cancelRefresh = undefined;
      })
      // A throw from an 'refresh' listener must not become an unhandled rejection.
      .catch(() => undefined);
  }

  /** When the session is closed at its token's exp (epoch ms); undefined when no expiry is enforced. */
  expiresAtOf(session: ListenerSession): number | undefined {
    return this.states.get(session)?.expiresAt;
  }

  private heartbeat(): void {
    for (const session of this.registry.all()) {
      const state = this.states.get(session as ListenerSession);
      if (!state || state.closing) continue;
      if (!state.alive) {
        this.closeSession(session as ListenerSession, 'HEARTBEAT_MISSED');
        continue;
      }
      state.alive = false;
      state.awaitingPong = true;
      session.connection.ping();
    }
  }

  /**
   * Sends to the recipients the listener's scope picks for `sessionId`. Strings are encoded once
   * per call, not once per recipient. With a cluster, tenant and global deliveries are published
   * once for the other instances, and a session unknown here is handed to its owner.
   */
  deliver(sessionId: unknown, data: Buffer | string): DeliveryResult {
    const found = route(this.registry, this.scope, sessionId);
    const binary = typeof data !== 'string';
    // Strings are encoded once, not once per recipient (handing ws the string for a single recipient
    // measured no cheaper).
    const frame = binary ? data : Buffer.from(data);
    if (found.target) {
      return { delivered: this.sendFrameTo(found.target, frame, binary), miss: found.miss, tenantId: found.tenantId };
    }
    const delivered = this.sendFrame(found.targets, frame, binary);
    const result: DeliveryResult = { delivered, miss: found.miss, tenantId: found.tenantId };
    const cluster = this.options.cluster;
    if (cluster && !this.closing) {
      if (this.scope === 'global') result.published = cluster.publish('global', '', frame, binary);
      else if (this.scope === 'tenant' && found.tenantId !== undefined)
        result.published = cluster.publish('tenant', found.tenantId, frame, binary);
      // The tenant is never taken from the message: the owner resolves it from its own record.
      else if (found.miss === 'unknown-session')
        result.published = cluster.publish('session', sessionId as string, frame, binary);
    }
    return result;
  }

  /**
   * A delivery another instance published (see ClusterReceiver); false for a reply to a session
   * this instance does not know (any more).
   */
  receiveFromCluster(kind: ClusterKind, key: string, frame: Buffer, binary: boolean): boolean {
    if (this.closing) return true;
    if (kind === 'global') {
      this.sendFrame(this.registry.all(), frame, binary);
    } else if (kind === 'tenant') {
      this.sendFrame(this.registry.forTenant(key), frame, binary);
    } else if (this.scope !== 'global' && this.registry.tenantOf(key) !== undefined) {
      // A reply for a session this instance owns (live or recently closed).
      const found = route(this.registry, this.scope, key);
      this.sendFrame(found.targets, frame, binary);
      if (this.scope === 'tenant' && found.tenantId !== undefined)
        this.options.cluster?.publish('tenant', found.tenantId, frame, binary);
    } else {
      return false;
    }
    return true;
  }

  /** sendFrame for a single recipient (session scope): no iterator, one check, one send. */
  private sendFrameTo(target: SessionRecord<WebSocket>, frame: Buffer, binary: boolean): number {
    const socket = target.connection;
    if (socket.readyState !== WebSocket.OPEN) return 0;
    if (this.overBuffered(socket)) {
      this.closeSession(target as ListenerSession, 'SLOW_CONSUMER');
      return 0;
    }
    socket.send(frame, binary ? BINARY : TEXT);
    const traffic = this.traffic;
    traffic.messagesOut++;
    traffic.bytesOut += frame.length;
    this.emit('sent', 1, frame.length);
    return 1;
  }

  private sendFrame(targets: Iterable<SessionRecord<WebSocket>>, frame: Buffer, binary: boolean): number {
    const options = binary ? BINARY : TEXT;
    let delivered = 0;
    for (const target of targets) {
      const socket = target.connection;
      if (socket.readyState !== WebSocket.OPEN) continue;
      if (this.overBuffered(socket)) {
        this.closeSession(target as ListenerSession, 'SLOW_CONSUMER');
        continue;
      }
      socket.send(frame, options);
      delivered++;
    }
    if (delivered > 0) {
      const traffic = this.traffic;
      traffic.messagesOut += delivered;
      traffic.bytesOut += delivered * frame.length;
      this.emit('sent', delivered, frame.length);
    }
    return delivered;
  }

  /** More than maxBufferedBytes queued for this peer (data frames and pongs alike). */
  private overBuffered(socket: WebSocket): boolean {
    const maxBuffered = this.options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
    return maxBuffered > 0 && socket.bufferedAmount > maxBuffered;
  }

  /**
   * Closes every session with 1001, refuses the handshakes in progress (and any arriving meanwhile)
   * with 503 "listener closing", then frees the path and every timer; resolves when all are gone.
   */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
    this.expiries.clear();
    this.warnings.clear();
    for (const refuse of [...this.pendingRefusals]) refuse(new HandshakeError('LISTENER_CLOSING'));
    this.pendingRefusals.clear();
    const closed: Promise<void>[] = [];
    for (const session of [...this.registry.all()]) {
      const socket = session.connection;
      if (socket.readyState === WebSocket.CLOSED) continue;
      closed.push(new Promise((resolve) => socket.once('close', () => resolve())));
      this.closeSession(session as ListenerSession, 'LISTENER_CLOSED');
    }
    await Promise.all(closed);
    // Refused handshakes end once their 503 is written; a peer that does not take it is cut off.
    await this.drainPendingSockets();
    if (this.started) dispatcherFor(this.options.server).unregister(this.path, this.upgradeHandler);
    await this.drainPendingSockets();
    await this.options.tenantLimiter?.close?.();
    await this.options.cluster?.close();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    this.registry.clear();
  }

  /** Resolves when every socket still in its handshake has closed, destroying those left after the grace. */
  private async drainPendingSockets(): Promise<void> {
    if (this.pendingSockets.size === 0) return;
    const sockets = [...this.pendingSockets];
    const grace = setTimeout(() => {
      for (const socket of sockets) socket.destroy();
    }, CLOSE_GRACE_MS);
    grace.unref();
    await Promise.all(
      sockets.map((socket) => (socket.destroyed ? undefined : new Promise((resolve) => socket.once('close', resolve)))),
    );
    clearTimeout(grace);
    for (const socket of sockets) this.pendingSockets.delete(socket);
  }
}

/**
 * A random session id (UUID format) as one flat string. randomUUID() assembles its result by
 * concatenation, which V8 keeps as a tree of small strings (about 450 bytes per id, measured
 * with heap snapshots in the benchmark); the copy is a single 36-byte string.
 */
function newSessionId(): string {
  return Buffer.from(randomUUID(), 'latin1').toString('latin1');
}

/** Per pending handshake: hands its tenant slot over to the session (stops the early-close release). */
const slotGuards = new WeakMap<IncomingMessage, () => void>();
