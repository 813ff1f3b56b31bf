/**
 * Session control across the instances of a clustered listener: list, count and close reach every
 * Node-RED instance through the listener's Redis bus and are answered within a bounded time.
 *
 * - Requests and answers travel as JSON on the side channel `<prefix>:control` of the listener's
 *   ClusterBus. Each instance answers for its own sockets only, with its own registry.
 * - Presence: each instance scores itself in the sorted set `<prefix>:control:instances` every
 *   presence interval. A request waits for the instances seen within three intervals; one that does
 *   not answer within the answer timeout makes the answer partial (never a hang). With Redis away
 *   the answer is this instance's own, marked partial.
 * - Filters, selectors, codes and reasons are checked again by every answering instance: nothing
 *   from the bus is trusted more than a flow message.
 */
import { randomUUID } from 'node:crypto';
import type { ClusterBus } from './cluster-bus';
import type { WebSocketListener } from '../server/listener';
import { bounded } from '../server/timers';
import {
  closeFrameFrom,
  closeSelectionFrom,
  closeSessions,
  countSessions,
  filterFrom,
  INSTANCE_ID,
  listSessions,
  CloseFrame,
  CloseSelection,
  SessionCount,
  SessionFilter,
  SessionSummary,
} from '../server/session-control';

export const CONTROL_CHANNEL = 'control';
/** How long a request waits for the other instances' answers. */
export const DEFAULT_ANSWER_TIMEOUT_MS = 1000;
export const DEFAULT_PRESENCE_INTERVAL_MS = 5000;

type Op = 'list' | 'count' | 'close';
type ResultOf<O extends Op> = O extends 'list'
  ? SessionSummary[]
  : O extends 'count'
    ? SessionCount
    : { closed: number };

export interface ClusterAnswer<T> {
  result: T;
  /** An instance seen recently did not answer in time, or Redis was unavailable. */
  partial: boolean;
  /** Instances that answered, this one included. */
  answered: string[];
  /** Instances seen recently that did not answer. */
  missing: string[];
}

export interface ClusterControlOptions {
  answerTimeoutMs?: number;
  presenceIntervalMs?: number;
  /**
   * This instance's name: its presence entry, the sender of its answers and the `instance` of the
   * sessions it lists. Default INSTANCE_ID, the same for the whole process, so a redeploy comes
   * back under the same name and is never waited for twice.
   */
  instance?: string;
}

interface Request {
  t: 'req';
  id: string;
  from: string;
  op: Op;
  args: Record<string, unknown>;
}

interface Reply {
  t: 'res';
  id: string;
  to: string;
  from: string;
  result: unknown;
}

interface Pending {
  op: Op;
  expected: Set<string>;
  results: Map<string, unknown>;
  finish: () => void;
}

export class ClusterSessionControl {
  private readonly answerTimeoutMs: number;
  private readonly presenceIntervalMs: number;
  private readonly instance: string;
  private readonly presenceKey: string;
  private readonly pending = new Map<string, Pending>();
  private presenceTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly bus: ClusterBus,
    private readonly listener: WebSocketListener,
    options: ClusterControlOptions = {},
  ) {
    this.answerTimeoutMs = options.answerTimeoutMs ?? DEFAULT_ANSWER_TIMEOUT_MS;
    this.presenceIntervalMs = options.presenceIntervalMs ?? DEFAULT_PRESENCE_INTERVAL_MS;
    this.instance = options.instance ?? INSTANCE_ID;
    this.presenceKey = `${bus.prefix}:${CONTROL_CHANNEL}:instances`;
  }

  /** Starts answering the other instances' requests and announcing this one. */
  start(): void {
    this.bus.onSideChannel(CONTROL_CHANNEL, (message) => this.onMessage(message));
    const announce = (): void => {
      const redis = this.bus.commands;
      if (!redis || this.stopped) return;
      const keepMs = this.presenceIntervalMs * 3;
      // Members not refreshed within three intervals are dropped; the key itself expires with them.
      redis
        .multi()
        .zadd(this.presenceKey, Date.now(), this.instance)
        .zremrangebyscore(this.presenceKey, '-inf', Date.now() - keepMs)
        .pexpire(this.presenceKey, keepMs)
        .exec()
        .catch(() => undefined);
    };
    this.bus.on('state', (state) => {
      if (state === 'ready') announce();
    });
    announce();
    this.presenceTimer = setInterval(announce, this.presenceIntervalMs);
    this.presenceTimer.unref();
  }

  /** Stops announcing and answering; requests in flight settle at once (partial). */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.presenceTimer) clearInterval(this.presenceTimer);
    this.presenceTimer = undefined;
    for (const pending of [...this.pending.values()]) pending.finish();
    const redis = this.bus.commands;
    if (redis) await bounded(redis.zrem(this.presenceKey, this.instance), this.answerTimeoutMs);
  }

  list(filter: SessionFilter): Promise<ClusterAnswer<SessionSummary[]>> {
    return this.request('list', { ...filter });
  }

  count(filter: SessionFilter): Promise<ClusterAnswer<SessionCount>> {
    return this.request('count', { ...filter });
  }

  close(selection: CloseSelection, frame: CloseFrame): Promise<ClusterAnswer<{ closed: number }>> {
    return this.request('close', { ...selection, ...frame });
  }

  /** This instance's answer to `op`; every argument is checked as a flow message would be. */
  private answer(op: Op, args: Record<string, unknown>): unknown {
    if (op === 'list') return listSessions(this.listener, filterFrom(args), this.instance);
    if (op === 'count') return countSessions(this.listener, filterFrom(args));
    const selection = closeSelectionFrom({
      sessionId: args.sessionId,
      tenantId: args.tenantId,
      subject: args.subject,
      all: args.all,
    });
    return closeSessions(this.listener, selection, closeFrameFrom(args));
  }

  private async request<O extends Op>(op: O, args: Record<string, unknown>): Promise<ClusterAnswer<ResultOf<O>>> {
    const own = this.instance;
    const results = new Map<string, unknown>([[own, this.answer(op, args)]]);
    if (this.stopped || this.bus.state !== 'ready') return this.combine(op, results, new Set([own]), true);
    const until = Date.now() + this.answerTimeoutMs;
    const seen = await this.recentInstances(until);
    if (seen === undefined) return this.combine(op, results, new Set([own]), true);
    const expected = new Set([own, ...seen]);
    if (expected.size === 1) return this.combine(op, results, expected, false);
    const id = randomUUID();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => pending.finish(), Math.max(0, until - Date.now()));
      const pending: Pending = {
        op,
        expected,
        results,
        finish: () => {
          clearTimeout(timer);
          this.pending.delete(id);
          resolve();
        },
      };
      this.pending.set(id, pending);
      const request: Request = { t: 'req', id, from: own, op, args };
      if (!this.bus.publishSide(CONTROL_CHANNEL, JSON.stringify(request))) pending.finish();
    });
    const missing = [...expected].filter((instance) => !results.has(instance));
    return this.combine(op, results, expected, missing.length > 0);
  }

  /** Instances that announced themselves within three presence intervals, or undefined when Redis does not answer. */
  private async recentInstances(until: number): Promise<string[] | undefined> {
    const redis = this.bus.commands;
    if (!redis) return undefined;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), Math.max(0, until - Date.now()));
    });
    try {
      const since = Date.now() - this.presenceIntervalMs * 3;
      return await Promise.race([redis.zrangebyscore(this.presenceKey, since, '+inf').catch(() => undefined), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private combine<O extends Op>(
    op: O,
    results: Map<string, unknown>,
    expected: Set<string>,
    partial: boolean,
  ): ClusterAnswer<ResultOf<O>> {
    const values = [...results.values()];
    let result: unknown;
    if (op === 'list') {
      result = (values as SessionSummary[][]).flat();
    } else if (op === 'count') {
      const byTenant: Record<string, number> = {};
      let total = 0;
      for (const count of values as SessionCount[]) {
        total += count.total;
        for (const [tenant, n] of Object.entries(count.byTenant)) byTenant[tenant] = (byTenant[tenant] ?? 0) + n;
      }
      result = { total, byTenant };
    } else {
      result = { closed: (values as { closed: number }[]).reduce((sum, r) => sum + r.closed, 0) };
    }
    return {
      result: result as ResultOf<O>,
      partial,
      answered: [...results.keys()],
      missing: [...expected].filter((instance) => !results.has(instance)),
    };
  }

  private onMessage(raw: Buffer): void {
    if (this.stopped) return;
    let message: Request | Reply;
    try {
      message = JSON.parse(raw.toString('utf8')) as Request | Reply;
    } catch {
      return;
    }
    if (!message || typeof message !== 'object' || typeof message.id !== 'string') return;
    const own = this.instance;
    if (message.t === 'res') {
      if (message.to !== own || typeof message.from !== 'string') return;
      const pending = this.pending.get(message.id);
      if (!pending || pending.results.has(message.from) || !wellFormed(pending.op, message.result)) return;
      pending.results.set(message.from, message.result);
      if ([...pending.expected].every((instance) => pending.results.has(instance))) pending.finish();
      return;
    }
    if (message.t !== 'req' || message.from === own || typeof message.from !== 'string') return;
    if (message.op !== 'list' && message.op !== 'count' && message.op !== 'close') return;
    let result: unknown;
    try {
      result = this.answer(message.op, message.args && typeof message.args === 'object' ? message.args : {});
    } catch {
      // A request this instance would refuse from a flow: answered with nothing done.
      result = message.op === 'list' ? [] : message.op === 'count' ? { total: 0, byTenant: {} } : { closed: 0 };
    }
    const reply: Reply = { t: 'res', id: message.id, to: message.from, from: own, result };
    this.bus.publishSide(CONTROL_CHANNEL, JSON.stringify(reply));
  }
}

/** An answer of the shape `op` gives (anything else on the bus is ignored, never merged). */
function wellFormed(op: Op, result: unknown): boolean {
  if (op === 'list') return Array.isArray(result) && result.every((s) => s !== null && typeof s === 'object');
  if (!result || typeof result !== 'object') return false;
  if (op === 'close') return Number.isInteger((result as { closed?: unknown }).closed);
  const { total, byTenant } = result as { total?: unknown; byTenant?: unknown };
  return (
    Number.isInteger(total) &&
    !!byTenant &&
    typeof byTenant === 'object' &&
    Object.values(byTenant as Record<string, unknown>).every((n) => Number.isInteger(n))
  );
}

/** One control per clustered listener in this process, shared by the control nodes that use it. */
const shared = new WeakMap<WebSocketListener, { control: ClusterSessionControl; users: number }>();

/** The listener's cluster control (started on first use), or undefined when it is not clustered. */
export function acquireClusterControl(
  listener: WebSocketListener,
  options?: ClusterControlOptions,
): ClusterSessionControl | undefined {
  const bus = listener.cluster as ClusterBus | undefined;
  if (!bus || typeof (bus as Partial<ClusterBus>).onSideChannel !== 'function') return undefined;
  let entry = shared.get(listener);
  if (!entry) {
    entry = { control: new ClusterSessionControl(bus, listener, options), users: 0 };
    shared.set(listener, entry);
    entry.control.start();
  }
  entry.users++;
  return entry.control;
}

/** Gives back what acquireClusterControl handed out; the last user stops it. */
export async function releaseClusterControl(listener: WebSocketListener): Promise<void> {
  const entry = shared.get(listener);
  if (!entry) return;
  entry.users--;
  if (entry.users > 0) return;
  shared.delete(listener);
  await entry.control.stop();
}
