/**
 * A small MIME reader for the reports the inbound listener receives: RFC 5322 header section
 * and body, RFC 2046 §5.1 multipart bodies (nested), and RFC 2045 §6 transfer encodings.
 * It reads; it never validates. Junk yields fewer parts, never an exception.
 *
 * Work is bounded whatever the input: at most MAX_DEPTH levels of nesting and MAX_PARTS
 * entities in all; each level scans its own body once per boundary occurrence, so the cost is
 * O(depth × size). Message bytes are held as "binary" strings (latin1: one char per octet),
 * so slicing never breaks a byte and the raw form survives round trips.
 *
 * Pure: imports nothing of the application.
 */
import { field, parseContentType, parseFields, type ContentType, type HeaderField } from "./headers.js";

/** Multipart levels split at most; deeper bodies stay unsplit leaves. */
export const MAX_DEPTH = 8;
/** Entities parsed at most in one message; later parts are dropped. */
export const MAX_PARTS = 256;
/** Transport padding after a boundary longer than this is not padding (RFC 2046 §5.1.1). */
const MAX_PADDING = 200;

/** One entity (RFC 2045 §2.4): its header fields, media type, raw body and, for multiparts, its parts. */
export interface MimeEntity {
  headers: HeaderField[];
  contentType: ContentType;
  /** Content-Transfer-Encoding, lower-cased (RFC 2045 §6.1 default 7bit). */
  encoding: string;
  /** The body as it was on the wire (binary string), still transfer-encoded. */
  body: string;
  /** Sub-entities of a multipart body; empty otherwise. */
  parts: MimeEntity[];
}

/** Parses a whole message (Buffer or binary string) into its entity tree. */
export function parseMime(raw: Buffer | string): MimeEntity {
  const text = typeof raw === "string" ? raw : raw.toString("latin1");
  return parseEntity(text, "text/plain", 0, { parts: 0 });
}

/** Splits header section and body at the first empty line (RFC 5322 §2.1). */
export function splitHeaderBody(text: string): { head: string; body: string } {
  const leading = /^\r?\n/.exec(text);
  if (leading) return { head: "", body: text.slice(leading[0].length) };
  const m = /\r?\n\r?\n/.exec(text);
  if (!m) return { head: text, body: "" };
  return { head: text.slice(0, m.index), body: text.slice(m.index + m[0].length) };
}

function parseEntity(text: string, defaultType: string, depth: number, budget: { parts: number }): MimeEntity {
  budget.parts++;
  const { head, body } = splitHeaderBody(text);
  const headers = parseFields(head);
  const contentType = parseContentType(field(headers, "content-type"), defaultType);
  const encoding = (field(headers, "content-transfer-encoding") ?? "7bit").trim().toLowerCase();
  const entity: MimeEntity = { headers, contentType, encoding, body, parts: [] };
  const boundary = contentType.params["boundary"];
  if (contentType.type === "multipart" && boundary && depth < MAX_DEPTH) {
    // RFC 2046 §5.1.5: the parts of a multipart/digest default to message/rfc822.
    const childDefault = contentType.subtype === "digest" ? "message/rfc822" : "text/plain";
    for (const piece of splitMultipart(body, boundary)) {
      if (budget.parts >= MAX_PARTS) break;
      entity.parts.push(parseEntity(piece, childDefault, depth + 1, budget));
    }
  }
  return entity;
}

/**
 * The body parts of a multipart body (RFC 2046 §5.1.1): a delimiter is "--boundary" at the
 * start of a line, optionally followed by transport padding (linear white space); the line
 * break before it belongs to the delimiter. The close delimiter adds "--". The preamble and
 * epilogue are dropped. A missing close delimiter ends the last part at the end of the body.
 */
export function splitMultipart(body: string, boundary: string): string[] {
  if (boundary.length === 0 || boundary.length > 200) return [];
  const dash = `--${boundary}`;
  const parts: string[] = [];
  let start = -1; // where the current part's content begins
  let from = 0;
  for (;;) {
    const at = body.indexOf(dash, from);
    if (at < 0) break;
    from = at + dash.length;
    if (at > 0 && body[at - 1] !== "\n") continue; // not at the start of a line
    const after = body.slice(from, from + 2);
    const close = after === "--";
    // After the boundary only padding may follow before the line end.
    const lineEnd = body.indexOf("\n", from);
    const end = lineEnd < 0 ? body.length : lineEnd;
    if (end - from > MAX_PADDING || !/^[ \t\r]*$/.test(body.slice(close ? from + 2 : from, end))) continue;
    if (start >= 0) parts.push(body.slice(start, lineBreakBefore(body, at)));
    if (close) return parts;
    start = lineEnd < 0 ? body.length : lineEnd + 1;
  }
  if (start >= 0 && start < body.length) parts.push(body.slice(start));
  return parts;
}

/** The index of the CRLF (or LF) that precedes the delimiter at `at`. */
function lineBreakBefore(body: string, at: number): number {
  if (at === 0) return 0;
  return body[at - 2] === "\r" ? at - 2 : at - 1;
}

/** The entity's body with its transfer encoding undone (unknown encodings: as is). */
export function decodeBody(entity: Pick<MimeEntity, "body" | "encoding">): Buffer {
  switch (entity.encoding) {
    case "base64":
      // RFC 2045 §6.8: characters outside the alphabet are ignored.
      return Buffer.from(entity.body.replace(/[^A-Za-z0-9+/]/g, ""), "base64");
    case "quoted-printable":
      return decodeQuotedPrintable(entity.body);
    default:
      return Buffer.from(entity.body, "latin1");
  }
}

/** RFC 2045 §6.7: "=XX" is an octet, "=" at the end of a line a soft break; bad escapes stay literal. */
export function decodeQuotedPrintable(text: string): Buffer {
  const unfolded = text.replace(/=[ \t]*\r?\n/g, "");
  const out = Buffer.allocUnsafe(unfolded.length);
  let n = 0;
  for (let i = 0; i < unfolded.length; i++) {
    const c = unfolded.charCodeAt(i);
    if (c === 0x3d && i + 2 < unfolded.length && /^[0-9A-Fa-f]{2}$/.test(unfolded.slice(i + 1, i + 3))) {
      out[n++] = parseInt(unfolded.slice(i + 1, i + 3), 16);
      i += 2;
    } else {
      out[n++] = c & 0xff;
    }
  }
  return out.subarray(0, n);
}

/** The decoded body as text in its declared charset (UTF-8 when absent or unknown). */
export function bodyText(entity: MimeEntity): string {
  const bytes = decodeBody(entity);
  const charset = entity.contentType.params["charset"]?.toLowerCase() ?? "utf-8";
  try {
    return new TextDecoder(charset === "us-ascii" ? "utf-8" : charset, { fatal: false }).decode(bytes);
  } catch {
    return new TextDecoder("utf-8", { fatal: false }).decode(bytes);
  }
}

/** Every entity of the tree, depth first, the root included. */
export function walk(entity: MimeEntity): MimeEntity[] {
  const out: MimeEntity[] = [];
  const visit = (e: MimeEntity) => {
    out.push(e);
    for (const p of e.parts) visit(p);
  };
  visit(entity);
  return out;
}

/** The media type `type/subtype` of an entity. */
export const mediaType = (e: MimeEntity): string => `${e.contentType.type}/${e.contentType.subtype}`;
