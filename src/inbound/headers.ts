/**
 * Header fields as the inbound parsers read them: RFC 5322 §2.2 header sections (also the
 * field groups of a message/delivery-status or message/feedback-report body, which use the
 * same syntax: RFC 3464 §2.1, RFC 5965 §3.1), and RFC 2045 §5.1 Content-Type parameters.
 *
 * Tolerant by design: a report is written by someone else's software, so a line without a
 * colon is skipped rather than refused, and both CRLF and bare LF end a line. Work is bounded
 * by MAX_FIELDS and MAX_FIELD_LENGTH whatever the input.
 *
 * Pure; strings here are "binary" (one char per octet, latin1) unless the caller decoded them.
 */
import { clip } from "./clip.js";

/** One header field: the name lower-cased, the value unfolded and trimmed. */
export interface HeaderField {
  name: string;
  value: string;
}

/** At most this many fields per block are kept; the rest are ignored. */
export const MAX_FIELDS = 1_000;
/** A longer unfolded field value is cut (a Received chain or a hostile header). */
export const MAX_FIELD_LENGTH = 16 * 1024;

/** RFC 5322 §3.6.8: ftext is printable US-ASCII except ":"; we also accept 8-bit octets. */
const FIELD_NAME = /^[!-9;-~\x80-\xff]+$/;

/**
 * Parses a block of header fields. RFC 5322 §2.2.3: a line starting with SP or HTAB
 * continues the previous field ("unfolding" removes the line break only).
 */
export function parseFields(block: string): HeaderField[] {
  const fields: HeaderField[] = [];
  let current: { name: string; parts: string[]; length: number } | null = null;
  const flush = () => {
    if (current && fields.length < MAX_FIELDS) {
      fields.push({ name: current.name, value: clip(current.parts.join("").trim(), MAX_FIELD_LENGTH) });
    }
    current = null;
  };
  for (const line of block.split(/\r?\n/)) {
    if (fields.length >= MAX_FIELDS) break;
    if (/^[ \t]/.test(line)) {
      // A continuation line with nothing before it is junk; otherwise append, up to the cap.
      if (current !== null) {
        const c: { parts: string[]; length: number } = current;
        if (c.length < MAX_FIELD_LENGTH) {
          c.parts.push(line);
          c.length += line.length;
        }
      }
      continue;
    }
    flush();
    const colon = line.indexOf(":");
    if (colon < 1) continue; // not a field (junk, or a stray "From " mbox line)
    const name = line.slice(0, colon).trimEnd();
    if (!FIELD_NAME.test(name)) continue;
    current = { name: name.toLowerCase(), parts: [line.slice(colon + 1)], length: line.length - colon };
  }
  flush();
  return fields;
}

/** The first field named `name` (case-insensitive), or undefined. */
export function field(fields: readonly HeaderField[], name: string): string | undefined {
  const n = name.toLowerCase();
  return fields.find((f) => f.name === n)?.value;
}

/** Every field named `name`, in order. */
export function fieldsNamed(fields: readonly HeaderField[], name: string): string[] {
  const n = name.toLowerCase();
  return fields.filter((f) => f.name === n).map((f) => f.value);
}

/**
 * Splits a block of field groups separated by empty lines (RFC 3464 §2.1: per-message fields,
 * then per-recipient groups). Blank lines containing only whitespace also separate.
 */
export function parseFieldGroups(text: string, maxGroups = 1_000): HeaderField[][] {
  const groups: HeaderField[][] = [];
  for (const chunk of text.split(/\r?\n[ \t]*\r?\n/)) {
    if (groups.length >= maxGroups) break;
    const fields = parseFields(chunk.replace(/^(?:[ \t]*\r?\n)+/, ""));
    if (fields.length) groups.push(fields);
  }
  return groups;
}

/** A parsed Content-Type (RFC 2045 §5.1): type and subtype lower-cased, parameter names too. */
export interface ContentType {
  type: string;
  subtype: string;
  params: Record<string, string>;
}

/**
 * Parses a Content-Type value; anything malformed falls back to `fallback` (RFC 2045 §5.2:
 * text/plain; charset=us-ascii). Comments are not supported; quoted strings are (RFC 5322 §3.2.4).
 */
export function parseContentType(value: string | undefined, fallback = "text/plain"): ContentType {
  const m = value ? /^\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*\/\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*/.exec(value) : null;
  const [type, subtype] = m ? [m[1]!.toLowerCase(), m[2]!.toLowerCase()] : fallback.split("/") as [string, string];
  const params: Record<string, string> = Object.create(null) as Record<string, string>;
  if (m && value) {
    const rest = value.slice(m[0].length);
    const param = /;\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))/g;
    let p: RegExpExecArray | null;
    let count = 0;
    while ((p = param.exec(rest)) !== null && count++ < 50) {
      const name = p[1]!.toLowerCase();
      if (!(name in params)) params[name] = p[2] !== undefined ? p[2].replace(/\\(.)/g, "$1") : p[3]!;
    }
  }
  return { type, subtype, params };
}
