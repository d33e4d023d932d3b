/**
 * Stores an accepted message, its recipients and (optionally) its idempotency record in ONE
 * statement: data-modifying CTEs are atomic without BEGIN/COMMIT, and one round trip keeps
 * POST /messages fast. The NOTIFY that wakes workers is part of the same statement, so it is
 * delivered exactly when the rows are visible.
 */
import { sql } from "drizzle-orm";
import { pgArray } from "../db/arrays.js";
import type { Store } from "../db/client.js";
import { QUEUE_CHANNEL } from "../lib/channels.js";

export interface MessageRow {
  id: string;
  accountId: string;
  messageId: string;
  mailFrom: string;
  fromHeader: string;
  subject: string;
  addresses: { to: string[]; cc: string[]; bcc: string[]; reply_to: string[] };
  tags: Record<string, string>;
  raw: Buffer;
  smtputf8: boolean;
  scheduledAt: Date | null;
  createdAt: Date;
}

export interface RecipientRow {
  id: string;
  email: string;
  emailKey: string;
  domain: string;
  kind: "to" | "cc" | "bcc";
  nextAttemptAt: Date;
}

export interface IdempotencyClaim {
  key: string;
  requestHash: string;
  response: unknown;
  /** Records older than this are expired and may be taken over. */
  expiredBefore: Date;
}

/** Inserts everything, or nothing when `idempotency` names a live key (returns false then). */
export async function insertMessage(store: Store, m: MessageRow, rcpts: RecipientRow[], idempotency?: IdempotencyClaim): Promise<boolean> {
  const created = m.createdAt.toISOString();
  const col = <T>(f: (r: RecipientRow) => T) => pgArray(rcpts.map(f) as string[]);
  const due = !m.scheduledAt || m.scheduledAt <= m.createdAt;
  const idem = idempotency
    ? sql`insert into idempotency_keys (account_id, key, request_hash, status_code, response, created_at)
          values (${m.accountId}, ${idempotency.key}, ${idempotency.requestHash}, 202, ${JSON.stringify(idempotency.response)}::jsonb, ${created}::timestamptz)
          on conflict (account_id, key) do update
            set request_hash = excluded.request_hash, response = excluded.response, created_at = excluded.created_at
            where idempotency_keys.created_at < ${idempotency.expiredBefore.toISOString()}::timestamptz
          returning key`
    : sql`select 'none'::text as key`;
  const rows = await store.rows<{ id: string }>(sql`
    with idem as (${idem}),
    m as (
      insert into messages (id, account_id, message_id, mail_from, from_header, subject, addresses, tags, raw, size, smtputf8, status, scheduled_at, created_at)
      select ${m.id}, ${m.accountId}, ${m.messageId}, ${m.mailFrom}, ${m.fromHeader}, ${m.subject}, ${JSON.stringify(m.addresses)}::jsonb,
        ${JSON.stringify(m.tags)}::jsonb, ${m.raw}::bytea, ${m.raw.length}::int, ${m.smtputf8}::boolean, 'queued',
        ${m.scheduledAt?.toISOString() ?? null}::timestamptz, ${created}::timestamptz
      where exists (select 1 from idem)
      returning id
    ),
    r as (
      insert into recipients (id, message_id, account_id, email, email_key, domain, kind, status, next_attempt_at, created_at, updated_at)
      select i.id, m.id, ${m.accountId}, i.email, i.email_key, i.domain, i.kind, 'queued', i.next_at, ${created}::timestamptz, ${created}::timestamptz
      from m, unnest(${col((r) => r.id)}::text[], ${col((r) => r.email)}::text[], ${col((r) => r.emailKey)}::text[],
        ${col((r) => r.domain)}::text[], ${col((r) => r.kind)}::text[], ${col((r) => r.nextAttemptAt.toISOString())}::timestamptz[])
        as i(id, email, email_key, domain, kind, next_at)
      returning 1
    )
    select m.id, ${due ? sql`pg_notify(${QUEUE_CHANNEL}, '')` : sql`null`} as notified from m`);
  return rows.length === 1;
}
