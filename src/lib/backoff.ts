/**
 * When to write a failed batch again (the delivery worker's outcomes, the dispatcher's tries):
 * 100 ms doubling to `maxMs`, until writes have been failing for longer than `giveUpMs` (a
 * lease: by then another process may hold the rows, and a batch that can never be written must
 * not hold back every later one). Pure state; the caller keeps its own timer.
 */
export class WriteBackoff {
  private failures = 0;
  private since: number | null = null;

  constructor(
    private readonly giveUpMs: number,
    private readonly maxMs = 5_000,
  ) {}

  /** A write went through: the next failure starts afresh. */
  succeeded(): void {
    this.failures = 0;
    this.since = null;
  }

  /** After a failed write: the ms to wait before the next try, or null to give the batch up. */
  failed(now: number = Date.now()): number | null {
    this.since ??= now;
    if (now - this.since > this.giveUpMs) {
      this.succeeded();
      return null;
    }
    return Math.min(this.maxMs, 100 * 2 ** this.failures++);
  }
}
