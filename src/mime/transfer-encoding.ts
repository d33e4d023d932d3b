/**
 * Content-Transfer-Encoding (RFC 2045 §6): 7bit when the content already is 7-bit text with
 * short lines, quoted-printable for mostly-ASCII text, base64 for binary and mostly non-ASCII
 * text. The output is always 7-bit, CRLF only, lines ≤ 76 (QP, base64) or ≤ 998 (7bit), no NUL,
 * so a composed message never needs 8BITMIME. Buffers and lookup tables, no per-character strings.
 */
import { isAscii } from "node:buffer";

export type TransferEncoding = "7bit" | "quoted-printable" | "base64";

/** RFC 5322 §2.1.1 / RFC 2045 §2.8: 998 octets per line, CRLF excluded. */
const MAX_LINE = 998;
const CR = 0x0d;
const LF = 0x0a;

/** Normalises every line end to CRLF: no bare CR or LF survives (ENGINE-NOTES "SMTP smuggling"). */
export function toCrlf(text: string): string {
  if (!text.includes("\r")) return text.includes("\n") ? text.replaceAll("\n", "\r\n") : text;
  return text.replace(/\r\n?|\n/g, "\r\n");
}

/** Longest line of CRLF-separated `bytes`, in octets. */
function longestLine(bytes: Buffer): number {
  let longest = 0;
  let start = 0;
  for (;;) {
    const lf = bytes.indexOf(LF, start);
    const end = lf < 0 ? bytes.length : lf - 1; // the LF is preceded by its CR after normalisation
    if (end - start > longest) longest = end - start;
    if (lf < 0) return longest;
    start = lf + 1;
  }
}

/** True for RFC 2045 §2.7 7bit data: ASCII, no NUL, CR and LF only as CRLF, lines ≤ 998. */
export function isSevenBit(bytes: Buffer): boolean {
  if (!isAscii(bytes) || bytes.includes(0)) return false;
  for (let i = bytes.indexOf(CR); i >= 0; i = bytes.indexOf(CR, i + 1)) if (bytes[i + 1] !== LF) return false;
  for (let i = bytes.indexOf(LF); i >= 0; i = bytes.indexOf(LF, i + 1)) if (bytes[i - 1] !== CR) return false;
  return bytes.length <= MAX_LINE || longestLine(bytes) <= MAX_LINE;
}

/** A text body, line ends normalised to CRLF, encoded with the cheapest readable encoding. */
export function encodeText(text: string): { encoding: TransferEncoding; body: Buffer } {
  const crlf = toCrlf(text);
  const bytes = Buffer.from(crlf, "utf8");
  // Every non-ASCII character adds ≥ 1 octet over its UTF-16 length; NUL must not reach the wire.
  const extra = bytes.length - crlf.length;
  if (extra === 0 && !crlf.includes("\0") && (bytes.length <= MAX_LINE || longestLine(bytes) <= MAX_LINE))
    return { encoding: "7bit", body: bytes };
  // Non-ASCII octets ≈ 2 × extra, each 3 characters in QP; base64 costs 4/3 of everything.
  // QP while those escapes stay under ~1/3 of the size, so mostly-ASCII text stays readable.
  if (extra * 12 <= bytes.length) return { encoding: "quoted-printable", body: encodeQuotedPrintable(bytes) };
  return { encoding: "base64", body: encodeBase64(bytes) };
}

const HEX = Buffer.from("0123456789ABCDEF");
/**
 * RFC 2045 §6.7 rule (2): octets 33–60 and 62–126 may stand for themselves. "." and "F" are also
 * escaped at the start of a line (see below), space and tab everywhere but at a line's end.
 */
const LITERAL = new Uint8Array(256);
for (let b = 33; b <= 126; b++) if (b !== 0x3d) LITERAL[b] = 1;
const SPACE = 0x20;
const TAB = 0x09;
const DOT = 0x2e;
const F = 0x46;
/** RFC 2045 §6.7 rule (5): encoded lines ≤ 76 characters; 75 leaves room for the soft break "=". */
const QP_LINE = 75;

/**
 * Quoted-printable (RFC 2045 §6.7) of CRLF text: CRLF pairs are hard line breaks, every other
 * CR or LF is escaped, trailing space/tab is escaped (rule 3), soft breaks keep lines ≤ 76.
 * A "." or "From " at a line start is escaped too, so the part survives servers that forget
 * dot-stuffing and mbox "From " quoting untouched.
 */
export function encodeQuotedPrintable(src: Buffer): Buffer {
  const n = src.length;
  // Worst case: every octet escaped (3×) plus a soft break (3 octets) per 25 escapes.
  const out = Buffer.allocUnsafe(n * 3 + Math.ceil(n / 25) * 3 + 3);
  let o = 0;
  let col = 0;
  for (let i = 0; i < n; i++) {
    const b = src[i]!;
    if (b === CR && src[i + 1] === LF) {
      out[o++] = CR;
      out[o++] = LF;
      i++;
      col = 0;
      continue;
    }
    let literal = LITERAL[b] === 1;
    if (b === SPACE || b === TAB) {
      const next = src[i + 1];
      literal = next !== undefined && !(next === CR && src[i + 2] === LF);
    } else if (col === 0 && (b === DOT || (b === F && src[i + 1] === 0x72 && src[i + 2] === 0x6f && src[i + 3] === 0x6d && src[i + 4] === SPACE))) {
      literal = false;
    }
    const width = literal ? 1 : 3;
    if (col + width > QP_LINE) {
      out[o++] = 0x3d; // "=" CRLF: a soft line break
      out[o++] = CR;
      out[o++] = LF;
      col = 0;
      if (b === DOT || b === F) {
        i--; // re-examine: it now starts a line
        continue;
      }
    }
    if (literal) out[o++] = b;
    else {
      out[o++] = 0x3d;
      out[o++] = HEX[b >> 4]!;
      out[o++] = HEX[b & 15]!;
    }
    col += width;
  }
  return out.subarray(0, o);
}

/**
 * RFC 2045 §6.8: base64 in lines of 76 characters, CRLF between them, no trailing CRLF.
 * The native encoder writes the whole text at the end of the output buffer, then each line moves
 * forward into place (copyWithin) with its CRLF: one native pass and one copy per line, about
 * 3× faster than copying lines out of a second buffer.
 */
export function encodeBase64(src: Buffer): Buffer {
  const text = src.toString("base64");
  const length = text.length;
  const lines = Math.ceil(length / 76);
  const out = Buffer.allocUnsafe(length + Math.max(0, lines - 1) * 2);
  let from = out.length - length;
  out.write(text, from, "latin1");
  let to = 0;
  while (from < out.length) {
    const end = Math.min(from + 76, out.length);
    if (to > 0) {
      out[to++] = CR;
      out[to++] = LF;
    }
    out.copyWithin(to, from, end); // never overtakes its source: `to` reaches `from` only at the end
    to += end - from;
    from = end;
  }
  return out;
}
