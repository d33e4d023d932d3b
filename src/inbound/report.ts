/**
 * The multipart/report container (RFC 6522) shared by DSNs (RFC 3464) and feedback reports
 * (RFC 5965): a human-readable first part, a machine-readable second part, and optionally the
 * returned message or its headers as the third. Readers here are tolerant: the report part is
 * looked for anywhere in the tree (some gateways wrap the report in multipart/mixed), and
 * whether the container was a proper multipart/report is reported rather than required.
 *
 * Pure: imports nothing of the application.
 */
import { field, parseFields, type HeaderField } from "./headers.js";
import { decodeBody, mediaType, splitHeaderBody, walk, type MimeEntity } from "./mime.js";

/** The first entity of one of `types` (e.g. message/delivery-status), depth first. */
export function findPart(root: MimeEntity, types: readonly string[]): MimeEntity | undefined {
  return walk(root).find((e) => types.includes(mediaType(e)));
}

/** The report-type parameter of the root (RFC 6522 §3), lower-cased, when the root is multipart/report. */
export function reportType(root: MimeEntity): string | null {
  if (mediaType(root) !== "multipart/report") return null;
  return root.contentType.params["report-type"]?.toLowerCase() ?? null;
}

const RETURNED_TYPES = ["message/rfc822", "message/global", "text/rfc822-headers", "message/global-headers"];

/**
 * The header fields of the returned message (RFC 6522 §3 third part; RFC 3464 §2; RFC 5965
 * §2 (c)): a full message/rfc822 (or RFC 6532 message/global), or headers only.
 */
export function returnedHeaders(root: MimeEntity): HeaderField[] | null {
  const part = findPart(root, RETURNED_TYPES);
  if (!part) return null;
  const text = decodeBody(part).toString("latin1");
  const head = part.contentType.subtype.endsWith("headers") ? text : splitHeaderBody(text).head;
  return parseFields(head);
}

/** One header field of the returned message (the first of that name), when present. */
export function returnedField(root: MimeEntity, name: string): string | undefined {
  const headers = returnedHeaders(root);
  return headers ? field(headers, name) : undefined;
}

/** The returned message's Message-ID (`<…>`), when it carries one. */
export function returnedMessageId(root: MimeEntity): string | null {
  const id = returnedField(root, "message-id");
  const m = id ? /<[^<>\s]{1,500}>/.exec(id) : null;
  return m ? m[0] : null;
}

/**
 * An address out of a typed-address field (RFC 3464 §2.3.1–2.3.2, RFC 5965 §3.2:
 * `rfc822; user@example.com`; RFC 6533 §3 adds `utf-8` with `\x{HHHH}` escapes). The type is
 * matched case-insensitively; angle brackets are dropped. Other address types (x400) → null.
 */
export function typedAddress(value: string | undefined): string | null {
  if (!value) return null;
  value = withoutComments(value); // `rfc822; bob@example.org (Bob)`
  const m = /^\s*([A-Za-z0-9-]+)\s*;\s*(.*)$/.exec(value);
  const type = m ? m[1]!.toLowerCase() : "rfc822";
  let address = (m ? m[2]! : value).trim();
  if (type !== "rfc822" && type !== "utf-8") return null;
  if (type === "utf-8") address = address.replace(/\\x\{([0-9A-Fa-f]{1,6})\}/g, (_, h: string) => safeCodePoint(parseInt(h, 16)));
  return plainAddress(address);
}

/** `<user@example.com>` or `user@example.com` → the address, if it looks like one. */
export function plainAddress(value: string): string | null {
  const a = value.trim().replace(/^<(.*)>$/, "$1").trim();
  if (a.length < 3 || a.length > 320 || /[\s<>]/.test(a)) return null;
  const at = a.lastIndexOf("@");
  return at > 0 && at < a.length - 1 ? a : null;
}

function safeCodePoint(cp: number): string {
  return cp > 0 && cp <= 0x10ffff && (cp < 0xd800 || cp > 0xdfff) ? String.fromCodePoint(cp) : "\ufffd";
}

/**
 * `value` without its comments: parenthesised text (nestable, with quoted-pairs) outside quoted
 * strings, which RFC 3464 §2.1.1 says is not part of a field's contents (`Action: failed
 * (permanent failure)`, `Final-Recipient: rfc822; bob@example.org (Bob)`). Whitespace collapsed.
 */
export function withoutComments(value: string): string {
  let out = "";
  let depth = 0;
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (c === "\\" && i + 1 < value.length) {
      if (depth === 0) out += c + value[i + 1];
      i++;
    } else if (quoted) {
      if (c === '"') quoted = false;
      out += c;
    } else if (c === "(") depth++;
    else if (c === ")" && depth > 0) {
      if (--depth === 0) out += " ";
    } else if (depth === 0) {
      if (c === '"') quoted = true;
      out += c;
    }
  }
  return out.replace(/\s+/g, " ").trim();
}
