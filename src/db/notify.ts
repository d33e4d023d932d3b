/**
 * Coalesced NOTIFY, sent after the caller's rows have committed and without waiting for it: at
 * most one NOTIFY per (store, channel) is in flight; calls made meanwhile are folded into ONE
 * more sent after it completes. Every commit is thus followed by a NOTIFY that began after it,
 * and a burst costs a couple of NOTIFYs. A failed NOTIFY is dropped: listeners also poll.
 *
 * Why not pg_notify inside the writing transaction: PostgreSQL serialises the commits of all
 * transactions that NOTIFY (one global lock held through the WAL flush).
 */
import type { Store } from "./client.js";

const state = new WeakMap<Store, Map<string, { again: boolean }>>();

export function notifyCoalesced(store: Store, channel: string): void {
  let channels = state.get(store);
  if (!channels) state.set(store, (channels = new Map()));
  const inFlight = channels.get(channel);
  if (inFlight) {
    inFlight.again = true;
    return;
  }
  const s = { again: false };
  channels.set(channel, s);
  void (async () => {
    do {
      s.again = false;
      await store.notify(channel, "").catch(() => {});
    } while (s.again);
    channels.delete(channel);
  })();
}
