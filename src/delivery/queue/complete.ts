/**
 * Record outcomes: for a batch of finished tries (possibly of many messages), in one
 * transaction: move each recipient to its new state (only while this worker still holds its
 * lease — CONVENTIONS.md #5), store the attempt, write the event (the webhook outbox), and
 * refresh each message's summary status. A fixed number of statements per batch.
 */
import { sql } from "drizzle-orm";
import { pgArray } from "../../db/arrays.js";
import type { Store } from "../../db/client.js";
import { newId } from "../../lib/ids.js";
import { canTransition, eventTypeFor, summarise, type RecipientStatus } from "../../messages/status.js";
import type { Reason } from "../classify.js";

export interface FinishedTry {
  recipientId: string;
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
  /** Whether a try was actually made (false for e.g. a lifetime expiry decided without connecting). */
  attempted: boolean;
  attempt: { startedAt: Date; durationMs: number; mx: string | null; ip: string | null; tls: { version: string; cipher: string } | null };
  bounceKind?: "hard" | "soft";
}

/** Writes the batch; returns the recipient ids whose lease had been lost (their result is dropped). */
export async function recordOutcomes(store: Store, workerId: string, tries: FinishedTry[], now: Date): Promise<string[]> {
  if (tries.length === 0) return [];
  for (const t of tries) if (!canTransition("sending", t.status)) throw new Error(`bad transition sending → ${t.status}`);
  const col = <T>(f: (t: FinishedTry) => T) => pgArray(tries.map(f) as (string | number | null)[]);
  const nowIso = now.toISOString();
  return store.db.transaction(async (tx) => {
    const run = async <R extends Record<string, unknown>>(q: ReturnType<typeof sql>) => {
      const res = (await tx.execute(q)) as unknown as { rows?: R[] } & R[];
      return (res.rows ?? res) as R[];
    };
    const updated = await run<{ id: string }>(sql`
      with input as (
        select * from unnest(${col((t) => t.recipientId)}::text[], ${col((t) => t.status)}::text[],
          ${col((t) => t.nextAttemptAt?.toISOString() ?? null)}::timestamptz[], ${col((t) => t.reason.code)}::int[],
          ${col((t) => t.reason.enhanced)}::text[], ${col((t) => t.reason.text)}::text[], ${col((t) => t.attempt.mx)}::text[],
          ${col((t) => t.attempt.ip)}::text[], ${col((t) => (t.attempt.tls ? JSON.stringify(t.attempt.tls) : null))}::jsonb[],
          ${col((t) => (t.attempted ? 1 : 0))}::int[])
          as i(id, status, next_at, code, enhanced, text, mx, ip, tls, tried)
      )
      update recipients r set
        status = i.status, next_attempt_at = i.next_at, attempts = r.attempts + i.tried,
        last_code = i.code, last_enhanced = i.enhanced, last_text = i.text,
        mx = coalesce(i.mx, r.mx), ip = coalesce(i.ip, r.ip), tls = coalesce(i.tls, r.tls),
        delivered_at = case when i.status = 'delivered' then ${nowIso}::timestamptz else r.delivered_at end,
        locked_by = null, locked_until = null, updated_at = ${nowIso}::timestamptz
      from input i
      where r.id = i.id and r.locked_by = ${workerId} and r.status = 'sending'
      returning r.id`);
    const kept = new Set(updated.map((r) => r.id));
    const done = tries.filter((t) => kept.has(t.recipientId));
    if (done.length) {
      const attempted = done.filter((t) => t.attempted);
      const a = <T>(f: (t: FinishedTry) => T) => pgArray(attempted.map(f) as (string | number | null)[]);
      if (attempted.length)
        await run(sql`
          insert into attempts (id, recipient_id, message_id, account_id, started_at, duration_ms, mx, ip, tls_version, tls_cipher, code, enhanced, text, outcome)
          select * from unnest(${a(() => newId("attempt", now.getTime()))}::text[], ${a((t) => t.recipientId)}::text[],
            ${a((t) => t.messageId)}::text[], ${a((t) => t.accountId)}::text[], ${a((t) => t.attempt.startedAt.toISOString())}::timestamptz[],
            ${a((t) => t.attempt.durationMs)}::int[], ${a((t) => t.attempt.mx)}::text[], ${a((t) => t.attempt.ip)}::text[],
            ${a((t) => t.attempt.tls?.version ?? null)}::text[], ${a((t) => t.attempt.tls?.cipher ?? null)}::text[],
            ${a((t) => t.reason.code)}::int[], ${a((t) => t.reason.enhanced)}::text[], ${a((t) => t.reason.text)}::text[],
            ${a((t) => t.status)}::text[])`);
      const e = <T>(f: (t: FinishedTry) => T) => pgArray(done.map(f) as (string | number | null)[]);
      await run(sql`
        insert into events (id, account_id, message_id, recipient_id, type, data, created_at)
        select * from unnest(${e(() => newId("event", now.getTime()))}::text[], ${e((t) => t.accountId)}::text[],
          ${e((t) => t.messageId)}::text[], ${e((t) => t.recipientId)}::text[], ${e((t) => eventTypeFor(t.status))}::text[],
          ${e((t) => JSON.stringify(eventData(t)))}::jsonb[], ${e(() => nowIso)}::timestamptz[])`);
      await refreshMessageStatus(run, [...new Set(done.map((t) => t.messageId))]);
    }
    return tries.filter((t) => !kept.has(t.recipientId)).map((t) => t.recipientId);
  });
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
    ...(t.status === "bounced" ? { bounce: { kind: t.bounceKind ?? "hard", source: "smtp" } } : {}),
    ...(t.attempt.mx ? { mx: t.attempt.mx, ip: t.attempt.ip } : {}),
  };
}

type Run = <R extends Record<string, unknown>>(q: ReturnType<typeof sql>) => Promise<R[]>;

/** Recomputes messages.status from its recipients (src/messages/status.ts `summarise`). */
export async function refreshMessageStatus(run: Run, messageIds: string[]): Promise<void> {
  if (messageIds.length === 0) return;
  const rows = await run<{ message_id: string; statuses: string[] | string }>(sql`
    select message_id, array_agg(status) as statuses from recipients
    where message_id = any(${pgArray(messageIds)}::text[]) group by message_id`);
  const parse = (v: string[] | string) => (Array.isArray(v) ? v : v.replace(/^\{|\}$/g, "").split(","));
  const ids = rows.map((r) => r.message_id);
  const statuses = rows.map((r) => summarise(parse(r.statuses) as RecipientStatus[]));
  await run(sql`
    update messages m set status = i.status
    from unnest(${pgArray(ids)}::text[], ${pgArray(statuses)}::text[]) as i(id, status)
    where m.id = i.id and m.status <> i.status`);
}
