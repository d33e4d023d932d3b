/**
 * Leases: extend them while a delivery is in flight, release them on shutdown, reap the ones
 * whose worker died. A lease token is `<worker>.<claim>` (claim.ts); a worker's statements here
 * cover all of its own claims. Lease times are the database's clock (clock_timestamp()), not the
 * process's: with workers on several hosts, one whose clock ran ahead would otherwise reap
 * leases the others still renew, and send their messages a second time.
 */
import { sql } from "drizzle-orm";
import { pgArray } from "../../db/arrays.js";
import type { Store } from "../../db/client.js";
import { REFRESH_MESSAGE_STATUS } from "../../messages/status.js";

/** Extends this worker's leases on the given recipients to `leaseMs` from now. */
export async function extendLeases(store: Store, workerId: string, ids: string[], leaseMs: number): Promise<void> {
  if (ids.length === 0) return;
  await store.rows(sql`
    update recipients set locked_until = clock_timestamp() + ${leaseMs}::int * interval '1 millisecond'
    where starts_with(locked_by, ${`${workerId}.`}) and status = 'sending' and id = any(${pgArray(ids)}::text[])`);
}

/**
 * Gives recipients back to the queue unfinished (graceful shutdown, or a lease whose worker
 * died): due now, no attempt counted, no event (nothing happened to them); their messages'
 * summaries follow (a message no longer `sending`).
 */
export async function releaseLeases(store: Store, workerId: string, ids: string[], now: Date): Promise<void> {
  if (ids.length === 0) return;
  await store.rows(sql`
    with upd as (
      update recipients
      set status = case when attempts = 0 then 'queued' else 'deferred' end,
          locked_by = null, locked_until = null, next_attempt_at = ${now.toISOString()}::timestamptz
      where starts_with(locked_by, ${`${workerId}.`}) and status = 'sending' and id = any(${pgArray(ids)}::text[])
      returning id, message_id, status
    ),
    ${REFRESH_MESSAGE_STATUS}
    select count(*) from upd`);
}

/**
 * Returns recipients whose lease expired (their worker died or stalled) to the queue, due at `now`. The lease
 * token stays in locked_by until the next claim: a stalled worker's result may still be written
 * until then (complete.ts), instead of the message being sent again.
 */
export async function reapExpiredLeases(store: Store, now: Date): Promise<number> {
  const [row] = await store.rows<{ n: number | string }>(sql`
    with upd as (
      update recipients
      set status = case when attempts = 0 then 'queued' else 'deferred' end,
          locked_until = null, next_attempt_at = ${now.toISOString()}::timestamptz
      where status = 'sending' and locked_until < clock_timestamp()
      returning id, message_id, status
    ),
    ${REFRESH_MESSAGE_STATUS}
    select count(*) as n from upd`);
  return Number(row?.n ?? 0);
}
