/**
 * Claim due work: pick due recipients in time order with FOR UPDATE SKIP LOCKED, widen the
 * pick to every due recipient of the same (message, destination domain) so one SMTP
 * transaction carries them all, and lease them to this worker. One statement.
 *
 * The suppression list is checked again here: an address suppressed after its message was
 * accepted (a bounce or complaint from another message, an unsubscribe, an entry added by hand
 * while the recipient was scheduled or deferred) becomes `suppressed` in the same statement,
 * with its `email.suppressed` event and its message's summary, and is not handed out.
 */
import { sql } from "drizzle-orm";
import { pgArray } from "../../db/arrays.js";
import type { Store } from "../../db/client.js";
import { limitLiteral } from "../../db/limit.js";
import { notifyCoalesced } from "../../db/notify.js";
import { WEBHOOK_CHANNEL } from "../../lib/channels.js";
import { REFRESH_MESSAGE_STATUS } from "../../messages/status.js";

export type ClaimedRecipient = {
  id: string;
  message_id: string;
  account_id: string;
  email: string;
  domain: string;
  attempts: number;
  /**
   * This claim's lease token (`<worker>.<n>`, in locked_by): a result is written only under the
   * token it was claimed with, so a late result of an earlier claim of the same recipient, by
   * this worker or another, never lands on a newer one.
   */
  lease: string;
};

/** Claims made by this process: the second half of each lease token. */
let claims = 0;

export async function claimDue(
  store: Store,
  opts: { workerId: string; limit: number; leaseMs: number; skipDomains: string[]; now: Date },
): Promise<ClaimedRecipient[]> {
  const now = opts.now.toISOString();
  const skip = pgArray(opts.skipDomains);
  const lease = `${opts.workerId}.${++claims}`;
  const rows = await store.rows<ClaimedRecipient & { status: string }>(sql`
    with picked as (
      select message_id, domain from recipients
      where status in ('queued', 'deferred') and next_attempt_at <= ${now}::timestamptz
        and not (domain = any(${skip}::text[]))
        -- One worker per (message, domain) group: without this, two workers picking different
        -- rows of one group at once would split it over two SMTP transactions.
        and pg_try_advisory_xact_lock(7362112, hashtext(message_id || ' ' || domain))
      order by next_attempt_at
      limit ${limitLiteral(opts.limit, 500)}
      for update skip locked
    ), grp as materialized (
      select distinct message_id, domain from picked
    ), claim as (
      -- Widen through recipients_message_idx (a few rows per message). The state and due tests
      -- are kept non-indexable on purpose, so that no partial queue index qualifies: with stale
      -- statistics the planner would otherwise walk every due row through recipients_due_idx
      -- for each group (seen: 500 ms per claim), or, with none yet, every due row through
      -- recipients_domain_due_idx (seen: 6 000 rows, 15 ms of a claim of 120).
      -- (No extra "message_id = any(…)" to steer it: as a second index condition its array was
      -- sorted again for every group, 3 of a claim's 10 ms.)
      select r.id, r.account_id, r.email_key from recipients r
      where (r.message_id, r.domain) in (select message_id, domain from grp)
        and (r.status || '') in ('queued', 'deferred') and (r.next_attempt_at + interval '0 s') <= ${now}::timestamptz
      for update of r skip locked
    ),
    marked as (
      select c.id, exists (select 1 from suppressions s where s.account_id = c.account_id and s.email_key = c.email_key) as suppressed
      from claim c
    ),
    claimed as (
      update recipients r
      set status = case when k.suppressed then 'suppressed' else 'sending' end,
          locked_by = case when k.suppressed then null else ${lease} end,
          -- Leases run on the database's clock, the one every worker shares (lease.ts).
          locked_until = case when k.suppressed then null else clock_timestamp() + ${opts.leaseMs}::int * interval '1 millisecond' end,
          next_attempt_at = case when k.suppressed then null else r.next_attempt_at end,
          updated_at = ${now}::timestamptz
      from marked k where r.id = k.id
      -- (When the message first fell due, for MAX_QUEUE_LIFETIME, comes with the message's load:
      -- not a look-up of its row for every recipient here.)
      returning r.id, r.message_id, r.account_id, r.email, r.email_key, r.domain, r.attempts, r.status, r.locked_by as lease
    ),
    -- The suppressed ones: their event (the webhook outbox) and their messages' summaries.
    upd as (select id, message_id, status from claimed where status = 'suppressed'),
    ev as (
      insert into events (id, account_id, message_id, recipient_id, type, data, created_at)
      select 'evt_' || substr(c.id, 6), c.account_id, c.message_id, c.id, 'email.suppressed',
        jsonb_build_object('message', c.message_id, 'recipient', c.id, 'email', c.email, 'message_id', m.message_id, 'tags', m.tags,
          'suppression', jsonb_build_object('reason', s.reason)),
        ${now}::timestamptz
      from claimed c join messages m on m.id = c.message_id
      join suppressions s on s.account_id = c.account_id and s.email_key = c.email_key
      where c.status = 'suppressed'
    ),
    ${REFRESH_MESSAGE_STATUS}
    select * from claimed`,
    // The pick must walk recipients_due_idx in time order, so that the LIMIT stops it (and the
    // advisory locks it takes) after `limit` rows. With no statistics yet (a fresh queue), the
    // planner took a bitmap scan instead: every due row fetched, every one of them locked
    // (pg_try_advisory_xact_lock, held to the end of the transaction, so other workers skipped
    // them all), then sorted — 6 000 locks and 8 ms for a claim of 120 (auto_explain).
    // Planned once per connection (a generic plan): planning this statement for each claim cost
    // ~1.6 ms of PostgreSQL CPU, ~17 µs a recipient. Nothing in the plan depends on the values:
    // the LIMIT is a constant of the text (db/limit.ts), the scans are fixed by the switches
    // above, and the widening is a nested loop through recipients_message_idx at any size.
    { enable_bitmapscan: "off", enable_seqscan: "off", plan_cache_mode: "force_generic_plan" },
  );
  if (rows.some((r) => r.status === "suppressed")) notifyCoalesced(store, WEBHOOK_CHANNEL);
  return rows.filter((r) => r.status === "sending");
}

/** When the next recipient falls due (for the worker's sleep), or null when nothing waits. */
export async function nextDueAt(store: Store): Promise<Date | null> {
  const [row] = await store.rows<{ at: Date | string | null }>(
    sql`select min(next_attempt_at) as at from recipients where status in ('queued', 'deferred')`,
  );
  return row?.at ? new Date(row.at) : null;
}
