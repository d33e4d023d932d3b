/**
 * Asynchronous outcomes: what a report received after delivery does to recipients of ONE
 * message of ONE account (SPEC.md "Recipient states": an asynchronous DSN → `bounced`, a
 * feedback report → `complained`; a delayed DSN is only a note). In ONE statement, like
 * src/delivery/queue/complete.ts: move each recipient, write its event (the webhook outbox),
 * add the suppression, and refresh the message's summary status.
 *
 * Which states a report may move (decided here, once):
 * - only `delivered` recipients are changed or get an event. A DSN or ARF report is sent by an
 *   MTA that accepted the message, so for a recipient we never saw accepted (queued, sending,
 *   deferred) a report is not evidence of anything; changing a `sending` recipient would also
 *   race the worker that holds its lease. Final states (bounced, failed, complained, …) stay.
 * - delivered → bounced | complained only (TRANSITIONS in status.ts). A delayed note writes
 *   `email.deferred` and leaves the recipient `delivered`.
 * - every row is looked up by message AND account, so an id from another account matches
 *   nothing; the recipient's own stored address is what gets suppressed.
 */
import { sql } from "drizzle-orm";
import { pgArray } from "../db/arrays.js";
import type { Store } from "../db/client.js";
import { notifyCoalesced } from "../db/notify.js";
import { WEBHOOK_CHANNEL } from "../lib/channels.js";
import { newId } from "../lib/ids.js";
import type { SuppressionReason } from "../suppressions/suppressions.js";
import { canTransition, REFRESH_MESSAGE_STATUS, type RecipientStatus } from "./status.js";

/** The only state an asynchronous report acts on. */
export const ASYNC_FROM: RecipientStatus = "delivered";

export interface AsyncChange {
  recipientId: string;
  /** The new state, or null for an event only (a delayed DSN). */
  to: Extract<RecipientStatus, "bounced" | "complained"> | null;
  eventType: "email.bounced" | "email.complained" | "email.deferred";
  /** Merged into the event's data after {message, recipient, email, message_id, tags}. */
  data: Record<string, unknown>;
  suppression?: { reason: Extract<SuppressionReason, "hard_bounce" | "complaint">; detail: string };
  /** The reply the report carries; becomes the recipient's last_response when it moves. */
  reply?: { code: number | null; enhanced: string | null; text: string };
}

/** Per change: applied, or why not (`duplicate`: already in `to`; `ignored`: any other state or no such recipient). */
export type AsyncResult = { recipientId: string; result: "applied" | "duplicate" | "ignored"; status: RecipientStatus | null };

/** Records the changes for recipients of `messageId` in `accountId`, atomically. */
export async function recordAsyncOutcome(store: Store, accountId: string, messageId: string, changes: AsyncChange[], now: Date = new Date()): Promise<AsyncResult[]> {
  // One change per recipient: a report naming an address twice acts once.
  changes = changes.filter((c, i) => changes.findIndex((d) => d.recipientId === c.recipientId) === i);
  if (changes.length === 0) return [];
  for (const c of changes) if (c.to && !canTransition(ASYNC_FROM, c.to)) throw new Error(`bad transition ${ASYNC_FROM} → ${c.to}`);
  const col = (f: (c: AsyncChange) => string | number | null) => pgArray(changes.map(f));
  const at = now.toISOString();
  const rows = await store.rows<{ id: string; applied: boolean; status: RecipientStatus | null }>(sql`
    with input as (
      select * from unnest(${col((c) => c.recipientId)}::text[], ${col((c) => c.to)}::text[],
        ${col((c) => c.eventType)}::text[], ${col((c) => JSON.stringify(c.data))}::jsonb[],
        ${col((c) => c.suppression?.reason ?? null)}::text[], ${col((c) => c.suppression?.detail ?? null)}::text[],
        ${col(() => newId("event", now.getTime()))}::text[], ${col((c) => c.reply?.code ?? null)}::int[],
        ${col((c) => c.reply?.enhanced ?? null)}::text[], ${col((c) => c.reply?.text ?? null)}::text[])
        as i(id, to_status, event_type, data, sup_reason, sup_detail, event_id, code, enhanced, reply_text)
    ),
    target as (
      select i.*, r.email, r.email_key, r.status, m.id as message_id, m.message_id as header_id, m.tags
      from input i
      join recipients r on r.id = i.id and r.account_id = ${accountId} and r.message_id = ${messageId}
      join messages m on m.id = r.message_id and m.account_id = ${accountId}
      where r.status = ${ASYNC_FROM}
    ),
    -- The status guard is evaluated again on the locked row: of two reports racing, one wins.
    upd as (
      update recipients r set status = t.to_status, updated_at = ${at}::timestamptz,
        last_code = case when t.reply_text is null then r.last_code else t.code end,
        last_enhanced = case when t.reply_text is null then r.last_enhanced else t.enhanced end,
        last_text = coalesce(t.reply_text, r.last_text)
      from target t where r.id = t.id and t.to_status is not null and r.status = ${ASYNC_FROM}
      returning r.id, r.message_id, r.status
    ),
    applied as (
      select t.* from target t where t.to_status is null
      union all
      select t.* from target t join upd u on u.id = t.id
    ),
    ev as (
      insert into events (id, account_id, message_id, recipient_id, type, data, created_at)
      select a.event_id, ${accountId}, a.message_id, a.id, a.event_type,
        jsonb_build_object('message', a.message_id, 'recipient', a.id, 'email', a.email, 'message_id', a.header_id, 'tags', a.tags) || a.data,
        ${at}::timestamptz
      from applied a
    ),
    sup as (
      insert into suppressions (account_id, email_key, email, reason, source_message_id, source_recipient_id, detail, created_at)
      -- Keyed as the recipient is (email_key, as sendMessage and the claim's check compute it):
      -- SQL lower() folds some characters otherwise (İ), and the next message would not match.
      select distinct on (a.email_key) ${accountId}, a.email_key, a.email, a.sup_reason, a.message_id, a.id, a.sup_detail, ${at}::timestamptz
      from applied a where a.sup_reason is not null
      on conflict (account_id, email_key) do nothing
    ),
    ${REFRESH_MESSAGE_STATUS}
    select i.id, exists (select 1 from applied a where a.id = i.id) as applied, r.status
    from input i left join recipients r on r.id = i.id and r.account_id = ${accountId} and r.message_id = ${messageId}`);
  const byId = new Map(rows.map((r) => [r.id, r]));
  const results = changes.map((c): AsyncResult => {
    const r = byId.get(c.recipientId);
    if (r?.applied) return { recipientId: c.recipientId, result: "applied", status: c.to ?? r.status };
    return { recipientId: c.recipientId, result: r?.status && r.status === c.to ? "duplicate" : "ignored", status: r?.status ?? null };
  });
  if (results.some((r) => r.result === "applied")) notifyCoalesced(store, WEBHOOK_CHANNEL);
  return results;
}
