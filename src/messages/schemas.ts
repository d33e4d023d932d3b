/**
 * The zod schemas of the messages API: they validate requests, type the service, and
 * produce openapi.yaml (CONVENTIONS.md #2). Limits are SPEC.md's "POST /messages".
 */
import { z } from "@hono/zod-openapi";
import { plainText } from "../lib/text.js";
import { parseMailbox, type ParseResult } from "../mime/address.js";

export const LIMITS = {
  recipients: 100,
  headers: 50,
  tags: 20,
  tagLength: 256,
  subjectOctets: 998,
  attachments: 100,
  bodyBytes: 25 * 1024 * 1024,
  scheduleAheadMs: 30 * 86_400_000,
} as const;

/** Headers Postline writes itself; callers may not set them (issue #3's list plus Subject/Reply-To/Sender, which have fields). */
export const OWNED_HEADERS = new Set([
  "from", "to", "cc", "bcc", "date", "message-id", "mime-version", "dkim-signature", "return-path",
  "received", "subject", "reply-to", "sender", "list-unsubscribe", "list-unsubscribe-post", "resent-bcc",
]);

// Tab allowed; CR, LF, NUL and other controls refused.
const noControl = (what: string) => plainText(what, { tab: true });

/**
 * Addresses are parsed once per request: the schema's check parses each one and leaves the result
 * here; sendMessage takes it (`takeParsedMailbox`) instead of parsing again. An entry is handed
 * over once and then dropped, so nothing is shared between requests beyond a coincidence of
 * timing; entries never taken (a request refused for another field) are bounded by clearing.
 */
const handOver = new Map<string, ParseResult>();
const HAND_OVER_MAX = 1024;

function parseForHandOver(input: string): ParseResult {
  const r = parseMailbox(input);
  if (handOver.size >= HAND_OVER_MAX) handOver.clear();
  handOver.set(input, r);
  return r;
}

/** The result the schema's check left for `input`, or a fresh parse (direct callers, dropped entries). */
export function takeParsedMailbox(input: string): ParseResult {
  const r = handOver.get(input);
  if (!r) return parseMailbox(input);
  handOver.delete(input);
  return r;
}

const mailbox = z
  .string()
  .max(998)
  .superRefine((v, ctx) => {
    const r = parseForHandOver(v);
    if (!r.ok) ctx.addIssue({ code: "custom", message: r.error });
  })
  .openapi({ description: "An RFC 5322 mailbox: `bob@example.org` or `Bob <bob@example.org>`", example: "Bob <bob@example.org>" });

const mailboxes = z
  .union([mailbox, z.array(mailbox).max(LIMITS.recipients)], {
    error: (iss) =>
      Array.isArray(iss.input) && iss.input.length > LIMITS.recipients
        ? `at most ${LIMITS.recipients} recipients per message`
        : "must be an address or a list of addresses",
  })
  .optional()
  .openapi({ description: "One address or a list" });

const base64 = z
  .string()
  .regex(/^[A-Za-z0-9+/\r\n]*={0,2}[\r\n]*$/, "must be base64")
  .openapi({ description: "File content, base64", format: "byte" });

export const attachmentSchema = z.strictObject({
  filename: noControl("filename").min(1).max(255),
  content: base64,
  content_type: z
    .string()
    .regex(/^[a-z0-9][a-z0-9!#$&^_.+-]*\/[a-z0-9][a-z0-9!#$&^_.+-]*$/i, "must be a MIME type like application/pdf")
    .max(255)
    .optional(),
  content_id: z
    .string()
    .regex(/^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.@]+$/, "must be a Content-ID without angle brackets or spaces")
    .max(255)
    .optional()
    .openapi({ description: "Makes the attachment inline; reference it as `cid:<content_id>` in html" }),
});

export const headerName = /^[!-9;-~]+$/; // RFC 5322 §2.2 ftext: printable ASCII except ":"

/** An address's de-duplication key before parsing: the addr-spec (inside <…> when there is a display name), lower-cased. */
const envelopeKey = (v: string) => {
  const s = v.trim();
  const angle = /<([^<>]*)>$/.exec(s);
  return (angle ? angle[1]! : s).toLowerCase();
};

/** Tags of a message (POST /messages and /messages/raw): at most 20, names 1–256 of a safe set, values ≤ 256 characters without control characters. */
export const tagsSchema = z
  .record(
    z.string().regex(/^[A-Za-z0-9_.-]{1,256}$/, "tag names are 1–256 of A–Z a–z 0–9 _ . -"),
    noControl("tag value").max(LIMITS.tagLength),
  )
  .optional()
  .refine((t) => !t || Object.keys(t).length <= LIMITS.tags, `at most ${LIMITS.tags} tags`)
  .openapi({ example: { campaign: "welcome" } });

export const sendMessageSchema = z
  .strictObject({
    from: mailbox,
    to: mailboxes,
    cc: mailboxes,
    bcc: mailboxes,
    reply_to: mailboxes,
    subject: noControl("subject").refine((s) => Buffer.byteLength(s, "utf8") <= LIMITS.subjectOctets, {
      message: `subject must be at most ${LIMITS.subjectOctets} octets`,
    }),
    text: z.string().optional(),
    html: z.string().optional(),
    attachments: z.array(attachmentSchema).max(LIMITS.attachments).optional(),
    headers: z
      .record(z.string(), noControl("header value").max(998))
      .optional()
      .superRefine((h, ctx) => {
        if (!h) return;
        const names = Object.keys(h);
        if (names.length > LIMITS.headers) ctx.addIssue({ code: "custom", message: `at most ${LIMITS.headers} custom headers` });
        for (const name of names) {
          if (!headerName.test(name) || name.length > 76)
            ctx.addIssue({ code: "custom", path: [name], message: "header name must be printable ASCII without ':' or spaces, ≤ 76 characters" });
          else if (OWNED_HEADERS.has(name.toLowerCase()) || name.toLowerCase().startsWith("content-"))
            ctx.addIssue({ code: "custom", path: [name], message: `${name} is set by Postline and cannot be overridden` });
        }
      })
      .openapi({ example: { "X-Campaign": "42" } }),
    tags: tagsSchema,
    scheduled_at: z.iso.datetime({ offset: true, message: "must be an RFC 3339 date-time" }).optional(),
    unsubscribe: z.boolean().optional().openapi({
      description:
        "Adds one-click unsubscribe (RFC 2369 List-Unsubscribe, RFC 8058 List-Unsubscribe-Post), DKIM-signed: a `PUBLIC_URL/unsubscribe/<token>` link (and a mailto address when RETURN_PATH_DOMAIN is set) that puts the recipient on the account's suppression list. The link names one address, so the message must have exactly one recipient (to+cc+bcc); send one message per recipient, e.g. with POST /messages/batch.",
    }),
  })
  .superRefine((m, ctx) => {
    // Envelope recipients are de-duplicated (to+cc+bcc, case-insensitively), so the limits count
    // distinct addresses: the same 60 in to and cc are 60 recipients, not 120.
    const count = new Set([m.to, m.cc, m.bcc].flatMap((v) => (v === undefined ? [] : Array.isArray(v) ? v : [v])).map(envelopeKey)).size;
    if (count === 0) ctx.addIssue({ code: "custom", path: ["to"], message: "at least one recipient (to, cc or bcc) is required" });
    if (m.unsubscribe && count > 1)
      ctx.addIssue({
        code: "custom",
        path: ["unsubscribe"],
        message: "unsubscribe: true needs exactly one recipient (to+cc+bcc), since the link unsubscribes one address; send one message per recipient (POST /messages/batch takes up to 500)",
      });
    if (count > LIMITS.recipients) ctx.addIssue({ code: "custom", path: ["to"], message: `at most ${LIMITS.recipients} recipients (to+cc+bcc) per message` });
    if (m.text === undefined && m.html === undefined) ctx.addIssue({ code: "custom", path: ["text"], message: "text or html is required" });
  })
  .openapi("SendMessage");

export type SendMessageInput = z.infer<typeof sendMessageSchema>;

export const RECIPIENT_STATUSES = ["queued", "sending", "delivered", "deferred", "bounced", "failed", "suppressed", "cancelled", "complained"] as const;
export const MESSAGE_STATUSES = [...RECIPIENT_STATUSES, "partially_delivered"] as const;

export const recipientBrief = z.object({ id: z.string(), email: z.string(), status: z.enum(RECIPIENT_STATUSES) }).openapi("RecipientBrief");

export const sendMessageResponse = z
  .object({
    id: z.string().openapi({ example: "msg_01jd2x0c6v8k9m3n4p5q6r7s8t" }),
    message_id: z.string().openapi({ example: "<Xa1b2c3@example.com>" }),
    status: z.enum(MESSAGE_STATUSES),
    recipients: z.array(recipientBrief),
  })
  .openapi("SendMessageResponse");

const smtpReply = z.object({ code: z.number().int().nullable(), enhanced: z.string().nullable(), text: z.string().nullable() });

/** One try to deliver one recipient (an attempts row), as GET /messages/{id} and the timeline show it. */
export const attemptView = z
  .object({
    id: z.string(),
    at: z.string().openapi({ description: "When the try started (RFC 3339)." }),
    outcome: z.enum(["delivered", "deferred", "bounced", "failed"]),
    mx: z.string().nullable(),
    ip: z.string().nullable(),
    tls: z.object({ version: z.string(), cipher: z.string() }).nullable(),
    smtp: smtpReply,
    duration_ms: z.number().int(),
  })
  .openapi("Attempt");

export const recipientDetail = z
  .object({
    id: z.string(),
    email: z.string(),
    kind: z.enum(["to", "cc", "bcc"]),
    status: z.enum(RECIPIENT_STATUSES),
    attempts: z.number().int(),
    next_attempt_at: z.string().nullable(),
    last_response: smtpReply.nullable(),
    mx: z.string().nullable(),
    ip: z.string().nullable(),
    tls: z.object({ version: z.string(), cipher: z.string() }).nullable(),
    delivered_at: z.string().nullable(),
    history: z.array(attemptView).optional().openapi({ description: "Every try, oldest first (GET /messages/{id} only; lists leave it out)." }),
  })
  .openapi("Recipient");

export const messageView = z
  .object({
    id: z.string(),
    message_id: z.string(),
    status: z.enum(MESSAGE_STATUSES),
    from: z.string(),
    to: z.array(z.string()),
    cc: z.array(z.string()),
    bcc: z.array(z.string()),
    reply_to: z.array(z.string()),
    subject: z.string(),
    tags: z.record(z.string(), z.string()),
    size: z.number().int(),
    scheduled_at: z.string().nullable(),
    created_at: z.string(),
    recipients: z.array(recipientDetail),
  })
  .openapi("Message");

export const listMessagesQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(100).default(20).openapi({ param: { name: "limit", in: "query" } }),
  cursor: z.string().regex(/^msg_[0-9a-z]{26}$/, "not a cursor from this API").optional().openapi({ param: { name: "cursor", in: "query" } }),
  status: z.enum(MESSAGE_STATUSES).optional().openapi({ param: { name: "status", in: "query" } }),
  recipient: plainText("recipient").max(320).optional().openapi({ param: { name: "recipient", in: "query" }, description: "Exact address (case-insensitive)" }),
  tag: plainText("tag", { tab: true })
    .regex(/^[A-Za-z0-9_.-]{1,256}(:.{0,256})?$/, "tag filter is name or name:value")
    .optional()
    .openapi({ param: { name: "tag", in: "query" }, description: "`name` (has the tag) or `name:value`" }),
});

export const messageList = z
  .object({ data: z.array(messageView), next_cursor: z.string().nullable() })
  .openapi("MessageList");
