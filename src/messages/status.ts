/**
 * Recipient states (SPEC.md "Recipient states"), declared once:
 * - queued: accepted, waiting for its first try (or for scheduled_at)
 * - sending: claimed by a worker, lease in locked_until
 * - deferred: a temporary failure; tried again at next_attempt_at
 * - delivered: the receiver answered 2xx after DATA
 * - bounced: 5xx from the receiver, or an asynchronous DSN later
 * - failed: no retry makes sense (null MX, NXDOMAIN, refused destination, lifetime exceeded)
 * - suppressed: on the suppression list at submit time, or by the time it was next due; never sent (again)
 * - cancelled: scheduled, then cancelled
 * - complained: a feedback report (ARF) arrived after delivery
 */
import { sql } from "drizzle-orm";
import type { RECIPIENT_STATUSES, MESSAGE_STATUSES } from "./schemas.js";

export type RecipientStatus = (typeof RECIPIENT_STATUSES)[number];
export type MessageStatus = (typeof MESSAGE_STATUSES)[number];

/**
 * A message's status from its recipients', as an aggregate over a group of recipient rows
 * whose state is in column `status`: the single state when they agree (delivered when every one
 * was delivered, some of them complained of since); while any is still in
 * flight, the most advanced in-flight state (sending > deferred > queued); once all are final
 * and disagree, `partially_delivered` when some were delivered, else the first failure kind
 * (bounced > failed > suppressed > cancelled). SQL so the outcome writer can refresh message
 * rows in the same statement as the recipients (src/delivery/queue/complete.ts).
 */
export const MESSAGE_SUMMARY_SQL = `case
  when count(distinct status) = 1 then min(status)
  when bool_and(status in ('delivered', 'complained')) then 'delivered'
  when bool_or(status = 'sending') then 'sending'
  when bool_or(status = 'deferred') then 'deferred'
  when bool_or(status = 'queued') then 'queued'
  when bool_or(status in ('delivered', 'complained')) then 'partially_delivered'
  when bool_or(status = 'bounced') then 'bounced'
  when bool_or(status = 'failed') then 'failed'
  when bool_or(status = 'suppressed') then 'suppressed'
  when bool_or(status = 'cancelled') then 'cancelled'
  else 'partially_delivered' end`;

/**
 * CTEs that refresh the summary status of every message touched by a preceding data-modifying
 * CTE named `upd` (returning `id, message_id, status` of the recipients it changed). A statement
 * cannot see its own updates in `recipients`, so the new states come from `upd` and the others
 * from the table. Used by every statement that moves recipients (outcomes, asynchronous reports).
 */
export const REFRESH_MESSAGE_STATUS = sql.raw(`states as (
      select message_id, status from upd
      union all
      select r.message_id, r.status from recipients r
      where r.message_id in (select message_id from upd) and r.id not in (select id from upd)
    ),
    summary as (
      select message_id, ${MESSAGE_SUMMARY_SQL} as status from states group by message_id
    ),
    msg as (
      update messages m set status = s.status from summary s where m.id = s.message_id and m.status <> s.status
    )`);

/** Allowed recipient transitions; anything else is a bug and is refused. */
export const TRANSITIONS: Readonly<Record<RecipientStatus, readonly RecipientStatus[]>> = {
  queued: ["sending", "cancelled", "suppressed", "failed"],
  sending: ["delivered", "deferred", "bounced", "failed", "queued"], // queued: lease released unfinished
  deferred: ["sending", "failed", "cancelled", "suppressed"], // suppressed: listed before its next try (delivery/queue/claim.ts)
  delivered: ["complained", "bounced"], // bounced: an asynchronous DSN after a 250
  bounced: [],
  failed: [],
  suppressed: [],
  cancelled: [],
  complained: [],
};

export function canTransition(from: RecipientStatus, to: RecipientStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

/** The webhook event type a transition into `to` emits, if any (SPEC.md "Webhooks"). */
export function eventTypeFor(to: RecipientStatus): string | null {
  switch (to) {
    case "delivered":
    case "deferred":
    case "bounced":
    case "failed":
    case "suppressed":
    case "complained":
    case "cancelled":
      return `email.${to}`;
    default:
      return null;
  }
}
