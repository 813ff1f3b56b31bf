/**
 * The server's own record of who is connected: sessions by id and by tenant, so that a tenant
 * broadcast touches only that tenant's connections. Sessions that closed recently are remembered
 * (bounded) so a reply that arrives just after a close still finds its tenant.
 */

export type RoutingScope = 'session' | 'tenant' | 'global';

export interface SessionRecord<Connection> {
  readonly id: string;
  readonly tenantId: string;
  readonly subject: string | undefined;
  readonly authStatus: 'verified' | 'none';
  readonly connection: Connection;
}

const DEFAULT_RECENTLY_CLOSED_LIMIT = 10_000;

export class SessionRegistry<Connection> {
  private readonly sessions = new Map<string, SessionRecord<Connection>>();
  private readonly byTenant = new Map<string, Set<SessionRecord<Connection>>>();
  /** Closed session id → tenant; insertion order is age order, so the oldest is evicted first. */
  private readonly recentlyClosed = new Map<string, string>();

  constructor(private readonly recentlyClosedLimit = DEFAULT_RECENTLY_CLOSED_LIMIT) {}

  get size(): number {
    return this.sessions.size;
  }

  add(session: SessionRecord<Connection>): void {
    if (this.sessions.has(session.id)) throw new Error('duplicate session id');
    this.sessions.set(session.id, session);
    let tenantSessions = this.byTenant.get(session.tenantId);
    if (!tenantSessions) {
      tenantSessions = new Set();
      this.byTenant.set(session.tenantId, tenantSessions);
    }
    tenantSessions.add(session);
  }

  /** Removes a live session and remembers its tenant for late replies. */
  remove(id: string): SessionRecord<Connection> | undefined {
    const session = this.sessions.get(id);
    if (!session) return undefined;
    this.sessions.delete(id);
    const tenantSessions = this.byTenant.get(session.tenantId);
    if (tenantSessions) {
      tenantSessions.delete(session);
      if (tenantSessions.size === 0) this.byTenant.delete(session.tenantId);
    }
    if (this.recentlyClosedLimit > 0) {
      this.recentlyClosed.set(id, session.tenantId);
      if (this.recentlyClosed.size > this.recentlyClosedLimit) {
        this.recentlyClosed.delete(this.recentlyClosed.keys().next().value as string);
      }
    }
    return session;
  }

  get(id: string): SessionRecord<Connection> | undefined {
    return this.sessions.get(id);
  }

  /** Tenant of a live or recently closed session, as recorded at its handshake. */
  tenantOf(id: string): string | undefined {
    return this.sessions.get(id)?.tenantId ?? this.recentlyClosed.get(id);
  }

  countForTenant(tenantId: string): number {
    return this.byTenant.get(tenantId)?.size ?? 0;
  }

  /** Live sessions of one tenant; costs O(that tenant's sessions). */
  forTenant(tenantId: string): Iterable<SessionRecord<Connection>> {
    return this.byTenant.get(tenantId) ?? EMPTY;
  }

  all(): Iterable<SessionRecord<Connection>> {
    return this.sessions.values();
  }

  tenants(): Iterable<string> {
    return this.byTenant.keys();
  }

  clear(): void {
    this.sessions.clear();
    this.byTenant.clear();
    this.recentlyClosed.clear();
  }
}

const EMPTY: Iterable<never> = [];

/** Why a message found no recipients (a message that is dropped is always explained). */
export type RouteMiss = 'no-session' | 'unknown-session' | 'session-closed';

export interface Route<Connection> {
  targets: Iterable<SessionRecord<Connection>>;
  /** The one recipient of a session-scope route (then `targets` holds just it). */
  target?: SessionRecord<Connection>;
  /** The tenant the targets belong to (tenant and session scope). */
  tenantId?: string;
  miss?: RouteMiss;
}

/**
 * Picks the recipients of an outgoing message. `sessionId` is only a lookup key into the
 * registry: the tenant always comes from the handshake record, never from the message.
 */
export function route<Connection>(
  registry: SessionRegistry<Connection>,
  scope: RoutingScope,
  sessionId: unknown,
): Route<Connection> {
  if (scope === 'global') return { targets: registry.all() };
  if (typeof sessionId !== 'string' || sessionId === '') return { targets: EMPTY, miss: 'no-session' };
  if (scope === 'session') {
    const session = registry.get(sessionId);
    if (session) return { targets: [session], target: session, tenantId: session.tenantId };
    const closedTenant = registry.tenantOf(sessionId);
    return closedTenant === undefined
      ? { targets: EMPTY, miss: 'unknown-session' }
      : { targets: EMPTY, tenantId: closedTenant, miss: 'session-closed' };
  }
  const tenantId = registry.tenantOf(sessionId);
  if (tenantId === undefined) return { targets: EMPTY, miss: 'unknown-session' };
  return { targets: registry.forTenant(tenantId), tenantId };
}
