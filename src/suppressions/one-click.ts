/**
 * One-click unsubscribe through the link in List-Unsubscribe (RFC 8058): the token is the only
 * authority (no API key), so nothing happens unless it verifies; then the address goes on its
 * account's suppression list with reason `unsubscribe` and `email.unsubscribed` is written, in
 * one statement (unsubscribe.ts). Repeating it is harmless: the answer is the same.
 */
import { sql } from "drizzle-orm";
import type { Store } from "../db/client.js";
import { AppError } from "../lib/errors.js";
import { unsubscribe } from "./unsubscribe.js";
import { verifyUnsubscribeToken } from "./unsubscribe-token.js";

/**
 * Unsubscribes the address the token names. Throws AppError: 400 for a bad token (nothing
 * changes), 404 when the message it was sent with no longer exists. `newly` is false when the
 * address was already suppressed (by this link or for any other reason).
 */
export async function unsubscribeByLink(store: Store, key: Buffer, token: string, now: Date = new Date()): Promise<{ email: string; newly: boolean }> {
  const claims = await verifyUnsubscribeToken(key, token);
  if (!claims) throw new AppError("malformed_request", "this unsubscribe link is not valid (it may have been cut short or altered)");
  const target = { accountId: claims.account, messageId: claims.message, recipientId: claims.recipient, email: claims.email };
  if (await unsubscribe(store, target, "one-click", now)) return { email: claims.email, newly: true };
  // Nothing inserted: already on the list — or the message (and so the account) is gone.
  const [listed] = await store.rows(sql`
    select 1 as one from suppressions where account_id = ${claims.account} and email_key = ${claims.email.toLowerCase()}`);
  if (!listed) throw new AppError("not_found", "the message this unsubscribe link came with no longer exists");
  return { email: claims.email, newly: false };
}
