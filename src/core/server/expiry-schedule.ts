import { LongTimeout, setTimeoutAt } from './timers';

/**
 * Token expiries of all sessions of a listener on one timer. Sessions due at the same time share
 * a bucket (exp is in whole seconds, so tokens issued within a second share one). A timer per
 * session costs Node a timer list per distinct delay: about 600 bytes per session and a
 * priority-queue update per handshake (measured with heap snapshots in the benchmark).
 */
export class ExpirySchedule<T> {
  private readonly buckets = new Map<number, Set<T>>();
  private timer: LongTimeout | undefined;
  private armedFor = Number.POSITIVE_INFINITY;

  constructor(private readonly onDue: (item: T) => void) {}

  /** Calls onDue(item) at the epoch-ms time `at` (at once if it is past), unless removed before. */
  add(item: T, at: number): void {
    let bucket = this.buckets.get(at);
    if (!bucket) {
      bucket = new Set();
      this.buckets.set(at, bucket);
    }
    bucket.add(item);
    if (at < this.armedFor) this.arm(at);
  }

  remove(item: T, at: number): void {
    const bucket = this.buckets.get(at);
    if (!bucket) return;
    bucket.delete(item);
    // An emptied bucket goes; a timer armed for it finds nothing due and re-arms for the next.
    if (bucket.size === 0) this.buckets.delete(at);
  }

  clear(): void {
    this.timer?.cancel();
    this.timer = undefined;
    this.armedFor = Number.POSITIVE_INFINITY;
    this.buckets.clear();
  }

  private arm(at: number): void {
    this.timer?.cancel();
    this.armedFor = at;
    this.timer = setTimeoutAt(at, () => this.fire());
  }

  private fire(): void {
    this.timer = undefined;
    this.armedFor = Number.POSITIVE_INFINITY;
    const now = Date.now();
    let next = Number.POSITIVE_INFINITY;
    for (const [at, bucket] of this.buckets) {
      if (at <= now) {
        this.buckets.delete(at);
        for (const item of bucket) this.onDue(item);
      } else if (at < next) {
        next = at;
      }
    }
    if (next !== Number.POSITIVE_INFINITY && next < this.armedFor) this.arm(next);
  }
}
