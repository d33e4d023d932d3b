/**
 * The composer: message fields in, RFC 5322/MIME bytes out (CRLF line ends, lines ≤ 998).
 * This is the single place composition happens; the full MIME composer of issue #3 replaces
 * the body part of it behind the same signature.
 */
import { randomBytes } from "node:crypto";
import type { Mailbox } from "./address.js";
import { encodePhrase, encodeUnstructured, foldHeader } from "./headers.js";

export interface ComposeAttachment {
  filename: string;
  content: Buffer;
  contentType: string;
  contentId?: string;
}

export interface ComposeInput {
  from: Mailbox;
  to: Mailbox[];
  cc: Mailbox[];
  replyTo: Mailbox[];
  subject: string;
  text?: string;
  html?: string;
  attachments: ComposeAttachment[];
  /** Caller headers, already validated (no CR/LF, none of the headers we own). */
  headers: [string, string][];
  date: Date;
  messageId: string;
}

/** A new Message-ID `<random@from-domain>` (RFC 5322 §3.6.4). */
export function newMessageId(from: Mailbox): string {
  return `<${randomBytes(18).toString("base64url").replace(/[-_]/g, "x")}@${from.asciiDomain}>`;
}

/** True when the message needs SMTPUTF8 to travel: a UTF-8 local part anywhere in its addresses. */
export function needsSmtpUtf8(input: Pick<ComposeInput, "from" | "to" | "cc" | "replyTo">): boolean {
  return [input.from, ...input.to, ...input.cc, ...input.replyTo].some((m) => m.utf8Local);
}

function formatAddress(m: Mailbox, utf8: boolean): string {
  const addr = utf8 ? m.address : m.asciiAddress;
  return m.name ? `${encodePhrase(m.name)} <${addr}>` : addr;
}

/** RFC 5322 §3.3 date-time, e.g. `Mon, 23 Nov 2026 12:00:00 +0000`. */
export function formatDate(d: Date): string {
  return d.toUTCString().replace("GMT", "+0000");
}

function boundary(): string {
  return `=_pl_${randomBytes(18).toString("base64url")}`; // "=_" cannot appear in base64 or 7bit-checked parts
}

function base64Lines(buf: Buffer): string {
  return (buf.toString("base64").match(/.{1,76}/g) ?? []).join("\r\n");
}

/** Normalises every line end to CRLF (no bare CR or LF survives, ENGINE-NOTES "SMTP smuggling"). */
export function toCrlf(text: string): string {
  return text.replace(/\r\n|\r|\n/g, "\r\n");
}

/** A text part: 7bit when ASCII with short lines, base64 otherwise. */
function textPart(body: string, subtype: "plain" | "html"): string {
  const crlf = toCrlf(body);
  const sevenBit = /^[\x01-\x7f]*$/.test(crlf) && crlf.split("\r\n").every((l) => l.length <= 998) && !crlf.includes("\0");
  const head = `Content-Type: text/${subtype}; charset=utf-8\r\nContent-Transfer-Encoding: ${sevenBit ? "7bit" : "base64"}`;
  return `${head}\r\n\r\n${sevenBit ? crlf : base64Lines(Buffer.from(body, "utf8"))}`;
}

function multipart(subtype: string, parts: string[]): string {
  const b = boundary();
  return `Content-Type: multipart/${subtype}; boundary="${b}"\r\n\r\n${parts.map((p) => `--${b}\r\n${p}\r\n`).join("")}--${b}--`;
}

function attachmentPart(a: ComposeAttachment): string {
  const name = /^[\x20-\x7e]*$/.test(a.filename) && !/["\\]/.test(a.filename) ? `"${a.filename}"` : null;
  const encodedName = `utf-8''${encodeURIComponent(a.filename).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)}`;
  const param = name ? `filename=${name}` : `filename*=${encodedName}`;
  const lines = [
    `Content-Type: ${a.contentType}${name ? `; name=${name}` : ""}`,
    "Content-Transfer-Encoding: base64",
    `Content-Disposition: ${a.contentId ? "inline" : "attachment"}; ${param}`,
  ];
  if (a.contentId) lines.push(`Content-ID: <${a.contentId}>`);
  return `${lines.join("\r\n")}\r\n\r\n${base64Lines(a.content)}`;
}

/** Builds the whole message. */
export function composeMessage(input: ComposeInput): Buffer {
  const utf8 = needsSmtpUtf8(input);
  const head: string[] = [
    foldHeader("From", formatAddress(input.from, utf8)),
    ...(input.to.length ? [foldHeader("To", input.to.map((m) => formatAddress(m, utf8)).join(", "))] : []),
    ...(input.cc.length ? [foldHeader("Cc", input.cc.map((m) => formatAddress(m, utf8)).join(", "))] : []),
    ...(input.replyTo.length ? [foldHeader("Reply-To", input.replyTo.map((m) => formatAddress(m, utf8)).join(", "))] : []),
    foldHeader("Subject", encodeUnstructured(input.subject)),
    `Date: ${formatDate(input.date)}`,
    `Message-ID: ${input.messageId}`,
    "MIME-Version: 1.0",
    ...input.headers.map(([n, v]) => foldHeader(n, encodeUnstructured(v))),
  ];
  const alternatives: string[] = [];
  if (input.text !== undefined) alternatives.push(textPart(input.text, "plain"));
  if (input.html !== undefined) alternatives.push(textPart(input.html, "html"));
  let body = alternatives.length === 1 ? alternatives[0]! : multipart("alternative", alternatives);
  const inline = input.attachments.filter((a) => a.contentId);
  const attached = input.attachments.filter((a) => !a.contentId);
  if (inline.length) body = multipart("related", [body, ...inline.map(attachmentPart)]);
  if (attached.length) body = multipart("mixed", [body, ...attached.map(attachmentPart)]);
  return Buffer.from(`${head.join("\r\n")}\r\n${body}\r\n`, "utf8");
}
