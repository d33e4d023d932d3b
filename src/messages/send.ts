/**
 * POST /messages: parse the validated request, compose the bytes, and store the message, its
 * recipients and the idempotency record atomically (src/messages/insert.ts). The message and
 * recipient ids are drawn before composition, because a one-click unsubscribe link
 * (`unsubscribe: true`) names them.
 */
import { createHash } from "node:crypto";
import { and, eq, gt } from "drizzle-orm";
import type { Db, Store } from "../db/client.js";
import { idempotencyKeys } from "../db/schema.js";
import { AppError, type FieldError } from "../lib/errors.js";
import { newId } from "../lib/ids.js";
import type { Mailbox } from "../mime/address.js";
import { composeMessage, needsSmtpUtf8, newMessageId } from "../mime/compose.js";
import { encodeUnstructured } from "../mime/headers.js";
import { listUnsubscribeUris, type UnsubscribeLinks } from "../suppressions/list-unsubscribe.js";
import { insertMessage, type MessageRow, type RecipientRow } from "./insert.js";
import { authorizeAndSign, type DomainPolicy } from "./signing.js";
import { LIMITS, takeParsedMailbox, type SendMessageInput } from "./schemas.js";

/** The 202 answer: each recipient `queued`, or `suppressed` when on the suppression list. */
export interface SendResult {
  id: string;
  message_id: string;
  status: "queued" | "suppressed";
  recipients: { id: string; email: string; status: "queued" | "suppressed" }[];
}

export interface SendOptions {
  accountId: string;
  maxMessageBytes: number;
  /** REQUIRE_VERIFIED_DOMAIN and DKIM signing; absent → neither (tests of other parts). */
  domainPolicy?: DomainPolicy;
  idempotency?: { key: string; requestHash: string };
  /** What `unsubscribe: true` links to (PUBLIC_URL, the token key, the mailto domain). */
  unsubscribe?: UnsubscribeLinks;
  now?: Date;
}

export interface SendOutcome {
  result: SendResult;
  /** True when this is the stored answer to an earlier request with the same Idempotency-Key. */
  replayed: boolean;
}

const IDEMPOTENCY_WINDOW_MS = 24 * 3_600_000;

/** SHA-256 over what makes two requests "the same" for Idempotency-Key purposes. */
export function requestHash(method: string, path: string, body: string): string {
  return createHash("sha256").update(`${method} ${path}\n${body}`).digest("hex");
}

const list = (v: string | string[] | undefined) => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

function parseAll(values: string[], field: string, errors: FieldError[]): Mailbox[] {
  return values.flatMap((v, i) => {
    const r = takeParsedMailbox(v);
    if (r.ok) return [r.mailbox];
    errors.push({ path: `${field}/${i}`, message: r.error });
    return [];
  });
}

/** Accepts one message for delivery. Throws AppError for requests that cannot be stored. */
export async function sendMessage(store: Store, input: SendMessageInput, opts: SendOptions): Promise<SendOutcome> {
  const db = store.db;
  const now = opts.now ?? new Date();
  if (opts.idempotency) {
    const earlier = await findIdempotent(db, opts.accountId, opts.idempotency, now);
    if (earlier) return { result: earlier, replayed: true };
  }

  const errors: FieldError[] = [];
  const fromParsed = takeParsedMailbox(input.from);
  if (!fromParsed.ok) errors.push({ path: "from", message: fromParsed.error });
  const to = parseAll(list(input.to), "to", errors);
  const cc = parseAll(list(input.cc), "cc", errors);
  const bcc = parseAll(list(input.bcc), "bcc", errors);
  const replyTo = parseAll(list(input.reply_to), "reply_to", errors);
  if (encodeUnstructured(input.subject).length > LIMITS.subjectOctets)
    errors.push({ path: "subject", message: `subject must be at most ${LIMITS.subjectOctets} octets once encoded` });
  let scheduledAt: Date | null = null;
  if (input.scheduled_at) {
    scheduledAt = new Date(input.scheduled_at);
    if (scheduledAt.getTime() - now.getTime() > LIMITS.scheduleAheadMs)
      errors.push({ path: "scheduled_at", message: "must be at most 30 days ahead" });
  }
  const attachments = (input.attachments ?? []).map((a) => ({
    filename: a.filename,
    content: Buffer.from(a.content, "base64"),
    contentType: a.content_type, // absent → guessed from the file name
    contentId: a.content_id,
  }));
  if (errors.length || !fromParsed.ok) throw new AppError("validation_failed", "the message has invalid fields", errors);
  const from = fromParsed.mailbox;
  const envelope = newEnvelope(
    [...to.map((m) => ({ m, kind: "to" as const })), ...cc.map((m) => ({ m, kind: "cc" as const })), ...bcc.map((m) => ({ m, kind: "bcc" as const }))],
    scheduledAt,
    now,
  );

  let listUnsubscribe: { uris: string[]; oneClick: boolean } | undefined;
  if (input.unsubscribe) {
    // The schema allows one recipient only: the link unsubscribes exactly that address.
    if (!opts.unsubscribe) throw new Error("unsubscribe: true needs SendOptions.unsubscribe");
    const r = envelope.recipients[0]!;
    const claims = { account: opts.accountId, email: r.email, message: envelope.id, recipient: r.id };
    listUnsubscribe = { uris: await listUnsubscribeUris(opts.unsubscribe, claims, now), oneClick: true };
  }

  const messageId = newMessageId(from);
  // Only what the headers carry makes the message need SMTPUTF8; a Bcc address is never written,
  // so a UTF-8 one needs it for its own RCPT only (src/smtp/transaction.ts).
  const smtputf8 = needsSmtpUtf8({ from, to, cc, replyTo });
  const composed = composeMessage({
    utf8Headers: smtputf8,
    from, to, cc, replyTo,
    subject: input.subject,
    text: input.text,
    html: input.html,
    attachments,
    headers: Object.entries(input.headers ?? {}),
    date: now,
    messageId,
    listUnsubscribe,
  });
  const raw = opts.domainPolicy ? await authorizeAndSign(store, opts.accountId, from.asciiDomain, composed, opts.domainPolicy) : composed;
  if (raw.length > opts.maxMessageBytes)
    throw new AppError("payload_too_large", `the composed message is ${raw.length} bytes; the limit is ${opts.maxMessageBytes}`);

  const shown = (ms: Mailbox[]) => ms.map((m) => (m.name ? `${m.name} <${m.address}>` : m.address));
  return storeAccepted(store, opts, now, {
    ...envelope,
    messageId,
    mailFrom: from.address,
    fromHeader: shown([from])[0]!,
    subject: input.subject,
    addresses: { to: shown(to), cc: shown(cc), bcc: shown(bcc), reply_to: shown(replyTo) },
    tags: input.tags ?? {},
    raw,
    smtputf8,
    scheduledAt,
  });
}

/** The ids a message is stored under, drawn before composition: the message's and one row per envelope recipient. */
export interface Envelope {
  id: string;
  recipients: RecipientRow[];
}

/**
 * One recipient row per envelope recipient — duplicates collapse case-insensitively, the first
 * occurrence deciding the kind — each due at `scheduledAt` (or now), with fresh ids.
 */
export function newEnvelope(list: { m: Mailbox; kind: "to" | "cc" | "bcc" }[], scheduledAt: Date | null, now: Date): Envelope {
  const seen = new Set<string>();
  const recipients: RecipientRow[] = [];
  for (const { m, kind } of list) {
    const key = m.address.toLowerCase();
    if (seen.has(key)) continue;
    seen.add(key);
    recipients.push({
      id: newId("recipient", now.getTime()),
      email: m.address,
      emailKey: key,
      domain: m.asciiDomain,
      kind,
      nextAttemptAt: scheduledAt && scheduledAt > now ? scheduledAt : now,
    });
  }
  return { id: newId("message", now.getTime()), recipients };
}

/** A message ready to store: its row (ids from {@link newEnvelope}) without what storeAccepted assigns, and its recipient rows. */
export type Accepted = Omit<MessageRow, "accountId" | "createdAt"> & { recipients: RecipientRow[] };

/**
 * Stores an accepted message (composed or raw) with its recipient rows and its idempotency
 * record; the answer shows the states the insert decided (suppressed recipients included). A
 * concurrent request that won the same key is replayed.
 */
export async function storeAccepted(store: Store, opts: SendOptions, now: Date, a: Accepted): Promise<SendOutcome> {
  const { recipients, ...row } = a;
  // The idempotency record's status and recipient states are filled in by the statement itself.
  const template: SendResult = { id: a.id, message_id: a.messageId, status: "queued", recipients: [] };
  const stored = await insertMessage(
    store,
    { ...row, accountId: opts.accountId, createdAt: now },
    recipients,
    opts.idempotency && { ...opts.idempotency, response: template, expiredBefore: new Date(now.getTime() - IDEMPOTENCY_WINDOW_MS) },
  );
  if (!stored) {
    const earlier = opts.idempotency && (await findIdempotent(store.db, opts.accountId, opts.idempotency, now));
    if (earlier) return { result: earlier, replayed: true };
    throw new AppError("conflict", "a request with this Idempotency-Key is in progress; retry");
  }
  const result: SendResult = {
    ...template,
    status: stored.status,
    recipients: recipients.map((r) => ({ id: r.id, email: r.email, status: stored.recipients.get(r.id)! })),
  };
  return { result, replayed: false };
}

/** The stored response for the key, or null; 409 when the key was used with another body. */
export async function findIdempotent(
  db: Db,
  accountId: string,
  idem: { key: string; requestHash: string },
  now: Date,
): Promise<SendResult | null> {
  const [row] = await db
    .select()
    .from(idempotencyKeys)
    .where(
      and(
        eq(idempotencyKeys.accountId, accountId),
        eq(idempotencyKeys.key, idem.key),
        gt(idempotencyKeys.createdAt, new Date(now.getTime() - IDEMPOTENCY_WINDOW_MS)),
      ),
    );
  if (!row) return null;
  if (row.requestHash !== idem.requestHash)
    throw new AppError("idempotency_conflict", "this Idempotency-Key was used with a different request body in the last 24 hours");
  return row.response as SendResult;
}
