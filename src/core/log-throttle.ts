/**
 * Keeps a flood of refusals from flooding the log: the first line of a kind is written at once,
 * repeats within the window are counted and summed up in one line when the window ends.
 */
export class LogThrottle {
  private readonly suppressed = new Map<string, { line: string; count: number }>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly write: (line: string) => void,
    private readonly windowMs = 1000,
  ) {}

  /**
   * Writes `line` unless a line of the same `kind` was written in this window (then it is counted).
   * The kind is the line itself unless given: e.g. lines that differ only in a retry delay.
   */
  note(line: string, kind = line): void {
    const seen = this.suppressed.get(kind);
    if (seen === undefined) {
      this.write(line);
      this.suppressed.set(kind, { line, count: 0 });
    } else {
      seen.count++;
    }
    if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), this.windowMs);
      this.timer.unref();
    }
  }

  private flush(): void {
    this.timer = undefined;
    for (const { line, count } of this.suppressed.values()) if (count > 0) this.write(`${line} (×${count} more)`);
    this.suppressed.clear();
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.suppressed.clear();
  }
}
