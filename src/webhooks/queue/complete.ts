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
  const nowIso = now.toISOString();
  const kept = await store.rows<{ seq: number | string }>(sql`
    with input as (
      select * from unnest(${col((t) => t.seq)}::bigint[], ${col((t) => t.status)}::text[],
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
      -- Only the join: the planner then looks each row up in the primary key, or on a table
      -- small enough hashes the input and scans it (milliseconds). A second test of seq
      -- (seq = any(…)) made it estimate one row of d and rescan the input once per row — a
      -- 400 × 400 join filter, 4 × slower — whenever the statistics predated a burst. No test
      -- of status either (only pending rows are ever leased, and every move out of pending
      -- clears the lease): it would let the planner walk the whole due index instead.
      where d.seq = i.seq and d.locked_by = ${dispatcherId}
      returning d.seq
    ),
    att as (
      insert into webhook_attempts (delivery_seq, started_at, duration_ms, status_code, response, error)
      select i.seq, i.started_at, i.duration_ms, i.status_code, i.response, i.error
      from input i join upd u on u.seq = i.seq
    )
    select seq from upd`);
  const done = new Set(kept.map((r) => Number(r.seq)));
  return tries.filter((t) => !done.has(t.seq)).map((t) => t.seq);
}
