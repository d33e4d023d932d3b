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
 * expired lease; this says in the log that it happened. There is no index on the lease (it
 * would make every claim a non-HOT update, see schema.ts): a leased row is always pending and
 * was due when claimed (a claim never moves next_attempt_at), so the due index finds them all
 * by walking the due backlog, as a claim does.
 */
export async function reapExpiredLeases(store: Store, now: Date): Promise<number> {
  const at = now.toISOString();
  const rows = await store.rows(sql`
    update webhook_deliveries set locked_by = null, locked_until = null
    where status = 'pending' and next_attempt_at <= ${at}::timestamptz
      and locked_by is not null and locked_until < ${at}::timestamptz
    returning seq`);
  return rows.length;
}
