/**
 * Claim due work: pick due recipients in time order with FOR UPDATE SKIP LOCKED, widen the
 * pick to every due recipient of the same (message, destination domain) so one SMTP
 * transaction carries them all, and lease them to this worker. One statement.
 */
import { sql } from "drizzle-orm";
import { pgArray } from "../../db/arrays.js";
import type { Store } from "../../db/client.js";

export type ClaimedRecipient = {
  id: string;
  message_id: string;
  account_id: string;
  email: string;
  domain: string;
  attempts: number;
  /** When the recipient first fell due (the later of acceptance and scheduled_at): MAX_QUEUE_LIFETIME counts from here. */
  queued_at: Date;
};

export async function claimDue(
  store: Store,
  opts: { workerId: string; limit: number; leaseMs: number; skipDomains: string[]; now: Date },
): Promise<ClaimedRecipient[]> {
  const now = opts.now.toISOString();
  const until = new Date(opts.now.getTime() + opts.leaseMs).toISOString();
  const skip = pgArray(opts.skipDomains);
  const rows = await store.rows<ClaimedRecipient & { queued_at: Date | string }>(sql`
    with picked as (
      select message_id, domain from recipients
      where status in ('queued', 'deferred') and next_attempt_at <= ${now}::timestamptz
        and not (domain = any(${skip}::text[]))
        -- One worker per (message, domain) group: without this, two workers picking different
        -- rows of one group at once would split it over two SMTP transactions.
        and pg_try_advisory_xact_lock(7362112, hashtext(message_id || ' ' || domain))
      order by next_attempt_at
      limit ${opts.limit}
      for update skip locked
    ), grp as materialized (
      select distinct message_id, domain from picked
    ), claim as (
      -- Widen through recipients_message_idx (a few rows per message). The due test is kept
      -- non-indexable on purpose: with stale statistics the planner would otherwise walk every
      -- due row through recipients_due_idx for each group (seen: 500 ms per claim).
      select r.id from recipients r
      where r.message_id = any(array(select message_id from grp))
        and (r.message_id, r.domain) in (select message_id, domain from grp)
        and r.status in ('queued', 'deferred') and (r.next_attempt_at + interval '0 s') <= ${now}::timestamptz
      for update of r skip locked
    )
    update recipients r
    set status = 'sending', locked_by = ${opts.workerId}, locked_until = ${until}::timestamptz, updated_at = ${now}::timestamptz
    from claim where r.id = claim.id
    returning r.id, r.message_id, r.account_id, r.email, r.domain, r.attempts,
      (select greatest(m.created_at, coalesce(m.scheduled_at, m.created_at)) from messages m where m.id = r.message_id) as queued_at`);
  return rows.map((r) => ({ ...r, queued_at: new Date(r.queued_at) }));
}

/** When the next recipient falls due (for the worker's sleep), or null when nothing waits. */
export async function nextDueAt(store: Store): Promise<Date | null> {
  const [row] = await store.rows<{ at: Date | string | null }>(
    sql`select min(next_attempt_at) as at from recipients where status in ('queued', 'deferred')`,
  );
  return row?.at ? new Date(row.at) : null;
}
