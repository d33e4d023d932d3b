/**
 * Leases: extend them while deliveries are held (queued behind their endpoint's cap or in
 * flight), give back unstarted ones on shutdown, reap the ones whose dispatcher died.
 */
import { sql } from "drizzle-orm";
import { pgArray } from "../../db/arrays.js";
import type { Store } from "../../db/client.js";

/** Extends this dispatcher's leases on the given deliveries (the heartbeat). */
export async function extendLeases(store: Store, dispatcherId: string, seqs: number[], until: Date): Promise<void> {
  if (seqs.length === 0) return;
  await store.rows(sql`
    update webhook_deliveries set locked_until = ${until.toISOString()}::timestamptz
    where locked_by = ${dispatcherId} and status = 'pending' and seq = any(${pgArray(seqs)}::bigint[])`);
}

/** Gives deliveries back unfinished (graceful shutdown): due again at once, no try counted. */
export async function releaseDeliveries(store: Store, dispatcherId: string, seqs: number[], now: Date): Promise<void> {
  if (seqs.length === 0) return;
  await store.rows(sql`
    update webhook_deliveries set locked_by = null, locked_until = null, updated_at = ${now.toISOString()}::timestamptz
    where locked_by = ${dispatcherId} and status = 'pending' and seq = any(${pgArray(seqs)}::bigint[])`);
}

/**
 * Clears leases that expired (their dispatcher died or stalled). Claims already ignore an
 * expired lease; this keeps the lease index small and says in the log that it happened.
 */
export async function reapExpiredLeases(store: Store, now: Date): Promise<number> {
  const rows = await store.rows(sql`
    update webhook_deliveries set locked_by = null, locked_until = null
    where locked_by is not null and locked_until < ${now.toISOString()}::timestamptz
    returning seq`);
  return rows.length;
}
