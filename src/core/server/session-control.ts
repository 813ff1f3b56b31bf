/**
 * Seeing and ending live sessions from a flow: list, count and close over a listener's session
 * registry. Requests arrive as flow messages, so every selector, code and reason is checked here
 * before anything is touched: a request that cannot be carried out changes nothing.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { ControlError, SessionClose } from '../errors';
import type { ListenerSession, WebSocketListener } from './listener';
import type { RoutingScope } from './session-registry';

/**
 * This process among the instances sharing a cluster: host name and pid (readable in a list), plus
 * a random part drawn once at load (two containers may both run as pid 1 on the same host name).
 */
export const INSTANCE_ID = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;

/** Longest close reason a close frame can carry (RFC 6455 §5.5: 125-byte control frame payload − 2-byte code). */
export const MAX_CLOSE_REASON_BYTES = 123;

export interface SessionSummary {
  id: string;
  tenantId: string;
  subject: string | null;
  authStatus: 'verified' | 'none';
  routingScope: RoutingScope;
  /** Epoch ms. */
  openedAt: number;
  /** Epoch ms at which the session is closed for its token's exp; null when no expiry is enforced. */
  expiresAt: number | null;
  instance: string;
}

export interface SessionCount {
  total: number;
  byTenant: Record<string, number>;
}

export interface SessionFilter {
  tenantId?: string;
  subject?: string;
}

export interface CloseSelection extends SessionFilter {
  sessionId?: string;
  all?: boolean;
}

export interface CloseFrame {
  code: number;
  reason: string;
}

/** The parts of a flow message a request reads (any other property is left alone). */
export interface ControlMessage {
  [property: string]: unknown;
  sessionId?: unknown;
  tenantId?: unknown;
  subject?: unknown;
  all?: unknown;
  code?: unknown;
  reason?: unknown;
  _session?: unknown;
}

function selector(value: unknown, name: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || value === '') throw new ControlError('SELECTOR_INVALID', name);
  return value;
}

/** msg.tenantId and msg.subject as a filter (both optional). */
export function filterFrom(msg: ControlMessage): SessionFilter {
  const filter: SessionFilter = {};
  const tenantId = selector(msg.tenantId, 'tenantId');
  const subject = selector(msg.subject, 'subject');
  if (tenantId !== undefined) filter.tenantId = tenantId;
  if (subject !== undefined) filter.subject = subject;
  return filter;
}

/**
 * Which sessions a close request names. Explicit selectors (msg.sessionId, msg.tenantId,
 * msg.subject; all given must match) come first, so a flow can turn a message from a session into
 * a logout of that user; without them the message's own session (msg._session.id, the reply
 * pattern) is closed; closing every session needs msg.all === true.
 */
export function closeSelectionFrom(msg: ControlMessage): CloseSelection {
  const selection: CloseSelection = filterFrom(msg);
  const sessionId = selector(msg.sessionId, 'sessionId');
  if (sessionId !== undefined) selection.sessionId = sessionId;
  if (selection.sessionId !== undefined || selection.tenantId !== undefined || selection.subject !== undefined)
    return selection;
  const own = msg._session && typeof msg._session === 'object' ? (msg._session as { id?: unknown }).id : undefined;
  if (typeof own === 'string' && own !== '') return { sessionId: own };
  if (msg.all === true) return { all: true };
  throw new ControlError('SELECTOR_MISSING');
}

/** msg.code (4000–4999, default 4003) and msg.reason (at most 123 bytes of UTF-8, default "closed by control"). */
export function closeFrameFrom(msg: ControlMessage): CloseFrame {
  const code = msg.code === undefined || msg.code === null ? SessionClose.CONTROL_CLOSED.code : msg.code;
  if (typeof code !== 'number' || !Number.isInteger(code) || code < 4000 || code > 4999)
    throw new ControlError('CODE_INVALID');
  const reason = msg.reason === undefined || msg.reason === null ? SessionClose.CONTROL_CLOSED.reason : msg.reason;
  if (typeof reason !== 'string' || Buffer.byteLength(reason, 'utf8') > MAX_CLOSE_REASON_BYTES || !wellFormed(reason)) {
    throw new ControlError('REASON_INVALID');
  }
  return { code, reason };
}

/** No lone surrogate: it would be sent as U+FFFD, not as the text the flow gave. */
function wellFormed(text: string): boolean {
  return !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(text);
}

/** The live sessions a selection names, using the registry's indexes where it can. */
function select(listener: WebSocketListener, selection: CloseSelection): ListenerSession[] {
  const registry = listener.registry;
  let candidates: Iterable<unknown>;
  if (selection.sessionId !== undefined) {
    const one = registry.get(selection.sessionId);
    candidates = one ? [one] : [];
  } else if (selection.tenantId !== undefined) {
    candidates = registry.forTenant(selection.tenantId);
  } else {
    candidates = registry.all();
  }
  const out: ListenerSession[] = [];
  for (const candidate of candidates) {
    const session = candidate as ListenerSession;
    if (selection.tenantId !== undefined && session.tenantId !== selection.tenantId) continue;
    if (selection.subject !== undefined && session.subject !== selection.subject) continue;
    out.push(session);
  }
  return out;
}

export function summarize(
  listener: WebSocketListener,
  session: ListenerSession,
  instance = INSTANCE_ID,
): SessionSummary {
  return {
    id: session.id,
    tenantId: session.tenantId,
    subject: session.subject ?? null,
    authStatus: session.authStatus,
    routingScope: session.info.routingScope,
    openedAt: session.openedAt,
    expiresAt: listener.expiresAtOf(session) ?? null,
    instance,
  };
}

export function listSessions(
  listener: WebSocketListener,
  filter: SessionFilter = {},
  instance = INSTANCE_ID,
): SessionSummary[] {
  return select(listener, filter).map((session) => summarize(listener, session, instance));
}

export function countSessions(listener: WebSocketListener, filter: SessionFilter = {}): SessionCount {
  const byTenant: Record<string, number> = Object.create(null) as Record<string, number>;
  let total = 0;
  if (filter.subject === undefined) {
    // Counting by tenant needs no walk over the sessions.
    const tenants = filter.tenantId !== undefined ? [filter.tenantId] : listener.registry.tenants();
    for (const tenant of tenants) {
      const n = listener.registry.countForTenant(tenant);
      if (n === 0) continue;
      byTenant[tenant] = n;
      total += n;
    }
  } else {
    for (const session of select(listener, filter)) {
      byTenant[session.tenantId] = (byTenant[session.tenantId] ?? 0) + 1;
      total++;
    }
  }
  return { total, byTenant: { ...byTenant } };
}

/**
 * Closes the selected sessions through the listener's own close path (so its 'enforced' and
 * 'close' events fire as for any other close); counts the sessions this call closed.
 */
export function closeSessions(
  listener: WebSocketListener,
  selection: CloseSelection,
  frame: CloseFrame,
): { closed: number } {
  if (
    !selection.all &&
    selection.sessionId === undefined &&
    selection.tenantId === undefined &&
    selection.subject === undefined
  ) {
    throw new ControlError('SELECTOR_MISSING');
  }
  let closed = 0;
  for (const session of select(listener, selection)) {
    if (listener.closeSession(session, 'CONTROL_CLOSED', frame)) closed++;
  }
  return { closed };
}
