/**
 * Record outcomes: for a batch of finished tries (possibly of many messages), in ONE statement
 * (data-modifying CTEs are atomic): move each recipient to its new state — only while this
 * worker still holds its lease (CONVENTIONS.md #5) — store the attempt, write the event (the
 * webhook outbox), put hard-bounced addresses on the account's suppression list (SPEC.md
 * "Delivery rules"; the first reason recorded stays), and refresh each message's summary status.
 */
import { sql } from "drizzle-orm";
import { pgArray } from "../../db/arrays.js";
import type { Store } from "../../db/client.js";
import { notifyCoalesced } from "../../db/notify.js";
import { WEBHOOK_CHANNEL } from "../../lib/channels.js";
import { newId } from "../../lib/ids.js";
import { canTransition, eventTypeFor, REFRESH_MESSAGE_STATUS, type RecipientStatus } from "../../messages/status.js";
import type { Reason } from "../classify.js";

export interface FinishedTry {
  recipientId: string;
  /** The claim's lease token (ClaimedRecipient.lease): the result is written only under it. */
  lease: string;
  messageId: string;
  accountId: string;
  email: string;
  /** The RFC 5322 Message-ID and tags, for the event body. */
  messageIdHeader: string;
  tags: Record<string, string>;
  status: Extract<RecipientStatus, "delivered" | "deferred" | "bounced" | "failed">;
  reason: Reason;
  /** Only for deferred. */
  nextAttemptAt: Date | null;
  /** Whether a try was actually made (false for e.g. a null MX decided without connecting). */
  attempted: boolean;
  attempt: { startedAt: Date; durationMs: number; mx: string | null; ip: string | null; tls: { version: string; cipher: string } | null };
  bounceKind?: "hard" | "soft";
}

/**
 * Writes the batch; returns the recipient ids whose lease had been lost (their result is
 * dropped). A result is written while the row still carries its claim's lease token: still
 * `sending`, or given back to the queue by the reaper (which keeps the token) and not claimed
 * again since — the transaction's result is known, so sending it again would be a duplicate.
 */
export async function recordOutcomes(store: Store, tries: FinishedTry[], now: Date): Promise<string[]> {
  if (tries.length === 0) return [];
  for (const t of tries) if (!canTransition("sending", t.status)) throw new Error(`bad transition sending → ${t.status}`);
  const col = <T>(f: (t: FinishedTry) => T) => pgArray(tries.map(f) as (string | number | null)[]);
  const nowIso = now.toISOString();
  const kept = await store.rows<{ id: string; hooked: boolean }>(sql`
    with input as (
      select * from unnest(${col((t) => t.recipientId)}::text[], ${col((t) => t.lease)}::text[], ${col((t) => t.status)}::text[],
        ${col((t) => t.nextAttemptAt?.toISOString() ?? null)}::timestamptz[], ${col((t) => t.reason.code)}::int[],
        ${col((t) => t.reason.enhanced)}::text[], ${col((t) => t.reason.text)}::text[], ${col((t) => t.attempt.mx)}::text[],
        ${col((t) => t.attempt.ip)}::text[], ${col((t) => t.attempt.tls?.version ?? null)}::text[],
        ${col((t) => t.attempt.tls?.cipher ?? null)}::text[], ${col((t) => (t.attempted ? 1 : 0))}::int[],
        ${col((t) => t.attempt.startedAt.toISOString())}::timestamptz[], ${col((t) => t.attempt.durationMs)}::int[],
        ${col(() => newId("attempt", now.getTime()))}::text[], ${col(() => newId("event", now.getTime()))}::text[],
        ${col((t) => eventTypeFor(t.status))}::text[], ${col((t) => JSON.stringify(eventData(t)))}::jsonb[],
        ${col((t) => bounceKindOf(t) === "hard")}::boolean[])
        as i(id, lease, status, next_at, code, enhanced, text, mx, ip, tls_version, tls_cipher, tried, started_at, duration_ms,
             attempt_id, event_id, event_type, event_data, hard_bounce)
    ),
    upd as (
      update recipients r set
        status = i.status, next_attempt_at = i.next_at, attempts = r.attempts + i.tried,
        last_code = i.code, last_enhanced = i.enhanced, last_text = i.text,
        mx = coalesce(i.mx, r.mx), ip = coalesce(i.ip, r.ip),
        -- MX, IP and TLS are the last host's that was tried; a try that reached none (DNS, guard) keeps them.
        tls = case when i.mx is null then r.tls when i.tls_version is null then null else jsonb_build_object('version', i.tls_version, 'cipher', i.tls_cipher) end,
        delivered_at = case when i.status = 'delivered' then ${nowIso}::timestamptz else r.delivered_at end,
        locked_by = null, locked_until = null, updated_at = ${nowIso}::timestamptz
      from input i
      where r.id = i.id and r.locked_by = i.lease and r.status in ('sending', 'queued', 'deferred')
      -- The input's columns come along, so the inserts below need no join back to it: with
      -- the lease test estimated at one row, the planner joined upd and input in a nested
      -- loop, 120 × 120 comparisons for the attempts alone (EXPLAIN ANALYZE, bench data).
      returning r.id, r.message_id, r.account_id, r.status, r.email, r.email_key, i.tried, i.attempt_id, i.started_at,
        i.duration_ms, i.mx, i.ip, i.tls_version, i.tls_cipher, i.code, i.enhanced, i.text, i.event_id, i.event_type,
        i.event_data, i.hard_bounce
    ),
    att as (
      insert into attempts (id, recipient_id, message_id, account_id, started_at, duration_ms, mx, ip, tls_version, tls_cipher, code, enhanced, text, outcome)
      select attempt_id, id, message_id, account_id, started_at, duration_ms, mx, ip, tls_version, tls_cipher, code, enhanced, text, status
      from upd where tried = 1
    ),
    ev as (
      insert into events (id, account_id, message_id, recipient_id, type, data, created_at)
      select event_id, account_id, message_id, id, event_type, event_data, ${nowIso}::timestamptz from upd
    ),
    -- Only recipients whose update held (lease kept) suppress; detail is the reply, e.g. "550 5.1.1 No such user".
    sup as (
      insert into suppressions (account_id, email_key, email, reason, source_message_id, source_recipient_id, detail, created_at)
      select account_id, email_key, email, 'hard_bounce', message_id, id, concat_ws(' ', code, enhanced, text), ${nowIso}::timestamptz
      from upd where hard_bounce
      on conflict (account_id, email_key) do nothing
    ),
    ${REFRESH_MESSAGE_STATUS}
    -- Whether any account of the batch has a webhook endpoint (one uncorrelated look-up): only
    -- then can the events have fanned out, and only then are the dispatchers woken.
    select id, (select exists (select 1 from webhooks w where w.account_id in (select account_id from upd))) as hooked from upd`,
    // Planned once per connection (until ANALYZE invalidates the plan): every input is an array
    // parameter joined by key, so a generic plan (arrays taken for 10 rows) is the plan each
    // batch got anyway, and planning this statement per batch cost PostgreSQL ~1 ms. Never a
    // sequential scan: with the statistics of a young table (a plan made at the first batch
    // on a fresh install), the summary update read every message (seen: 8 ms at 30 000).
    { plan_cache_mode: "force_generic_plan", enable_seqscan: "off" },
  );
  if (kept[0]?.hooked) notifyCoalesced(store, WEBHOOK_CHANNEL); // the events are committed
  const done = new Set(kept.map((r) => r.id));
  return tries.filter((t) => !done.has(t.recipientId)).map((t) => t.recipientId);
}

/** A bounce carries its kind (deliver.ts sets it with classify.ts `bounceKind`); one without is taken as hard. Null when not a bounce. */
function bounceKindOf(t: FinishedTry): "hard" | "soft" | null {
  return t.status === "bounced" ? (t.bounceKind ?? "hard") : null;
}

/** The event body's `data` (SPEC.md "Webhooks"). */
function eventData(t: FinishedTry) {
  return {
    message: t.messageId,
    recipient: t.recipientId,
    email: t.email,
    message_id: t.messageIdHeader,
    tags: t.tags,
    smtp: { code: t.reason.code, enhanced: t.reason.enhanced, text: t.reason.text },
    ...(t.status === "deferred" ? { next_attempt_at: t.nextAttemptAt?.toISOString() ?? null } : {}),
    ...(t.status === "bounced" ? { bounce: { kind: bounceKindOf(t), source: "smtp" } } : {}),
    ...(t.attempt.mx ? { mx: t.attempt.mx, ip: t.attempt.ip } : {}),
  };
}
