/**
 * DKIM "relaxed" canonicalisation (RFC 6376 §3.4.2 headers, §3.4.4 body) and the body hash
 * (§3.7). The body is walked with native indexOf between the few places relaxed rules change
 * anything (a tab, two spaces, whitespace before CRLF), and unchanged runs go to the hash as
 * sub-buffers, so hashing a composed message costs little more than hashing its bytes.
 */
import { createHash } from "node:crypto";

/**
 * One header field (name, colon, value, folds included; no final CRLF) in relaxed form:
 * name lower-cased, value unfolded, whitespace runs → one space, whitespace at the ends and
 * around the colon removed (RFC 6376 §3.4.2). Returned without CRLF.
 */
export function canonicalizeHeader(field: string): string {
  const colon = field.indexOf(":");
  if (colon < 0) throw new RangeError("a header field needs a colon");
  const name = field.slice(0, colon).replace(/[ \t]+$/, "").toLowerCase();
  const value = field
    .slice(colon + 1)
    .replace(/\r\n/g, "")
    .replace(/[ \t]+/g, " ")
    .replace(/^ | $/g, "");
  return `${name}:${value}`;
}

const SP = 0x20;
const TAB = 0x09;
const CR = 0x0d;
const LF = 0x0a;
const SPACE = Buffer.from(" ");
const CRLF = Buffer.from("\r\n");
const DOUBLE_SPACE = Buffer.from("  ");
const SPACE_CRLF = Buffer.from(" \r\n");

const isWsp = (b: number | undefined) => b === SP || b === TAB;

/** Streams the relaxed form of `body` (RFC 6376 §3.4.4) to `emit`, in pieces. */
function relaxedBody(body: Buffer, emit: (piece: Buffer) => void): void {
  // (c) empty lines at the end are ignored; with (a) lines of only whitespace are empty too.
  let end = body.length;
  while (end > 0) {
    const b = body[end - 1];
    if (b === CR || b === LF || b === SP || b === TAB) end--;
    else break;
  }
  if (end === 0) return; // an empty body stays empty
  const next = (needle: number | Buffer, from: number) => {
    const at = body.indexOf(needle, from);
    return at < 0 || at >= end ? Infinity : at;
  };
  let tab = next(TAB, 0);
  let double = next(DOUBLE_SPACE, 0);
  let trailing = next(SPACE_CRLF, 0);
  let pos = 0;
  for (;;) {
    const at = Math.min(tab, double, trailing);
    if (at === Infinity) break;
    let start = at;
    while (start > pos && isWsp(body[start - 1])) start--;
    let stop = at;
    while (stop < end && isWsp(body[stop])) stop++;
    if (start > pos) emit(body.subarray(pos, start));
    // (b) whitespace at the end of a line is deleted; (a) other runs become a single space.
    if (!(body[stop] === CR && body[stop + 1] === LF)) emit(SPACE);
    pos = stop;
    if (tab < pos) tab = next(TAB, pos);
    if (double < pos) double = next(DOUBLE_SPACE, pos);
    if (trailing < pos) trailing = next(SPACE_CRLF, pos);
  }
  if (pos < end) emit(body.subarray(pos, end));
  emit(CRLF); // the last non-empty line ends with CRLF, whatever the input had
}

/** The relaxed canonical body as one buffer (for tests and diagnostics). */
export function canonicalizeBody(body: Buffer): Buffer {
  const pieces: Buffer[] = [];
  relaxedBody(body, (p) => pieces.push(p));
  return Buffer.concat(pieces);
}

/** `bh=`: base64 SHA-256 of the relaxed canonical body (RFC 6376 §3.7 step 1, no l= limit). */
export function bodyHash(body: Buffer): string {
  const hash = createHash("sha256");
  relaxedBody(body, (p) => hash.update(p));
  return hash.digest("base64");
}
