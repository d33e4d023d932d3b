/**
 * POST /messages/raw: the caller's own RFC 5322 message, checked and normalised
 * (src/mime/raw.ts), signed like a composed one, and stored for the given envelope.
 */
import { z } from "@hono/zod-openapi";
import type { Store } from "../db/client.js";
import { AppError, type FieldError } from "../lib/errors.js";
import { parseAddrSpec, type Mailbox } from "../mime/address.js";
import { prepareRawMessage } from "../mime/raw.js";
import { LIMITS, tagsSchema } from "./schemas.js";
import { findIdempotent, newEnvelope, storeAccepted, type SendOptions, type SendOutcome } from "./send.js";
import { authorizeAndSign, authorizeEnvelopeSender } from "./signing.js";

export const sendRawSchema = z
  .strictObject({
    from: z.string().max(320).openapi({ description: "Envelope sender (MAIL FROM), a bare address", example: "alice@example.com" }),
    to: z.union([z.string().max(320), z.array(z.string().max(320)).min(1).max(LIMITS.recipients)]).openapi({ description: "Envelope recipients" }),
    raw: z
      .string()
      .regex(/^[A-Za-z0-9+/\r\n]*={0,2}[\r\n]*$/, "must be base64")
      .openapi({ description: "The RFC 5322 message, base64", format: "byte" }),
    tags: tagsSchema,
  })
  .openapi("SendRawMessage");
export type SendRawInput = z.infer<typeof sendRawSchema>;

export async function sendRawMessage(store: Store, input: SendRawInput, opts: SendOptions): Promise<SendOutcome> {
  const now = opts.now ?? new Date();
  if (opts.idempotency) {
    const earlier = await findIdempotent(store.db, opts.accountId, opts.idempotency, now);
    if (earlier) return { result: earlier, replayed: true };
  }
  const errors: FieldError[] = [];
  const sender = parseAddrSpec(input.from);
  if (!sender.ok) errors.push({ path: "from", message: sender.error });
  const to: Mailbox[] = [];
  (Array.isArray(input.to) ? input.to : [input.to]).forEach((v, i) => {
    const r = parseAddrSpec(v);
    if (r.ok) to.push(r.mailbox);
    else errors.push({ path: `to/${i}`, message: r.error });
  });
  const prepared = prepareRawMessage(Buffer.from(input.raw, "base64"), now);
  if (!prepared.ok) errors.push({ path: "raw", message: prepared.error });
  if (errors.length || !prepared.ok || !sender.ok) throw new AppError("validation_failed", "the message has invalid fields", errors);
  const m = prepared.message;
  // The From header's domain is the one that must be verified and that signs (DMARC alignment).
  const raw = opts.domainPolicy ? await authorizeAndSign(store, opts.accountId, m.from.asciiDomain, m.bytes, opts.domainPolicy) : m.bytes;
  if (opts.domainPolicy) await authorizeEnvelopeSender(store, opts.accountId, sender.mailbox.asciiDomain, m.from.asciiDomain, opts.domainPolicy);
  if (raw.length > opts.maxMessageBytes)
    throw new AppError("payload_too_large", `the message is ${raw.length} bytes; the limit is ${opts.maxMessageBytes}`);
  return storeAccepted(store, opts, now, {
    ...newEnvelope(to.map((x) => ({ m: x, kind: "to" as const })), null, now),
    messageId: m.messageId,
    mailFrom: sender.mailbox.address,
    fromHeader: m.from.name ? `${m.from.name} <${m.from.address}>` : m.from.address,
    subject: m.subject,
    addresses: { to: to.map((x) => x.address), cc: [], bcc: [], reply_to: [] },
    tags: input.tags ?? {},
    raw,
    // A UTF-8 sender, or 8-bit bytes in the header section (RFC 6532), make the message need
    // SMTPUTF8; a UTF-8 envelope recipient needs it for its own RCPT only (src/smtp/transaction.ts).
    smtputf8: sender.mailbox.utf8Local || /[\x80-\xff]/.test(raw.subarray(0, raw.indexOf("\r\n\r\n")).toString("latin1")),
    scheduledAt: null,
  });
}
