/**
 * Record finished tries, one statement for a whole batch (data-modifying CTEs are atomic):
 * move each delivery to its outcome — only while this dispatcher still holds its lease
 * (CONVENTIONS.md #5), so a dispatcher whose lease expired cannot overwrite another's result —
 * and store the try in webhook_attempts.
 */
import { sql } from "drizzle-orm";
import { pgArray } from "../../db/arrays.js";
import type { Store } from "../../db/client.js";

export interface FinishedTry {
  seq: number;
  /** succeeded (2xx), pending (retry at nextAttemptAt) or failed (lifetime exceeded). */
  status: "succeeded" | "pending" | "failed";
  nextAttemptAt: Date | null;
  startedAt: Date;
  durationMs: number;
  statusCode: number | null;
  /** First KB of the answer's body. */
  response: string | null;
  error: string | null;
}

/** Writes the batch; returns the seqs whose lease had been lost (their result is dropped). */
export async function recordTries(store: Store, dispatcherId: string, tries: FinishedTry[], now: Date): Promise<number[]> {
  if (tries.length === 0) return [];
  const col = <T>(f: (t: FinishedTry) => T) => pgArray(tries.map(f) as (string | number | null)[]);
  const seqs = col((t) => t.seq);
  const nowIso = now.toISOString();
  const kept = await store.rows<{ seq: number | string }>(sql`
    with input as materialized (
      select *, ${dispatcherId}::text as by from unnest(${seqs}::bigint[], ${col((t) => t.status)}::text[],
        ${col((t) => t.nextAttemptAt?.toISOString() ?? null)}::timestamptz[], ${col((t) => t.startedAt.toISOString())}::timestamptz[],
        ${col((t) => t.durationMs)}::int[], ${col((t) => t.statusCode)}::int[], ${col((t) => t.response)}::text[], ${col((t) => t.error)}::text[])
        as i(seq, status, next_at, started_at, duration_ms, status_code, response, error)
    ),
    upd as (
      update webhook_deliveries d set
        status = i.status, attempts = d.attempts + 1, next_attempt_at = i.next_at,
        last_status_code = i.status_code, last_duration_ms = i.duration_ms, last_error = i.error,
        delivered_at = case when i.status = 'succeeded' then ${nowIso}::timestamptz else null end,
        locked_by = null, locked_until = null, updated_at = ${nowIso}::timestamptz
      from input i
      -- Each row by its primary key, whatever the statistics say: the seq list makes the
      -- planner expect the batch's size from the key (an index or bitmap scan, hash-joined to
      -- the input), and the lease test is a join clause against the materialized input. As
      -- "locked_by = <constant>" it was taken for a one-row filter once ANALYZE had seen the
      -- leases clear, and the batch was joined in a nested loop over a scan of the whole table:
      -- 400 × 400 comparisons, ~110 µs of PostgreSQL time a row (EXPLAIN ANALYZE, 20 000
      -- deliveries); without the seq list, a hash join over a scan of the whole table. No test
      -- of status: only pending rows are ever leased, and every move out of pending clears the
      -- lease. The tries are inserted from RETURNING, so there is no second join to plan.
      where d.seq = any(${seqs}::bigint[]) and d.seq = i.seq and d.locked_by = i.by
      returning d.seq, i.started_at, i.duration_ms, i.status_code, i.response, i.error
    ),
    att as (
      insert into webhook_attempts (delivery_seq, started_at, duration_ms, status_code, response, error)
      select seq, started_at, duration_ms, status_code, response, error from upd
    )
    select seq from upd`,
    // Planned once per connection (a generic plan; ANALYZE invalidates it), which takes the seq
    // list for 10 rows: no nested loop (it would compare every row of the batch with every row
    // of the input, see above) and no sequential scan (a plan made on a young table).
    { plan_cache_mode: "force_generic_plan", enable_nestloop: "off", enable_seqscan: "off" },
  );
  const done = new Set(kept.map((r) => Number(r.seq)));
  return tries.filter((t) => !done.has(t.seq)).map((t) => t.seq);
}
