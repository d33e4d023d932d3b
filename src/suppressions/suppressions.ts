/**
 * The suppression list's core (SPEC.md "Delivery rules": hard bounces add a suppression): the
 * reasons, which bounces are hard, and the one insert every path uses. An address is suppressed
 * per account; the first reason recorded stays.
 */
import { sql } from "drizzle-orm";
import type { Store } from "../db/client.js";

export const SUPPRESSION_REASONS = ["hard_bounce", "complaint", "unsubscribe", "manual"] as const;
export type SuppressionReason = (typeof SUPPRESSION_REASONS)[number];

export interface NewSuppression {
  accountId: string;
  email: string;
  reason: SuppressionReason;
  sourceMessageId?: string | null;
  sourceRecipientId?: string | null;
  detail?: string | null;
}

/** Adds the address unless the account already suppresses it; true when it was added. */
export async function addSuppression(store: Store, s: NewSuppression, now: Date = new Date()): Promise<boolean> {
  const rows = await store.rows(sql`
    insert into suppressions (account_id, email_key, email, reason, source_message_id, source_recipient_id, detail, created_at)
    values (${s.accountId}, ${s.email.toLowerCase()}, ${s.email}, ${s.reason}, ${s.sourceMessageId ?? null},
      ${s.sourceRecipientId ?? null}, ${s.detail ?? null}, ${now.toISOString()}::timestamptz)
    on conflict (account_id, email_key) do nothing
    returning email_key`);
  return rows.length === 1;
}
