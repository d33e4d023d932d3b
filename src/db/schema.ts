/**
 * Drizzle tables. drizzle-kit generates migrations/ from this file (`npm run db:generate`).
 * Ids are prefixed text (src/lib/ids.ts); every tenant-owned row carries account_id so each
 * query can filter on it.
 */
import { sql } from "drizzle-orm";
import {
  bigint,
  boolean,
  customType,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
} from "drizzle-orm/pg-core";

const bytea = customType<{ data: Buffer; driverData: Buffer | Uint8Array }>({
  dataType: () => "bytea",
  fromDriver: (v) => (Buffer.isBuffer(v) ? v : Buffer.from(v)),
});

const tstz = (name: string) => timestamp(name, { withTimezone: true, mode: "date" });

export const accounts = pgTable("accounts", {
  id: text("id").primaryKey(),
  name: text("name").notNull(),
  createdAt: tstz("created_at").notNull().defaultNow(),
});

export const apiKeys = pgTable(
  "api_keys",
  {
    id: text("id").primaryKey(),
    /** Null for admin keys, which belong to no account. */
    accountId: text("account_id").references(() => accounts.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    /** Display prefix, e.g. `pl_AbC123xy`; the key itself is never stored. */
    prefix: text("prefix").notNull(),
    /** SHA-256 of the whole key, hex. */
    hash: text("hash").notNull(),
    scopes: text("scopes").array().notNull(),
    createdAt: tstz("created_at").notNull().defaultNow(),
    lastUsedAt: tstz("last_used_at"),
    revokedAt: tstz("revoked_at"),
  },
  (t) => [uniqueIndex("api_keys_hash_idx").on(t.hash), index("api_keys_account_idx").on(t.accountId, t.id)],
);

export const messages = pgTable(
  "messages",
  {
    id: text("id").primaryKey(),
    accountId: text("account_id")
      .notNull()
      .references(() => accounts.id, { onDelete: "cascade" }),
    /** The RFC 5322 Message-ID header, with angle brackets. */
    messageId: text("message_id").notNull(),
    /** Envelope sender (MAIL FROM); the VERP address is derived per recipient at delivery. */
    mailFrom: text("mail_from").notNull(),
    /** The From header as submitted (display form). */
    fromHeader: text("from_header").notNull(),
    subject: text("subject").notNull(),
    /** {to, cc, bcc, reply_to} as submitted, normalised. */
    addresses: jsonb("addresses").$type<{ to: string[]; cc: string[]; bcc: string[]; reply_to: string[] }>().notNull(),
    tags: jsonb("tags").$type<Record<string, string>>().notNull().default({}),
    /** The composed (later: signed) RFC 5322 bytes exactly as they go on the wire, CRLF line ends. */
    raw: bytea("raw").notNull(),
    size: integer("size").notNull(),
    /** Needs SMTPUTF8 to travel (UTF-8 addresses or headers). */
    smtputf8: boolean("smtputf8").notNull().default(false),
    /** Summary of the recipients' states (src/messages/status.ts). */
    status: text("status").notNull(),
    scheduledAt: tstz("scheduled_at"),
    createdAt: tstz("created_at").notNull().defaultNow(),
  },
  (t) => [
    index("messages_account_id_idx").on(t.accountId, t.id),
    index("messages_account_status_idx").on(t.accountId, t.status, t.id),
    index("messages_tags_idx").using("gin", t.tags),
  ],
);

export const recipients = pgTable(
  "recipients",
  {
    id: text("id").primaryKey(),
    messageId: text("message_id")
      .notNull()
      .references(() => messages.id, { onDelete: "cascade" }),
    accountId: text("account_id").notNull(),
    /** The address as RCPT TO will carry it (Unicode domain, local part as given). */
    email: text("email").notNull(),
    /** Lower-cased email, for filters and the suppression list. */
    emailKey: text("email_key").notNull(),
    /** ASCII (punycode) routing domain: the unit of MX look-up and per-destination concurrency. */
    domain: text("domain").notNull(),
    kind: text("kind").notNull(), // to | cc | bcc
    status: text("status").notNull(),
    attempts: integer("attempts").notNull().default(0),
    /** When the queue may next try this recipient; null once it reached a final state. */
    nextAttemptAt: tstz("next_attempt_at"),
    /** Lease: the worker holding this recipient and until when (src/delivery/). */
    lockedBy: text("locked_by"),
    lockedUntil: tstz("locked_until"),
    lastCode: integer("last_code"),
    lastEnhanced: text("last_enhanced"),
    lastText: text("last_text"),
    mx: text("mx"),
    ip: text("ip"),
    tls: jsonb("tls").$type<{ version: string; cipher: string } | null>(),
    deliveredAt: tstz("delivered_at"),
    createdAt: tstz("created_at").notNull().defaultNow(),
    updatedAt: tstz("updated_at").notNull().defaultNow(),
  },
  (t) => [
    index("recipients_message_idx").on(t.messageId),
    // The delivery queue: due recipients in time order, and per destination domain.
    index("recipients_due_idx")
      .on(t.nextAttemptAt)
      .where(sql`status in ('queued', 'deferred')`),
    index("recipients_domain_due_idx")
      .on(t.domain, t.nextAttemptAt)
      .where(sql`status in ('queued', 'deferred')`),
    index("recipients_lease_idx")
      .on(t.lockedUntil)
      .where(sql`status = 'sending'`),
    index("recipients_account_email_idx").on(t.accountId, t.emailKey),
  ],
);

export const attempts = pgTable(
  "attempts",
  {
    id: text("id").notNull(),
    /**
     * No foreign key (migration 0005): an attempt is only ever inserted from the RETURNING of
     * the update of its own recipient row, and a trigger on recipients deletes a deleted
     * recipient's attempts, as ON DELETE CASCADE did. The key check cost ~23 µs a row.
     */
    recipientId: text("recipient_id").notNull(),
    messageId: text("message_id").notNull(),
    accountId: text("account_id").notNull(),
    startedAt: tstz("started_at").notNull(),
    durationMs: integer("duration_ms").notNull(),
    mx: text("mx"),
    ip: text("ip"),
    tlsVersion: text("tls_version"),
    tlsCipher: text("tls_cipher"),
    code: integer("code"),
    enhanced: text("enhanced"),
    text: text("text"),
    /** delivered | defer | bounce | fail */
    outcome: text("outcome").notNull(),
  },
  // One index (migration 0007): the key leads with the message, the way the timeline reads a
  // message's attempts and the delete trigger finds a deleted recipient's. It was a key on the id
  // (never looked up), an index by recipient (never read) and one by message: three entries
  // for each attempt an outcome batch inserts.
  (t) => [primaryKey({ columns: [t.messageId, t.id] })],
);

export const events = pgTable(
  "events",
  {
    /** Monotonic sequence: a message's timeline order. */
    seq: bigint("seq", { mode: "number" }).notNull().generatedAlwaysAsIdentity(),
    /** The key (migration 0007; was seq): the webhook claim finds each delivery's event by it. */
    id: text("id").primaryKey(),
    accountId: text("account_id").notNull(),
    messageId: text("message_id").notNull(),
    recipientId: text("recipient_id"),
    /** email.delivered, email.deferred, … (SPEC.md "Webhooks"). */
    type: text("type").notNull(),
    data: jsonb("data").$type<Record<string, unknown>>().notNull(),
    createdAt: tstz("created_at").notNull().defaultNow(),
  },
  // Two indexes (migration 0007): every outcome inserts an event, and the key on seq (looked up
  // by nothing) and the (account_id, seq) index (read by nothing) were two of its four entries.
  (t) => [index("events_message_idx").on(t.messageId, t.seq)],
);

export const idempotencyKeys = pgTable(
  "idempotency_keys",
  {
    accountId: text("account_id")
      .notNull()
      .references(() => accounts.id, { onDelete: "cascade" }),
    key: text("key").notNull(),
    /** SHA-256 of method, path and body: same key with another body → 409. */
    requestHash: text("request_hash").notNull(),
    statusCode: integer("status_code").notNull(),
    response: jsonb("response").notNull(),
    createdAt: tstz("created_at").notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.accountId, t.key] })],
);

export const domains = pgTable(
  "domains",
  {
    id: text("id").primaryKey(),
    accountId: text("account_id")
      .notNull()
      .references(() => accounts.id, { onDelete: "cascade" }),
    /** Lower-case ASCII (IDNs as punycode), no trailing dot; unique across all accounts. */
    name: text("name").notNull(),
    /** DKIM selector (`pl` + random), so the record is `<selector>._domainkey.<name>`. */
    selector: text("selector").notNull(),
    /** rsa-sha256 | ed25519-sha256 */
    algorithm: text("algorithm").notNull(),
    /** PKCS#8 PEM sealed with the secret's dkim-key-encryption sub-key (src/lib/secret.ts); never returned. */
    privateKeySealed: text("private_key_sealed").notNull(),
    /** The DKIM TXT value to publish: `v=DKIM1; k=…; p=…`. */
    dkimRecord: text("dkim_record").notNull(),
    /** Per-record state of the last verification: {dkim, spf, return_path, dmarc} → {status, checked_at, detail}. */
    checks: jsonb("checks")
      .$type<Partial<Record<"dkim" | "spf" | "return_path" | "dmarc", { status: "pending" | "verified" | "invalid"; checked_at: string | null; detail: string | null }>>>()
      .notNull()
      .default({}),
    /** pending | verified (src/domains/records.ts overallStatus). */
    status: text("status").notNull().default("pending"),
    createdAt: tstz("created_at").notNull().defaultNow(),
    /** When the domain last became verified; null while it is not. */
    verifiedAt: tstz("verified_at"),
  },
  (t) => [uniqueIndex("domains_name_idx").on(t.name), index("domains_account_idx").on(t.accountId, t.id)],
);

/**
 * The account's suppression list: addresses never sent to again (SPEC.md "Delivery rules").
 * Added by hard bounces (synchronous 5xx or a later DSN), complaints (ARF), one-click
 * unsubscribes and by hand; a recipient on it is stored `suppressed` at submit time.
 */
export const suppressions = pgTable(
  "suppressions",
  {
    accountId: text("account_id")
      .notNull()
      .references(() => accounts.id, { onDelete: "cascade" }),
    /** Lower-cased address: the key recipients.email_key is compared with. */
    emailKey: text("email_key").notNull(),
    /** The address as first seen. */
    email: text("email").notNull(),
    /** hard_bounce | complaint | unsubscribe | manual */
    reason: text("reason").notNull(),
    /** The message and recipient that caused it (null when added by hand). */
    sourceMessageId: text("source_message_id"),
    sourceRecipientId: text("source_recipient_id"),
    /** E.g. the receiver's reply `550 5.1.1 no such user`, or a note given with POST /suppressions. */
    detail: text("detail"),
    createdAt: tstz("created_at").notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.accountId, t.emailKey] }), index("suppressions_account_created_idx").on(t.accountId, t.createdAt, t.emailKey)],
);

/** Webhook endpoints (SPEC.md "Webhooks"). The signing secret is sealed like DKIM keys and shown only at creation. */
export const webhooks = pgTable(
  "webhooks",
  {
    id: text("id").primaryKey(),
    accountId: text("account_id")
      .notNull()
      .references(() => accounts.id, { onDelete: "cascade" }),
    url: text("url").notNull(),
    /** Subscribed event types, e.g. {email.delivered, email.bounced}. */
    events: text("events").array().notNull(),
    /** `whsec_…` sealed with the secret's webhook-secret-encryption sub-key (src/lib/secret.ts). */
    secretSealed: text("secret_sealed").notNull(),
    createdAt: tstz("created_at").notNull().defaultNow(),
  },
  (t) => [index("webhooks_account_idx").on(t.accountId, t.id)],
);

/**
 * One event to one endpoint: the outbox the dispatcher works through (src/webhooks/).
 * Rows are created by the database itself: a statement-level trigger on `events` (migration
 * 0003_webhook_fanout) inserts one row per matching endpoint in the same transaction as the
 * event, whichever code path wrote the event.
 *   pending   → waiting for its next try at next_attempt_at (leased while a try is in flight)
 *   succeeded → the endpoint answered 2xx
 *   failed    → no 2xx within WEBHOOK_RETRY_LIFETIME
 * No index mentions locked_by or locked_until, and the table is stored with fillfactor 50
 * (migration 0004), so a claim — it changes only those and updated_at — is a HOT update: no
 * index entry is written for it, the new row version stays on its page. (The expired-lease
 * reaper walks the due index instead: a leased row is always pending and due.)
 */
export const webhookDeliveries = pgTable(
  "webhook_deliveries",
  {
    seq: bigint("seq", { mode: "number" }).primaryKey().generatedAlwaysAsIdentity(),
    webhookId: text("webhook_id")
      .notNull()
      .references(() => webhooks.id, { onDelete: "cascade" }),
    accountId: text("account_id").notNull(),
    /** events.id: also the stable `webhook-id` header receivers de-duplicate on. */
    eventId: text("event_id").notNull(),
    eventType: text("event_type").notNull(),
    status: text("status").notNull().default("pending"),
    attempts: integer("attempts").notNull().default(0),
    nextAttemptAt: tstz("next_attempt_at"),
    lockedBy: text("locked_by"),
    lockedUntil: tstz("locked_until"),
    lastStatusCode: integer("last_status_code"),
    lastDurationMs: integer("last_duration_ms"),
    lastError: text("last_error"),
    createdAt: tstz("created_at").notNull().defaultNow(),
    updatedAt: tstz("updated_at").notNull().defaultNow(),
    deliveredAt: tstz("delivered_at"),
  },
  // No unique index on (webhook_id, event_id) (migration 0006): the fan-out trigger runs once
  // per inserted event and events.id is unique, so the pair cannot repeat; the index cost every
  // fan-out and every completion (a non-HOT update) an entry and a uniqueness check.
  (t) => [
    index("webhook_deliveries_due_idx")
      .on(t.nextAttemptAt)
      .where(sql`status = 'pending'`),
    index("webhook_deliveries_webhook_idx").on(t.webhookId, t.seq),
  ],
);

/** Every try of a webhook delivery: status code (null when no HTTP answer), latency, the first KB of the answer or the error. */
export const webhookAttempts = pgTable(
  "webhook_attempts",
  {
    id: bigint("id", { mode: "number" }).generatedAlwaysAsIdentity(),
    /** No foreign key, as attempts.recipient_id (migration 0005): inserted from the update of its delivery. */
    deliverySeq: bigint("delivery_seq", { mode: "number" }).notNull(),
    startedAt: tstz("started_at").notNull(),
    durationMs: integer("duration_ms").notNull(),
    statusCode: integer("status_code"),
    response: text("response"),
    error: text("error"),
  },
  // The key leads with the delivery, so it is also the index the deliveries listing reads a
  // delivery's tries by: one index entry per try (migration 0006), not a key plus an index.
  (t) => [primaryKey({ columns: [t.deliverySeq, t.id] })],
);

/**
 * Mail received by the inbound listener (src/inbound/): DSNs, ARF reports, mailto unsubscribes
 * and anything else sent to a valid token, kept for inspection with what was made of it.
 */
export const inboundMessages = pgTable(
  "inbound_messages",
  {
    id: text("id").primaryKey(),
    receivedAt: tstz("received_at").notNull().defaultNow(),
    remoteIp: text("remote_ip"),
    mailFrom: text("mail_from"),
    rcptTo: text("rcpt_to").notNull(),
    /** dsn | arf | unsubscribe | unknown */
    kind: text("kind").notNull(),
    /** What the token and the report matched; null when nothing did. */
    accountId: text("account_id"),
    messageId: text("message_id"),
    recipientId: text("recipient_id"),
    /** bounced | complained | delayed | unsubscribed | duplicate | ignored | unmatched */
    outcome: text("outcome").notNull(),
    /** The parsed report fields (status, action, diagnostic code, feedback type, …). */
    detail: jsonb("detail").$type<Record<string, unknown>>().notNull().default({}),
    size: integer("size").notNull(),
    raw: bytea("raw").notNull(),
  },
  (t) => [index("inbound_messages_received_idx").on(t.receivedAt), index("inbound_messages_recipient_idx").on(t.recipientId)],
);
