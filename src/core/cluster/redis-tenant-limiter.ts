/**
 * `maxConnections` per tenant across every instance of a listener, counted in Redis.
 *
 * Layout: one hash per tenant, `<prefix>:limit:<tenant>`, with two fields per instance:
 * `c:<instance>` (connections that instance holds) and `e:<instance>` (when its lease ends, in
 * Redis server time). Taking a slot is one Lua script, so it is atomic across instances: it sums
 * the counts of instances whose lease is still running (deleting the fields of expired ones, i.e.
 * crashed instances), refuses when the sum has reached the limit, else increments its own count and
 * renews its own lease. Each instance renews its leases every `leaseMs / 3`; a crashed instance
 * stops renewing and its slots stop counting after `leaseMs` at most. The whole hash also expires
 * (2 × lease) once nobody renews it.
 *
 * The instance's own count is kept locally too and is the truth for its own field: after any
 * failed or uncertain write (Redis away, timeout) the next renewal writes the absolute local count.
 *
 * Redis unavailable: acquire() falls back to the local limit (this instance's own connections
 * against `maxPerTenant`), never to "unlimited"; while Redis is away the cluster-wide total can
 * reach (instances × limit). When Redis is back the local counts are written again.
 */
import { createHash } from 'node:crypto';
import type { Redis as RedisClient } from 'ioredis';
import type { TenantConnectionLimiter } from '../server/tenant-limiter';
import type { ClusterBus, ClusterState } from './cluster-bus';

const DEFAULT_LEASE_MS = 15_000;

const ACQUIRE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local own, max, lease = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local flat = redis.call('HGETALL', KEYS[1])
local counts, leases = {}, {}
for i = 1, #flat, 2 do
  local kind, inst = string.sub(flat[i], 1, 2), string.sub(flat[i], 3)
  if kind == 'c:' then counts[inst] = tonumber(flat[i + 1]) or 0
  elseif kind == 'e:' then leases[inst] = tonumber(flat[i + 1]) or 0 end
end
local total = 0
for inst, count in pairs(counts) do
  if inst == own or (leases[inst] ~= nil and leases[inst] > now) then
    total = total + count
  else
    redis.call('HDEL', KEYS[1], 'c:' .. inst, 'e:' .. inst)
  end
end
for inst, _ in pairs(leases) do
  if counts[inst] == nil then redis.call('HDEL', KEYS[1], 'e:' .. inst) end
end
if total >= max then return 0 end
redis.call('HINCRBY', KEYS[1], 'c:' .. own, 1)
redis.call('HSET', KEYS[1], 'e:' .. own, now + lease)
redis.call('PEXPIRE', KEYS[1], lease * 2)
return 1
`;

const RELEASE = `
local c = 'c:' .. ARGV[1]
if redis.call('HEXISTS', KEYS[1], c) == 0 then return 0 end
local n = redis.call('HINCRBY', KEYS[1], c, -1)
if n <= 0 then redis.call('HDEL', KEYS[1], c, 'e:' .. ARGV[1]) end
return n
`;

/** ARGV: instance, local count, lease ms, mode ("set": write the count; "renew": restore it only if missing). */
const RENEW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local c, e = 'c:' .. ARGV[1], 'e:' .. ARGV[1]
local count, lease = tonumber(ARGV[2]), tonumber(ARGV[3])
if ARGV[4] == 'set' or redis.call('HEXISTS', KEYS[1], c) == 0 then
  if count <= 0 then
    redis.call('HDEL', KEYS[1], c, e)
    return 0
  end
  redis.call('HSET', KEYS[1], c, count)
end
redis.call('HSET', KEYS[1], e, now + lease)
redis.call('PEXPIRE', KEYS[1], lease * 2)
return 1
`;

interface Script {
  source: string;
  sha: string;
}

function script(source: string): Script {
  return { source, sha: createHash('sha1').update(source).digest('hex') };
}

const SCRIPTS = { acquire: script(ACQUIRE), release: script(RELEASE), renew: script(RENEW) };

/** EVALSHA, falling back to EVAL when Redis does not have the script yet (e.g. after a restart). */
async function run(client: RedisClient, s: Script, key: string, args: (string | number)[]): Promise<unknown> {
  try {
    return await client.evalsha(s.sha, 1, key, ...args);
  } catch (err) {
    if (!String((err as Error).message).startsWith('NOSCRIPT')) throw err;
    return client.eval(s.source, 1, key, ...args);
  }
}

export interface RedisTenantLimiterOptions {
  maxPerTenant: number;
  /** How long an instance's slots count without renewal (crashed instance). */
  leaseMs?: number;
}

export class RedisTenantLimiter implements TenantConnectionLimiter {
  private readonly local = new Map<string, number>();
  /** Tenants for which this instance may have fields in Redis. */
  private readonly written = new Set<string>();
  private readonly leaseMs: number;
  private readonly timer: NodeJS.Timeout;
  private inflightAcquires = 0;
  /** Redis may disagree with the local counts: write them absolutely at the next chance. */
  private dirty = false;
  private closed = false;
  private readonly onState = (state: ClusterState): void => {
    if (state === 'ready') {
      this.dirty = true;
      this.renew();
    }
  };

  constructor(
    private readonly bus: ClusterBus,
    private readonly options: RedisTenantLimiterOptions,
  ) {
    this.leaseMs = Math.max(100, options.leaseMs ?? DEFAULT_LEASE_MS);
    this.timer = setInterval(() => this.renew(), Math.floor(this.leaseMs / 3));
    this.timer.unref();
    bus.on('state', this.onState);
  }

  private key(tenantId: string): string {
    return `${this.bus.prefix}:limit:${tenantId}`;
  }

  /** Connections this instance holds for the tenant. */
  held(tenantId: string): number {
    return this.local.get(tenantId) ?? 0;
  }

  async acquire(tenantId: string): Promise<boolean> {
    if (this.closed) return false;
    const max = this.options.maxPerTenant;
    const client = this.bus.commands;
    if (client) {
      this.inflightAcquires++;
      // Before the script runs, so close() removes what it may write.
      this.written.add(tenantId);
      try {
        const granted =
          (await run(client, SCRIPTS.acquire, this.key(tenantId), [this.bus.instanceId, max, this.leaseMs])) === 1;
        // Closed while waiting: close() has removed this instance's fields after the script ran.
        if (!granted || this.closed) return false;
        this.local.set(tenantId, this.held(tenantId) + 1);
        return true;
      } catch {
        // Unknown whether the script ran: decide locally and rewrite the counts when Redis answers.
        this.dirty = true;
      } finally {
        this.inflightAcquires--;
      }
    } else {
      this.dirty = true;
    }
    if (this.closed) return false;
    // Redis unavailable: the local limit still holds (fail to local, never to unlimited).
    const held = this.held(tenantId);
    if (held >= max) return false;
    this.local.set(tenantId, held + 1);
    this.written.add(tenantId);
    return true;
  }

  release(tenantId: string): void {
    const held = this.held(tenantId);
    if (held <= 0) return;
    if (held === 1) this.local.delete(tenantId);
    else this.local.set(tenantId, held - 1);
    const client = this.bus.commands;
    if (!client) {
      this.dirty = true;
      return;
    }
    run(client, SCRIPTS.release, this.key(tenantId), [this.bus.instanceId]).catch(() => {
      this.dirty = true;
    });
  }

  /**
   * Renews this instance's leases (restoring a count another instance removed as expired); after a
   * failure, writes the local counts absolutely, but only when no acquire is in flight (its
   * increment would otherwise be overwritten).
   */
  private renew(): void {
    if (this.closed) return;
    const client = this.bus.commands;
    if (!client) {
      if (this.written.size > 0 || this.local.size > 0) this.dirty = true;
      return;
    }
    const wasDirty = this.dirty;
    const absolute = wasDirty && this.inflightAcquires === 0;
    if (absolute) this.dirty = false;
    for (const tenantId of this.local.keys()) this.written.add(tenantId);
    for (const tenantId of [...this.written]) {
      const count = this.held(tenantId);
      if (count === 0 && !absolute) {
        // Its last release removed the fields (or, after a failure, the next absolute write will).
        if (!wasDirty) this.written.delete(tenantId);
        continue;
      }
      run(client, SCRIPTS.renew, this.key(tenantId), [
        this.bus.instanceId,
        count,
        this.leaseMs,
        absolute ? 'set' : 'renew',
      ]).then(
        () => {
          if (absolute && count === 0 && this.held(tenantId) === 0) this.written.delete(tenantId);
        },
        () => {
          this.dirty = true;
        },
      );
    }
  }

  /** Stops renewing and removes this instance's fields (best effort; expiry covers the rest). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.bus.off('state', this.onState);
    const client = this.bus.commands;
    const tenants = new Set([...this.written, ...this.local.keys()]);
    this.local.clear();
    this.written.clear();
    if (!client) return;
    const own = this.bus.instanceId;
    await Promise.all([...tenants].map((t) => client.hdel(this.key(t), `c:${own}`, `e:${own}`).catch(() => 0)));
  }
}
