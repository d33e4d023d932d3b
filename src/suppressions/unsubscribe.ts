/**
 * Unsubscribing a recipient (RFC 8058 one-click POST, or the RFC 2369 mailto through the inbound
 * listener): in ONE statement, add the address to the account's suppression list with reason
 * `unsubscribe` and write the `email.unsubscribed` event (the webhook outbox). The recipient's
 * own delivery state does not change. Repeating it changes nothing and writes no second event.
 */
import { sql } from "drizzle-orm";
import type { Store } from "../db/client.js";
import { notifyCoalesced } from "../db/notify.js";
import { WEBHOOK_CHANNEL } from "../lib/channels.js";
import { newId } from "../lib/ids.js";

export interface UnsubscribeTarget {
  accountId: string;
  messageId: string;
  recipientId: string;
  email: string;
}

/** True when the address was newly suppressed; false when it already was, or the message is not the account's. */
export async function unsubscribe(store: Store, u: UnsubscribeTarget, source: "one-click" | "mailto", now: Date = new Date()): Promise<boolean> {
  const at = now.toISOString();
  const rows = await store.rows<{ email_key: string }>(sql`
    with m as (
      select id, message_id, tags from messages where id = ${u.messageId} and account_id = ${u.accountId}
    ),
    s as (
      insert into suppressions (account_id, email_key, email, reason, source_message_id, source_recipient_id, detail, created_at)
      select ${u.accountId}, ${u.email.toLowerCase()}, ${u.email}, 'unsubscribe', m.id, ${u.recipientId}, ${source}, ${at}::timestamptz from m
      on conflict (account_id, email_key) do nothing
      returning email_key
    ),
    e as (
      insert into events (id, account_id, message_id, recipient_id, type, data, created_at)
      select ${newId("event", now.getTime())}, ${u.accountId}, m.id, ${u.recipientId}, 'email.unsubscribed',
        jsonb_build_object('message', m.id, 'recipient', ${u.recipientId}::text, 'email', ${u.email}::text, 'message_id', m.message_id,
          'tags', m.tags, 'unsubscribe', jsonb_build_object('source', ${source}::text)),
        ${at}::timestamptz
      from m where exists (select 1 from s)
    )
    select email_key from s`);
  if (rows.length) notifyCoalesced(store, WEBHOOK_CHANNEL);
  return rows.length === 1;
}
