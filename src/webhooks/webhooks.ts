/**
 * Webhook endpoints (SPEC.md "Webhooks"): an account's URLs and the event types each one
 * subscribes to. The signing secret is generated here, sealed at rest and shown only once.
 */
import { and, desc, eq, lt } from "drizzle-orm";
import type { Db } from "../db/client.js";
import { webhooks } from "../db/schema.js";
import { AppError, notFound } from "../lib/errors.js";
import { isId, newId } from "../lib/ids.js";
import { open, seal, type ServiceSecret } from "../lib/secret.js";
import type { WebhookEventType } from "./events.js";
import { newWebhookSecret } from "./sign.js";
import { checkWebhookUrl } from "./url.js";
import { pageById } from "../lib/page.js";

export type WebhookRow = typeof webhooks.$inferSelect;

export interface WebhookView {
  id: string;
  url: string;
  events: WebhookEventType[];
  created_at: string;
}

/** The API form of a row: never the secret. */
export function webhookView(row: WebhookRow): WebhookView {
  return { id: row.id, url: row.url, events: row.events as WebhookEventType[], created_at: row.createdAt.toISOString() };
}

/** The secret is bound to its row (the id as sealing context): a sealed value copied to another row does not open. */
export const sealSecret = (secret: ServiceSecret, id: string, whsec: string) => seal(whsec, secret.key("webhook-secret-encryption"), id);
export const openSecret = (secret: ServiceSecret, id: string, sealed: string) => open(sealed, secret.key("webhook-secret-encryption"), id).toString("utf8");

/** Registers an endpoint; 422 for a URL the rules refuse (url.ts). The `secret` is in this answer only. */
export async function createWebhook(
  db: Db,
  secret: ServiceSecret,
  input: { accountId: string; url: string; events: readonly WebhookEventType[]; allowNetworks: readonly string[] },
): Promise<WebhookView & { secret: string }> {
  const checked = checkWebhookUrl(input.url, input.allowNetworks);
  if (!checked.ok) throw new AppError("validation_failed", `invalid webhook url: ${checked.reason}`, [{ path: "url", message: checked.reason }]);
  const id = newId("webhook");
  const whsec = newWebhookSecret();
  const [row] = await db
    .insert(webhooks)
    .values({ id, accountId: input.accountId, url: checked.target.href, events: [...new Set(input.events)], secretSealed: sealSecret(secret, id, whsec) })
    .returning();
  return { ...webhookView(row!), secret: whsec };
}

/** One of the account's endpoints; null for unknown ids and other accounts' endpoints. */
export async function findWebhook(db: Db, accountId: string, id: string): Promise<WebhookRow | null> {
  if (!isId("webhook", id)) return null;
  const [row] = await db
    .select()
    .from(webhooks)
    .where(and(eq(webhooks.id, id), eq(webhooks.accountId, accountId)));
  return row ?? null;
}

export async function getWebhook(db: Db, accountId: string, id: string): Promise<WebhookView> {
  const row = await findWebhook(db, accountId, id);
  if (!row) throw notFound("webhook");
  return webhookView(row);
}

/** The account's endpoints, newest first, cursor-paginated by id. */
export async function listWebhooks(db: Db, accountId: string, page: { limit: number; cursor?: string }) {
  const rows = await db
    .select()
    .from(webhooks)
    .where(and(eq(webhooks.accountId, accountId), page.cursor ? lt(webhooks.id, page.cursor) : undefined))
    .orderBy(desc(webhooks.id))
    .limit(page.limit + 1);
  return pageById(rows, page.limit, webhookView);
}

/**
 * Deletes an endpoint with its deliveries and their tries (foreign keys cascade); later events
 * no longer fan out to it, and a try in flight finds no row to record into. 404 for others'.
 */
export async function deleteWebhook(db: Db, accountId: string, id: string): Promise<{ id: string; deleted: true }> {
  if (!isId("webhook", id)) throw notFound("webhook");
  const [row] = await db
    .delete(webhooks)
    .where(and(eq(webhooks.id, id), eq(webhooks.accountId, accountId)))
    .returning({ id: webhooks.id });
  if (!row) throw notFound("webhook");
  return { id: row.id, deleted: true };
}
