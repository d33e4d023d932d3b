/**
 * A small TTL cache driven by an injected clock, so tests move time instead of sleeping.
 * Bounded: when full, the oldest entry goes first (a Map iterates in insertion order).
 */

export interface Cached<V> {
  value: V;
  /** Whole seconds left before the entry expires (at least 1 while it lives). */
  remainingSeconds: number;
}

export class TtlCache<V> {
  private readonly entries = new Map<string, { value: V; expiresAt: number }>();

  constructor(
    private readonly now: () => number,
    private readonly maxEntries = 10_000,
  ) {}

  get(key: string): Cached<V> | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    const left = entry.expiresAt - this.now();
    if (left <= 0) {
      this.entries.delete(key);
      return undefined;
    }
    return { value: entry.value, remainingSeconds: Math.ceil(left / 1000) };
  }

  /** Keeps `value` for `seconds`; zero or less means "do not cache" (RFC 1035 §3.2.1: TTL 0). */
  set(key: string, value: V, seconds: number): void {
    if (!(seconds > 0)) return;
    this.entries.delete(key);
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(key, { value, expiresAt: this.now() + seconds * 1000 });
  }

  get size(): number {
    return this.entries.size;
  }
}
