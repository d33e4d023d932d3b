/** GET /webhooks/{id}/deliveries: one endpoint's deliveries, newest first, each with its tries. */
import { and, asc, desc, eq, inArray, lt } from "drizzle-orm";
import type { Db } from "../db/client.js";
import { webhookAttempts, webhookDeliveries } from "../db/schema.js";
import { notFound } from "../lib/errors.js";
import type { DeliveryStatus, WebhookEventType } from "./events.js";
import { findWebhook } from "./webhooks.js";

export interface TryView {
  started_at: string;
  duration_ms: number;
  status_code: number | null;
  /** The first KB of the answer's body. */
  response: string | null;
  error: string | null;
}

export interface DeliveryView {
  /** The delivery's sequence number, as a string (also the page cursor). */
  id: string;
  event_id: string;
  event_type: WebhookEventType;
  status: DeliveryStatus;
  attempts: number;
  next_attempt_at: string | null;
  last_status_code: number | null;
  last_duration_ms: number | null;
  last_error: string | null;
  created_at: string;
  delivered_at: string | null;
  tries: TryView[];
}

const iso = (d: Date | null) => d?.toISOString() ?? null;

/** Cursor: the `id` of the last delivery of the previous page. 404 for another account's endpoint. */
export async function listDeliveries(db: Db, accountId: string, webhookId: string, page: { limit: number; cursor?: string }) {
  if (!(await findWebhook(db, accountId, webhookId))) throw notFound("webhook");
  const rows = await db
    .select()
    .from(webhookDeliveries)
    .where(and(eq(webhookDeliveries.webhookId, webhookId), page.cursor ? lt(webhookDeliveries.seq, Number(page.cursor)) : undefined))
    .orderBy(desc(webhookDeliveries.seq))
    .limit(page.limit + 1);
  const shown = rows.slice(0, page.limit);
  const tries = shown.length
    ? await db
        .select()
        .from(webhookAttempts)
        .where(inArray(webhookAttempts.deliverySeq, shown.map((r) => r.seq)))
        .orderBy(asc(webhookAttempts.id))
    : [];
  const bySeq = new Map<number, TryView[]>();
  for (const t of tries) {
    const list = bySeq.get(t.deliverySeq) ?? [];
    list.push({ started_at: t.startedAt.toISOString(), duration_ms: t.durationMs, status_code: t.statusCode, response: t.response, error: t.error });
    bySeq.set(t.deliverySeq, list);
  }
  const data: DeliveryView[] = shown.map((r) => ({
    id: String(r.seq),
    event_id: r.eventId,
    event_type: r.eventType as WebhookEventType,
    status: r.status as DeliveryStatus,
    attempts: r.attempts,
    next_attempt_at: r.status === "pending" ? iso(r.nextAttemptAt) : null,
    last_status_code: r.lastStatusCode,
    last_duration_ms: r.lastDurationMs,
    last_error: r.lastError,
    created_at: r.createdAt.toISOString(),
    delivered_at: iso(r.deliveredAt),
    tries: bySeq.get(r.seq) ?? [],
  }));
  return { data, next_cursor: rows.length > page.limit ? data[data.length - 1]!.id : null };
}
