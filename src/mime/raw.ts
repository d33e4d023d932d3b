/**
 * A caller's own RFC 5322 message (POST /messages/raw), made fit to sign and send: line ends
 * normalised to CRLF (no bare CR or LF survives — ENGINE-NOTES "SMTP smuggling"), NUL refused,
 * every line ≤ 998 octets, a parseable header section with a From, Bcc and Resent-Bcc removed,
 * and Message-ID, Date and MIME-Version added when missing (SPEC.md "Composition rules": always
 * present). Pure.
 */
import { parseMailbox, type Mailbox } from "./address.js";
import { formatDate, newMessageId, toCrlf } from "./compose.js";

export interface PreparedRaw {
  bytes: Buffer;
  messageId: string;
  from: Mailbox;
  subject: string;
}

export type PrepareResult = { ok: true; message: PreparedRaw } | { ok: false; error: string };

const BLIND = new Set(["bcc", "resent-bcc"]);
const FIELD = /^([!-9;-~]+)[ \t]*:(.*)$/s; // RFC 5322 §2.2: field name is printable ASCII except ":"

/** Unfolded header fields in order: [name, value, raw lines]. */
function parseHeader(section: string): { name: string; value: string; raw: string }[] | string {
  const fields: { name: string; value: string; raw: string }[] = [];
  for (const line of section.split("\r\n")) {
    if (/^[ \t]/.test(line)) {
      const last = fields[fields.length - 1];
      if (!last) return "the message starts with a continuation line";
      last.value += line;
      last.raw += `\r\n${line}`;
      continue;
    }
    const m = FIELD.exec(line);
    if (!m) return `not a header field: ${JSON.stringify(line.slice(0, 60))}`;
    fields.push({ name: m[1]!, value: m[2]!, raw: line });
  }
  return fields;
}

export function prepareRawMessage(input: Buffer, now: Date): PrepareResult {
  if (input.includes(0)) return { ok: false, error: "the message contains a NUL byte" };
  const text = toCrlf(input.toString("latin1")); // byte-preserving: 8-bit content passes through unchanged
  const split = text.indexOf("\r\n\r\n");
  const headerText = split < 0 ? text.replace(/\r\n$/, "") : text.slice(0, split);
  const body = split < 0 ? "" : text.slice(split + 4);
  const long = text.split("\r\n").findIndex((l) => l.length > 998);
  if (long >= 0) return { ok: false, error: `line ${long + 1} is longer than 998 octets (RFC 5322 §2.1.1)` };
  const fields = parseHeader(headerText);
  if (typeof fields === "string") return { ok: false, error: fields };
  const get = (n: string) => fields.filter((f) => f.name.toLowerCase() === n);
  const froms = get("from");
  if (froms.length !== 1) return { ok: false, error: "the message must have exactly one From header" };
  const fromValue = Buffer.from(froms[0]!.value.replace(/\r\n/g, ""), "latin1").toString("utf8").trim();
  const from = parseMailbox(fromValue);
  if (!from.ok) return { ok: false, error: `From: ${from.error}` };
  // Bcc is never written (RFC 5322 §3.6.3), nor Resent-Bcc (§3.6.6): they name hidden recipients.
  const kept = fields.filter((f) => !BLIND.has(f.name.toLowerCase()));
  const ids = get("message-id");
  const idMatch = ids.length === 1 ? /<[^<>\s]+@[^<>\s]+>/.exec(ids[0]!.value) : null;
  const messageId = idMatch ? idMatch[0] : newMessageId(from.mailbox);
  const added: string[] = [];
  if (!idMatch) {
    if (ids.length) return { ok: false, error: "the Message-ID header is malformed or repeated" };
    added.push(`Message-ID: ${messageId}`);
  }
  if (get("date").length === 0) added.push(`Date: ${formatDate(now)}`);
  if (get("mime-version").length === 0) added.push("MIME-Version: 1.0"); // RFC 2045 §4
  const subject = Buffer.from((get("subject")[0]?.value ?? "").replace(/\r\n/g, ""), "latin1").toString("utf8").trim();
  const head = [...kept.map((f) => f.raw), ...added].join("\r\n");
  const bytes = Buffer.from(`${head}\r\n\r\n${body}${body === "" || body.endsWith("\r\n") ? "" : "\r\n"}`, "latin1");
  return { ok: true, message: { bytes, messageId, from: from.mailbox, subject } };
}
