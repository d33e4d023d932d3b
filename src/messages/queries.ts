/** Reading messages: one message with its recipients, and the filtered, paginated list. Every query is scoped to one account. */
import { and, asc, desc, eq, inArray, lt, sql } from "drizzle-orm";
import type { Db } from "../db/client.js";
import { attempts, messages, recipients } from "../db/schema.js";
import { notFound } from "../lib/errors.js";
import type { MessageStatus, RecipientStatus } from "./status.js";

type MessageRow = typeof messages.$inferSelect;
type RecipientRow = typeof recipients.$inferSelect;

const messageColumns = {
  id: messages.id,
  messageId: messages.messageId,
  status: messages.status,
  fromHeader: messages.fromHeader,
  addresses: messages.addresses,
  subject: messages.subject,
  tags: messages.tags,
  size: messages.size,
  scheduledAt: messages.scheduledAt,
  createdAt: messages.createdAt,
};
type MessageSummaryRow = Pick<MessageRow, keyof typeof messageColumns>;

const iso = (d: Date | null) => (d ? d.toISOString() : null);

type AttemptRow = typeof attempts.$inferSelect;

/** The attempts row as the API shows it (also the shape of the timeline's attempt entries). */
export function attemptView(a: AttemptRow) {
  return {
    id: a.id,
    at: a.startedAt.toISOString(),
    outcome: a.outcome as "delivered" | "deferred" | "bounced" | "failed",
    mx: a.mx,
    ip: a.ip,
    tls: a.tlsVersion && a.tlsCipher ? { version: a.tlsVersion, cipher: a.tlsCipher } : null,
    smtp: { code: a.code, enhanced: a.enhanced, text: a.text },
    duration_ms: a.durationMs,
  };
}

function recipientView(r: RecipientRow, history?: AttemptRow[]) {
  return {
    id: r.id,
    email: r.email,
    kind: r.kind as "to" | "cc" | "bcc",
    status: r.status as RecipientStatus,
    attempts: r.attempts,
    next_attempt_at: iso(r.nextAttemptAt),
    last_response: r.lastCode === null && r.lastText === null ? null : { code: r.lastCode, enhanced: r.lastEnhanced, text: r.lastText },
    mx: r.mx,
    ip: r.ip,
    tls: r.tls ?? null,
    delivered_at: iso(r.deliveredAt),
    ...(history ? { history: history.map(attemptView) } : {}),
  };
}

function messageView(m: MessageSummaryRow, rcpts: RecipientRow[], history?: Map<string, AttemptRow[]>) {
  return {
    id: m.id,
    message_id: m.messageId,
    status: m.status as MessageStatus,
    from: m.fromHeader,
    to: m.addresses.to,
    cc: m.addresses.cc,
    bcc: m.addresses.bcc,
    reply_to: m.addresses.reply_to,
    subject: m.subject,
    tags: m.tags,
    size: m.size,
    scheduled_at: iso(m.scheduledAt),
    created_at: m.createdAt.toISOString(),
    recipients: rcpts.map((r) => recipientView(r, history ? (history.get(r.id) ?? []) : undefined)),
  };
}
export type MessageView = ReturnType<typeof messageView>;

/** One message of the account, or 404 (also for another account's message). */
export async function getMessage(db: Db, accountId: string, id: string): Promise<MessageView> {
  const [m] = await db
    .select(messageColumns)
    .from(messages)
    .where(and(eq(messages.id, id), eq(messages.accountId, accountId)));
  if (!m) throw notFound("message");
  const [rcpts, tries] = await Promise.all([
    db.select().from(recipients).where(and(eq(recipients.messageId, id), eq(recipients.accountId, accountId))).orderBy(asc(recipients.id)),
    // Through the attempts key (message_id, …); oldest first by when each try started.
    db.select().from(attempts).where(and(eq(attempts.messageId, id), eq(attempts.accountId, accountId))).orderBy(asc(attempts.startedAt), asc(attempts.id)),
  ]);
  const history = new Map<string, AttemptRow[]>();
  for (const a of tries) {
    const list = history.get(a.recipientId);
    if (list) list.push(a);
    else history.set(a.recipientId, [a]);
  }
  return messageView(m, rcpts, history);
}

export interface ListFilter {
  limit: number;
  cursor?: string;
  status?: MessageStatus;
  recipient?: string;
  tag?: string;
}

/** Newest first; `next_cursor` is the last id of the page when more follow. */
export async function listMessages(db: Db, accountId: string, f: ListFilter) {
  let tagCond;
  if (f.tag !== undefined) {
    const i = f.tag.indexOf(":");
    tagCond =
      i < 0
        ? sql`${messages.tags} ? ${f.tag}`
        : sql`${messages.tags} @> ${JSON.stringify({ [f.tag.slice(0, i)]: f.tag.slice(i + 1) })}::jsonb`;
  }
  const rows = await db
    .select(messageColumns)
    .from(messages)
    .where(
      and(
        eq(messages.accountId, accountId),
        f.cursor ? lt(messages.id, f.cursor) : undefined,
        f.status ? eq(messages.status, f.status) : undefined,
        f.recipient
          ? sql`exists (select 1 from ${recipients} r where r.message_id = ${messages.id} and r.account_id = ${accountId} and r.email_key = ${f.recipient.trim().toLowerCase()})`
          : undefined,
        tagCond,
      ),
    )
    .orderBy(desc(messages.id))
    .limit(f.limit + 1);
  const page = rows.slice(0, f.limit);
  const rcpts = page.length
    ? await db
        .select()
        .from(recipients)
        .where(and(eq(recipients.accountId, accountId), inArray(recipients.messageId, page.map((m) => m.id))))
        .orderBy(asc(recipients.id))
    : [];
  const byMessage = new Map<string, RecipientRow[]>();
  for (const r of rcpts) byMessage.set(r.messageId, [...(byMessage.get(r.messageId) ?? []), r]);
  return {
    data: page.map((m) => messageView(m, byMessage.get(m.id) ?? [])),
    next_cursor: rows.length > f.limit ? page[page.length - 1]!.id : null,
  };
}
