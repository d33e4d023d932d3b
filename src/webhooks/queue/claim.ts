/**
 * Claim due webhook deliveries, one statement: pick pending rows due now and not leased, in
 * time order, with FOR UPDATE SKIP LOCKED (several dispatchers never pick the same row); keep
 * at most `room` per endpoint (what the caller can start or queue under its per-endpoint cap)
 * and skip endpoints with no room at all, so one slow endpoint's backlog never fills a claim;
 * lease the rows to this dispatcher and return each with its event (the endpoint's URL and key
 * the dispatcher loads once per endpoint, endpoints.ts).
 *
 * Run with bitmap scans off: the head of the queue must be read in due-index order and the
 * scan stop at `limit`. When the statistics predate a burst (a quiet table, then 20 000 events)
 * the planner expects a handful of due rows and prefers a bitmap scan, which fetches and sorts
 * every due row on every claim: 29 ms instead of 12 ms for 512 of 20 000 in bench:webhooks.
 */
import { sql } from "drizzle-orm";
import { pgArray } from "../../db/arrays.js";
import type { Store } from "../../db/client.js";
import { limitLiteral } from "../../db/limit.js";

/** The most rows one claim takes (the LIMIT is rounded down to one of a few sizes below it, db/limit.ts). */
const MAX_CLAIM = 4096;

export interface ClaimedDelivery {
  seq: number;
  webhookId: string;
  eventId: string;
  attempts: number;
  eventAt: Date;
  /** The POST body, exactly as eventBody (events.ts) builds it, spliced together by PostgreSQL. */
  body: string;
}

export interface ClaimOptions {
  dispatcherId: string;
  /** Most rows in all. */
  limit: number;
  /** Most rows per endpoint not listed in `rooms`. */
  perEndpoint: number;
  /** Endpoints with less room than `perEndpoint` (0: skipped). */
  rooms: Map<string, number>;
  /**
   * Only these endpoints (a refill of the ones the caller holds): the scan passes over other
   * endpoints' rows rather than locking rows the caller would not keep.
   */
  only?: readonly string[];
  leaseMs: number;
  now: Date;
}

type Row = {
  seq: number | string;
  webhook_id: string;
  event_id: string;
  attempts: number;
  event_ms: number | string;
  body: string;
};

/**
 * eventBody (events.ts) in SQL: the row's data as jsonb prints it, created_at in the form of
 * Date#toISOString (milliseconds, truncated as a JavaScript Date of the row would be). Built by
 * PostgreSQL so that each claimed row is one text column, not a type, a timestamp to parse and
 * the data. test/webhooks/claim.test.ts holds both to the same bytes.
 */
const BODY = sql.raw(`'{"type":' || to_json(e.type)::text || ',"created_at":"' || to_char(e.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') || '","data":' || e.data::text || '}'`);

export async function claimDeliveries(store: Store, o: ClaimOptions): Promise<ClaimedDelivery[]> {
  const now = o.now.toISOString();
  const until = new Date(o.now.getTime() + o.leaseMs).toISOString();
  const skip = [...o.rooms].filter(([, n]) => n <= 0).map(([id]) => id);
  const partial = [...o.rooms].filter(([, n]) => n > 0);
  const rows = await store.rows<Row>(sql`
    with due as (
      select seq, webhook_id, next_attempt_at from webhook_deliveries
      where status = 'pending' and next_attempt_at <= ${now}::timestamptz
        and (locked_until is null or locked_until < ${now}::timestamptz)
        and not (webhook_id = any(${pgArray(skip)}::text[]))${o.only ? sql` and webhook_id = any(${pgArray(o.only)}::text[])` : sql``}
      order by next_attempt_at
      limit ${limitLiteral(o.limit, MAX_CLAIM)}
      for update skip locked
    ), ranked as (
      select due.seq, coalesce(room.n, ${o.perEndpoint}) as room,
        row_number() over (partition by due.webhook_id order by due.next_attempt_at, due.seq) as n
      from due left join unnest(${pgArray(partial.map(([id]) => id))}::text[], ${pgArray(partial.map(([, n]) => n))}::int[])
        as room(webhook_id, n) on room.webhook_id = due.webhook_id
    )
    update webhook_deliveries d
    set locked_by = ${o.dispatcherId}, locked_until = ${until}::timestamptz, updated_at = ${now}::timestamptz
    from ranked r, events e
    where r.n <= r.room and d.seq = r.seq and e.id = d.event_id
    returning d.seq, d.webhook_id, d.event_id, d.attempts, floor(extract(epoch from e.created_at) * 1000)::float8 as event_ms, ${BODY} as body`,
    // Planned once per connection (a generic plan; ANALYZE invalidates it): the LIMIT is a
    // constant of the text, the rooms are a few rows whatever their values, and no scan here may
    // be sequential — a plan made on a young table would otherwise hash-join a scan of all events.
    { enable_bitmapscan: "off", enable_seqscan: "off", plan_cache_mode: "force_generic_plan" },
  );
  return rows.map((r) => ({
    seq: Number(r.seq),
    webhookId: r.webhook_id,
    eventId: r.event_id,
    attempts: r.attempts,
    eventAt: new Date(Number(r.event_ms)),
    body: r.body,
  }));
}
