/**
 * Counts connections per tenant so a handshake beyond `maxConnections` is refused. A slot is taken
 * when the token has been verified (the tenant is known only then) and given back on every close
 * and error path. Taking is synchronous here, so concurrent handshakes cannot both win the last slot.
 */

export interface TenantConnectionLimiter {
  /** Takes a slot for the tenant; false when the tenant is at its limit. */
  acquire(tenantId: string): boolean | Promise<boolean>;
  release(tenantId: string): void;
  close?(): void | Promise<void>;
}

export class LocalTenantLimiter implements TenantConnectionLimiter {
  private readonly counts = new Map<string, number>();

  constructor(private readonly maxPerTenant: number) {}

  acquire(tenantId: string): boolean {
    const count = this.counts.get(tenantId) ?? 0;
    if (this.maxPerTenant > 0 && count >= this.maxPerTenant) return false;
    this.counts.set(tenantId, count + 1);
    return true;
  }

  release(tenantId: string): void {
    const count = this.counts.get(tenantId) ?? 0;
    if (count <= 1) this.counts.delete(tenantId);
    else this.counts.set(tenantId, count - 1);
  }

  held(tenantId: string): number {
    return this.counts.get(tenantId) ?? 0;
  }
}
