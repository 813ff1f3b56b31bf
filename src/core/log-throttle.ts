/**
 * Keeps a flood of refusals from flooding the log: the first line of a kind is written at once,
 * repeats within the window are counted and summed up in one line when the window ends.
 */
export class LogThrottle {
  private readonly suppressed = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly write: (line: string) => void,
    private readonly windowMs = 1000,
  ) {}

  note(line: string): void {
    const count = this.suppressed.get(line);
    if (count === undefined) {
      this.write(line);
      this.suppressed.set(line, 0);
    } else {
      this.suppressed.set(line, count + 1);
    }
    if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), this.windowMs);
      this.timer.unref();
    }
  }

  private flush(): void {
    this.timer = undefined;
    for (const [line, count] of this.suppressed) if (count > 0) this.write(`${line} (×${count} more)`);
    this.suppressed.clear();
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.suppressed.clear();
  }
}
