/**
 * Warm SMTP sessions kept for the next transaction to the same host (SPEC.md: connections are
 * reused while warm). Postfix keeps a cached session 2 s idle and 300 s at most; we keep one
 * idle for `idleMs` and for at most `maxUses` transactions.
 */
export interface Reusable {
  readonly usable: boolean;
  quit(): Promise<void>;
}

interface Idle<S> {
  key: string;
  session: S;
  uses: number;
  timer: NodeJS.Timeout;
}

export class SessionPool<S extends Reusable> {
  private readonly idle = new Map<string, Idle<S>[]>();
  /** Every idle entry, oldest first (a Set keeps insertion order): what `trim` closes first. */
  private readonly byAge = new Set<Idle<S>>();
  private readonly uses = new WeakMap<S, number>();

  constructor(private readonly opts: { idleMs: number; maxUses: number }) {}

  /** A warm session to `key` (`ip:port`), or null. */
  take(key: string): S | null {
    const list = this.idle.get(key);
    while (list && list.length) {
      const entry = list.pop()!;
      clearTimeout(entry.timer);
      this.byAge.delete(entry);
      if (list.length === 0) this.idle.delete(key);
      if (entry.session.usable) {
        this.uses.set(entry.session, entry.uses);
        return entry.session;
      }
    }
    return null;
  }

  /**
   * Hands a session back after a transaction: kept warm at once (the taker sends RSET before
   * its transaction), or QUIT when spent.
   */
  give(key: string, session: S): void {
    const uses = (this.uses.get(session) ?? 0) + 1;
    if (!session.usable || uses >= this.opts.maxUses) {
      void session.quit();
      return;
    }
    const entry: Idle<S> = {
      key,
      session,
      uses,
      timer: setTimeout(() => void this.evict(entry), this.opts.idleMs),
    };
    entry.timer.unref();
    const list = this.idle.get(key) ?? [];
    list.push(entry);
    this.idle.set(key, list);
    this.byAge.add(entry);
  }

  /**
   * QUITs the oldest idle sessions until at most `max` stay, resolving once they are closed: the
   * caller is about to open a connection, and idle ones count against its connection cap
   * (MAX_CONNECTIONS counts open connections, warm or busy).
   */
  async trim(max: number): Promise<void> {
    const quits: Promise<void>[] = [];
    for (const entry of this.byAge) {
      if (this.byAge.size <= Math.max(0, max)) break;
      clearTimeout(entry.timer);
      quits.push(this.evict(entry));
    }
    await Promise.all(quits);
  }

  private evict(entry: Idle<S>): Promise<void> {
    this.byAge.delete(entry);
    const list = this.idle.get(entry.key);
    const i = list?.indexOf(entry) ?? -1;
    if (list && i >= 0) list.splice(i, 1);
    if (list && list.length === 0) this.idle.delete(entry.key);
    return entry.session.quit();
  }

  /** QUITs every idle session. */
  async close(): Promise<void> {
    const all = [...this.byAge];
    this.idle.clear();
    this.byAge.clear();
    await Promise.all(
      all.map((e) => {
        clearTimeout(e.timer);
        return e.session.quit();
      }),
    );
  }
}
