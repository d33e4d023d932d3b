/**
 * What webhooks carry and the states of one delivery, declared once (SPEC.md "Webhooks").
 */

/** The event types an endpoint may subscribe to. */
export const WEBHOOK_EVENT_TYPES = [
  "email.delivered",
  "email.deferred",
  "email.bounced",
  "email.failed",
  "email.suppressed",
  "email.complained",
  "email.unsubscribed",
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/**
 * States of a webhook_deliveries row (one event to one endpoint):
 * - pending: waiting for its next try at next_attempt_at; while a dispatcher holds its lease
 *   (locked_by, locked_until) a try is in flight and no other dispatcher claims it
 * - succeeded: the endpoint answered 2xx (final)
 * - failed: no 2xx before WEBHOOK_RETRY_LIFETIME had passed since the event (final)
 * Rows are created pending by the fan-out trigger (migration 0003); only the dispatcher's
 * complete statement (queue/complete.ts) moves them, and only out of pending.
 */
export const DELIVERY_STATES = ["pending", "succeeded", "failed"] as const;
export type DeliveryStatus = (typeof DELIVERY_STATES)[number];

/**
 * The POST body of an event, built from its events row: `data` is the row's jsonb as text, as
 * PostgreSQL prints it (keys in one canonical order), spliced in without parsing it — the same
 * row gives the same bytes on every retry, and no JSON.parse/stringify per event. The claim
 * statement (queue/claim.ts) builds the same bytes in SQL; test/webhooks/claim.test.ts keeps
 * the two equal.
 */
export function eventBody(e: { type: string; createdAt: Date; dataJson: string }): string {
  return `{"type":${JSON.stringify(e.type)},"created_at":"${e.createdAt.toISOString()}","data":${e.dataJson}}`;
}
