/**
 * DATA encoding (RFC 5321 §4.5.2, §2.3.8) and the defences against SMTP smuggling
 * (CVE-2023-51764 and kin): every bare CR and bare LF becomes CRLF, NUL is refused, every line
 * that starts with "." gets another ".", and exactly one CRLF.CRLF ends the data. Content that
 * "is already stuffed" is never trusted: this function is the only way bytes reach DATA.
 *
 * Pure and fast: lines are found with native `indexOf` and copied with `Buffer#copy`, in two
 * passes (measure, then fill one exactly sized buffer), so a 20 MB message costs a few ms.
 */
import { isAscii } from "node:buffer";

/** RFC 5321 §4.5.3.1.6 / RFC 5322 §2.1.1: 1000 octets with CRLF, so 998 of content. */
export const MAX_LINE_OCTETS = 998;

export interface EncodedMessage {
  /** Bytes to write after the 354 reply, terminator included. */
  readonly data: Buffer;
  /** Octets of the message itself with CRLF line ends (no stuffing, no terminator): RFC 1870 SIZE. */
  readonly size: number;
  /** Any octet ≥ 0x80: needs BODY=8BITMIME (RFC 6152). */
  readonly eightBit: boolean;
  /** Longest line in octets, line end excluded; above MAX_LINE_OCTETS is the caller's call. */
  readonly longestLine: number;
}

export type EncodeResult =
  | { ok: true; message: EncodedMessage }
  | { ok: false; error: "nul"; offset: number; reason: string };

const NUL = 0x00;
const LF = 0x0a;
const CR = 0x0d;
const DOT = 0x2e;
const CRLF_DOT_CRLF = Buffer.from("\r\n.\r\n");

/** Messages produced here, so `send` can tell a real encoding from a look-alike object. */
const produced = new WeakSet<object>();

/** Normalises line ends, dot-stuffs and terminates `input` for DATA. Refuses NUL. */
export function encodeData(input: Buffer): EncodeResult {
  const nul = input.indexOf(NUL);
  if (nul >= 0) return { ok: false, error: "nul", offset: nul, reason: `message contains a NUL octet at offset ${nul}` };
  const measured = walk(input, null);
  let out: Buffer;
  let filled = measured;
  if (measured.length === input.length + measured.terminator) {
    // Nothing to change (the usual composed message): one copy plus the terminator.
    out = Buffer.allocUnsafe(measured.length);
    input.copy(out, 0);
    CRLF_DOT_CRLF.copy(out, input.length, 5 - measured.terminator);
  } else {
    out = Buffer.allocUnsafe(measured.length);
    filled = walk(input, out);
  }
  const message: EncodedMessage = {
    data: out,
    size: filled.length - filled.dots - filled.terminator,
    eightBit: !isAscii(input),
    longestLine: filled.longest,
  };
  produced.add(message);
  return { ok: true, message };
}

/** True only for objects returned by `encodeData` (never for hand-made "already stuffed" data). */
export function isEncodedMessage(value: unknown): value is EncodedMessage {
  return typeof value === "object" && value !== null && produced.has(value);
}

interface Walk {
  length: number;
  dots: number;
  terminator: number;
  longest: number;
}

/**
 * One pass over the line ends of `src`. With `out` null it only measures; otherwise it writes the
 * encoded bytes into `out`, which must be exactly the measured length. Unchanged stretches
 * (most of a composed message) are copied as whole runs, not line by line.
 */
function walk(src: Buffer, out: Buffer | null): Walk {
  const n = src.length;
  let o = 0; // bytes written to out
  let run = 0; // start of the input not yet copied
  let dots = 0;
  let longest = 0;
  let lineStart = 0;
  let endedWithEol = false;
  const flush = (to: number) => {
    if (out && to > run) src.copy(out, o, run, to);
    o += to - run;
    run = to;
  };
  const put = (byte: number) => {
    if (out) out[o] = byte;
    o++;
  };
  let nextLF = src.indexOf(LF);
  let nextCR = src.indexOf(CR);
  for (;;) {
    // RFC 5321 §4.5.2: a line that starts with "." gets one more.
    if (lineStart < n && src[lineStart] === DOT) {
      flush(lineStart);
      put(DOT);
      dots++;
    }
    if (nextLF === -1 && nextCR === -1) {
      endedWithEol = lineStart === n && n > 0;
      if (n - lineStart > longest) longest = n - lineStart;
      break;
    }
    let eol: number;
    let next: number;
    if (nextCR !== -1 && (nextLF === -1 || nextCR < nextLF)) {
      eol = nextCR;
      if (src[eol + 1] === LF) {
        next = eol + 2; // CRLF: already right
        nextLF = src.indexOf(LF, next);
      } else {
        next = eol + 1; // RFC 5321 §2.3.8: a bare CR becomes CRLF
        flush(eol);
        put(CR);
        put(LF);
        run = next;
      }
      nextCR = src.indexOf(CR, next);
    } else {
      eol = nextLF; // a bare LF (a CR before it would have been seen first) becomes CRLF
      next = eol + 1;
      flush(eol);
      put(CR);
      put(LF);
      run = next;
      nextLF = src.indexOf(LF, next);
    }
    if (eol - lineStart > longest) longest = eol - lineStart;
    lineStart = next;
  }
  flush(n);
  // The CRLF of ".CRLF"'s leading pair is the last line's own end when there is one.
  const terminator = n === 0 || endedWithEol ? 3 : 5;
  if (out) CRLF_DOT_CRLF.copy(out, o, 5 - terminator);
  o += terminator;
  return { length: o, dots, terminator, longest };
}
