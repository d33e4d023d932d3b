/**
 * The composer: message fields in, RFC 5322/MIME bytes out (CRLF only, every line ≤ 998, no NUL,
 * 7-bit unless the headers are UTF-8 under RFC 6532). This is the single place composition
 * happens; DKIM signing (src/dkim/) runs over the bytes it returns.
 *
 * Body structure (RFC 2046 §5.1, RFC 2387):
 *   text             → text/plain           html → multipart/alternative(text from html, html)
 *   text + html      → multipart/alternative(text, html)
 *   inline parts     → the html becomes multipart/related(html, inline…)
 *   attachments      → multipart/mixed(body, attachment…)
 */
import type { Mailbox } from "./address.js";
import { FieldWriter } from "./fold.js";
import { assertHeaderText, SUBJECT, writeMailboxes, writeUnstructured } from "./headers.js";
import { htmlToText } from "./html-to-text.js";
import { mediaTypeOf } from "./media-types.js";
import { paramHeader } from "./params.js";
import { randomToken } from "./random.js";
import { encodeBase64, encodeText, isSevenBit, type TransferEncoding } from "./transfer-encoding.js";

export { toCrlf } from "./transfer-encoding.js";

export interface ComposeAttachment {
  filename: string;
  content: Buffer;
  /** `type/subtype`; guessed from the filename's extension when absent. */
  contentType?: string;
  /** Makes the part inline (Content-ID `<contentId>`), referenced from the html as `cid:contentId`. */
  contentId?: string | undefined;
}

export interface ComposeInput {
  from: Mailbox;
  to: Mailbox[];
  cc?: Mailbox[];
  replyTo?: Mailbox[];
  subject: string;
  text?: string | undefined;
  html?: string | undefined;
  attachments?: ComposeAttachment[];
  /** Caller headers, already validated (no CR/LF/NUL, none of the headers the composer writes). */
  headers?: [string, string][];
  /** Default: now. */
  date?: Date;
  /** `<id@domain>`; default: {@link newMessageId}(from). */
  messageId?: string;
  /**
   * RFC 6532 UTF-8 headers (Unicode domains, raw UTF-8 names and subject). Forced on when any
   * address has a UTF-8 local part; set it when the message travels with SMTPUTF8 for another
   * reason (e.g. a Bcc recipient's local part).
   */
  utf8Headers?: boolean;
  /** Add a text/plain alternative rendered from `html` when no `text` is given. Default true. */
  textFromHtml?: boolean;
  /**
   * RFC 2369 List-Unsubscribe URIs (https, mailto), most preferred first; with `oneClick`, also
   * `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058 §3.1: the first http(s) URI
   * accepts a POST that unsubscribes without further interaction).
   */
  listUnsubscribe?: { uris: string[]; oneClick: boolean } | undefined;
}

/** A new Message-ID `<random@from-domain>` (RFC 5322 §3.6.4). */
export function newMessageId(from: Mailbox): string {
  return `<${randomToken(18).replace(/[-_]/g, "x")}@${from.asciiDomain}>`;
}

/** True when the message needs SMTPUTF8 to travel: a UTF-8 local part anywhere in its addresses. */
export function needsSmtpUtf8(input: Pick<ComposeInput, "from" | "to" | "cc" | "replyTo"> & { bcc?: Mailbox[] }): boolean {
  const any = (list: Mailbox[] | undefined) => list?.some((m) => m.utf8Local) ?? false;
  return input.from.utf8Local || any(input.to) || any(input.cc) || any(input.replyTo) || any(input.bcc);
}

/** RFC 5322 §3.3 date-time, e.g. `Mon, 23 Nov 2026 12:00:00 +0000`. */
export function formatDate(d: Date): string {
  const second = Math.floor(d.getTime() / 1000);
  if (second !== lastDate.second) lastDate = { second, text: d.toUTCString().replace("GMT", "+0000") };
  return lastDate.text;
}
/** The last Date written: messages accepted in the same second share it (toUTCString is not cheap). */
let lastDate = { second: NaN, text: "" };

/** Header fields the composer writes itself; a caller header with one of these names is a bug. */
const OWN = new Set([
  "from", "to", "cc", "bcc", "reply-to", "subject", "date", "message-id", "mime-version", "dkim-signature",
  "list-unsubscribe", "list-unsubscribe-post",
]);
/** Ids are written unfolded: this keeps `Content-ID: <id>` within 998 octets. */
const MAX_ID = 900;
/** RFC 5322 §2.2 field-name: printable ASCII except ":". */
const FIELD_NAME = /^[!-9;-~]{1,76}$/;

/** A MIME entity before it is written: its Content-* fields and body, or its sub-parts. */
type Part =
  | { fields: string[]; body: Buffer; encoding: TransferEncoding }
  | { multipart: "mixed" | "alternative" | "related"; params: [string, string][]; parts: Part[] };

function textPart(text: string, subtype: "plain" | "html"): Part {
  const { encoding, body } = encodeText(text);
  return {
    fields: [`Content-Type: text/${subtype}; charset=utf-8`, `Content-Transfer-Encoding: ${encoding}`],
    body,
    encoding,
  };
}

function attachmentPart(a: ComposeAttachment): Part {
  assertHeaderText(a.filename, "attachment filename");
  let type = mediaTypeOf(a.filename, a.contentType);
  let encoding: TransferEncoding = "base64";
  // RFC 2046 §5.1.1 / §5.2.1: multipart and message/rfc822 parts may not be base64-encoded.
  if (type.startsWith("multipart/") || type === "message/rfc822" || type === "message/partial") {
    if (type === "message/rfc822" && isSevenBit(a.content)) encoding = "7bit";
    else type = "application/octet-stream";
  }
  const fields = [
    paramHeader("Content-Type", type, [["name", a.filename]]),
    `Content-Transfer-Encoding: ${encoding}`,
    paramHeader("Content-Disposition", a.contentId ? "inline" : "attachment", [["filename", a.filename]]),
  ];
  if (a.contentId) {
    assertHeaderText(a.contentId, "content id");
    if (/[\s<>]/.test(a.contentId) || a.contentId.length > MAX_ID) throw new RangeError("content id must be ≤ 900 characters without spaces or angle brackets");
    fields.push(`Content-ID: <${a.contentId}>`);
  }
  return { fields, body: encoding === "base64" ? encodeBase64(a.content) : a.content, encoding };
}

function multipart(subtype: "mixed" | "alternative" | "related", parts: Part[], params: [string, string][] = []): Part {
  return parts.length === 1 ? parts[0]! : { multipart: subtype, params, parts };
}

/** The MIME tree of the body (see the file comment). */
function bodyTree(input: ComposeInput): Part {
  const attachments = input.attachments ?? [];
  const hasHtml = input.html !== undefined;
  const inline = hasHtml ? attachments.filter((a) => a.contentId) : [];
  const attached = hasHtml ? attachments.filter((a) => !a.contentId) : attachments;
  let html: Part | null = null;
  if (input.html !== undefined) {
    html = textPart(input.html, "html");
    if (inline.length) html = multipart("related", [html, ...inline.map(attachmentPart)], [["type", "text/html"]]);
  }
  const text = input.text ?? (html && input.textFromHtml !== false ? htmlToText(input.html ?? "") : undefined);
  const alternatives: Part[] = [];
  if (text !== undefined) alternatives.push(textPart(text, "plain"));
  if (html) alternatives.push(html);
  if (!alternatives.length) alternatives.push(textPart("", "plain"));
  const body = multipart("alternative", alternatives);
  return multipart("mixed", [body, ...attached.map(attachmentPart)]);
}

/** The message's own header fields, in RFC 5322 §3.6 order. */
function messageFields(input: ComposeInput, utf8: boolean): string[] {
  const out: string[] = [];
  const addresses = (name: string, list: Mailbox[] | undefined) => {
    if (!list?.length) return;
    const w = new FieldWriter(name);
    writeMailboxes(w, list, utf8);
    out.push(w.toString());
  };
  addresses("From", [input.from]);
  addresses("To", input.to);
  addresses("Cc", input.cc);
  // RFC 5322 §3.6.3 allows no destination field; the group form says "nobody listed" explicitly.
  if (!input.to.length && !input.cc?.length) out.push("To: undisclosed-recipients:;");
  addresses("Reply-To", input.replyTo);
  assertHeaderText(input.subject, "subject");
  const subject = new FieldWriter("Subject");
  writeUnstructured(subject, input.subject, { ...SUBJECT, utf8 });
  out.push(subject.toString());
  out.push(`Date: ${formatDate(input.date ?? new Date())}`);
  const messageId = input.messageId ?? newMessageId(input.from);
  assertHeaderText(messageId, "message id");
  if (messageId.length > MAX_ID) throw new RangeError("message id is too long for one header line");
  out.push(`Message-ID: ${messageId}`);
  out.push("MIME-Version: 1.0");
  if (input.listUnsubscribe?.uris.length) out.push(...listUnsubscribeFields(input.listUnsubscribe.uris, input.listUnsubscribe.oneClick));
  for (const [name, value] of input.headers ?? []) {
    const lower = name.toLowerCase();
    if (!FIELD_NAME.test(name) || OWN.has(lower) || lower.startsWith("content-"))
      throw new RangeError(`caller header ${JSON.stringify(name)} is not allowed here`);
    assertHeaderText(value, `header ${name}`);
    const w = new FieldWriter(name);
    writeUnstructured(w, value, { utf8 });
    out.push(w.toString());
  }
  return out;
}

/**
 * RFC 2369 §2: each URI in angle brackets, separated by commas; whitespace (so a fold) is allowed
 * between them. A URI is one token: it may not hold spaces, angle brackets or controls.
 */
function listUnsubscribeFields(uris: string[], oneClick: boolean): string[] {
  const w = new FieldWriter("List-Unsubscribe");
  uris.forEach((uri, i) => {
    if (!/^[\x21-\x7e]+$/.test(uri) || /[<>]/.test(uri)) throw new RangeError(`List-Unsubscribe URI ${JSON.stringify(uri.slice(0, 80))} is not a bare URI`);
    w.add(`<${uri}>${i < uris.length - 1 ? "," : ""}`);
  });
  return oneClick ? [w.toString(), "List-Unsubscribe-Post: List-Unsubscribe=One-Click"] : [w.toString()];
}

const CRLF = Buffer.from("\r\n");

/** Writes `part` (its fields after `lead`, which the top level uses for the message fields). */
function write(part: Part, lead: string[], chunks: Buffer[], token: string, counter: number[]): void {
  if ("body" in part) {
    chunks.push(Buffer.from(`${[...lead, ...part.fields].join("\r\n")}\r\n\r\n`, "utf8"), part.body);
    return;
  }
  // RFC 2046 §5.1.1: "=_" occurs in neither base64 nor quoted-printable output, and 7bit bodies
  // are checked for the random token, so no delimiter can occur inside a part. A per-message
  // counter before the token keeps nested boundaries from being prefixes of one another.
  const boundary = `=_pl_${counter[0]!++}_${token}`;
  const params: [string, string][] = [...part.params, ["boundary", boundary]];
  chunks.push(Buffer.from(`${[...lead, paramHeader("Content-Type", `multipart/${part.multipart}`, params)].join("\r\n")}\r\n\r\n`, "utf8"));
  const delimiter = Buffer.from(`--${boundary}\r\n`);
  part.parts.forEach((child, i) => {
    if (i > 0) chunks.push(CRLF); // RFC 2046 §5.1.1: the CRLF before "--" belongs to the delimiter
    chunks.push(delimiter);
    write(child, [], chunks, token, counter);
  });
  chunks.push(Buffer.from(`\r\n--${boundary}--`));
}

/** True when some 7bit leaf of `part` contains `token` (then a boundary could occur in it). */
function collides(part: Part, token: Buffer): boolean {
  if ("body" in part) return part.encoding === "7bit" && part.body.includes(token);
  return part.parts.some((p) => collides(p, token));
}

/** Builds the whole message as wire bytes. Throws RangeError for input no validator should pass. */
export function composeMessage(input: ComposeInput): Buffer {
  const utf8 = input.utf8Headers === true || needsSmtpUtf8(input);
  const fields = messageFields(input, utf8);
  const tree = bodyTree(input);
  let token = randomToken(16);
  while (collides(tree, Buffer.from(token))) token = randomToken(16);
  const chunks: Buffer[] = [];
  write(tree, fields, chunks, token, [0]);
  chunks.push(CRLF);
  return Buffer.concat(chunks);
}
