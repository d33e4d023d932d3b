/**
 * Incremental SMTP reply parser (RFC 5321 §4.2). Pure: bytes in, replies out.
 *
 * Chunks may split anywhere (mid-line, mid-CRLF). Lines end with CRLF, or with a bare LF
 * from sloppy servers. A hostile server cannot make us buffer without bound: an over-long
 * line or an over-long multi-line reply is a protocol error, after which the parser is dead.
 */

/** One complete server reply. `lines` hold the text after `xyz-` / `xyz ` of each line. */
export interface Reply {
  code: number;
  /** RFC 3463 `class.subject.detail` right after the code (RFC 2034), e.g. "5.7.26"; null if absent. */
  enhanced: string | null;
  lines: string[];
  /** The lines joined with "\n", exactly as the server wrote them (enhanced code included). */
  text: string;
  /** Set on replies made up by this client (e.g. SIZE exceeded) that the server never sent. */
  synthetic?: true;
}

export interface ReplyParserLimits {
  /** Octets per line, CRLF excluded. RFC 5321 §4.5.3.1.5 says 512; we allow slack. */
  maxLineLength: number;
  /** Lines per reply (a long EHLO list is ~30). */
  maxLines: number;
}

export const DEFAULT_REPLY_LIMITS: ReplyParserLimits = { maxLineLength: 2048, maxLines: 128 };

export type FeedResult = { replies: Reply[]; error: string | null };

const LF = 0x0a;
const CR = 0x0d;
// RFC 5321 §4.2: three digits, the first 2–5, then SP, "-" or the end of the line.
const LINE = /^([2-5][0-9][0-9])([ -]|$)/;
// RFC 3463: class 2/4/5, subject and detail 1–3 digits each, followed by white space or the end.
const ENHANCED = /^([245])\.(\d{1,3})\.(\d{1,3})(?=[ \t]|$)/;

export class ReplyParser {
  private partial: Buffer = Buffer.alloc(0);
  private lines: string[] = [];
  private code = 0;
  private failed: string | null = null;

  constructor(private readonly limits: ReplyParserLimits = DEFAULT_REPLY_LIMITS) {}

  /**
   * Feeds a chunk; returns the replies it completed. After an error every later call returns
   * the same error and no replies — the connection must be dropped.
   */
  feed(chunk: Buffer): FeedResult {
    const replies: Reply[] = [];
    if (this.failed) return { replies, error: this.failed };
    const buf = this.partial.length ? Buffer.concat([this.partial, chunk]) : chunk;
    let start = 0;
    for (;;) {
      const lf = buf.indexOf(LF, start);
      if (lf < 0) break;
      let end = lf;
      if (end > start && buf[end - 1] === CR) end--;
      if (end - start > this.limits.maxLineLength) return this.fail(replies, `reply line longer than ${this.limits.maxLineLength} octets`);
      const reply = this.line(buf.toString("utf8", start, end));
      if (typeof reply === "string") return this.fail(replies, reply);
      if (reply) replies.push(reply);
      start = lf + 1;
    }
    // Keep the incomplete tail; a CR just before the cut is kept and stripped once LF arrives.
    const rest = buf.length - start;
    if (rest > this.limits.maxLineLength + 1) return this.fail(replies, `reply line longer than ${this.limits.maxLineLength} octets`);
    this.partial = rest === 0 ? Buffer.alloc(0) : Buffer.from(buf.subarray(start));
    return { replies, error: null };
  }

  /** Drops everything buffered (RFC 3207 §4.2: nothing from before TLS may be used after it). */
  reset(): void {
    this.partial = Buffer.alloc(0);
    this.lines = [];
    this.code = 0;
  }

  /** True while part of a reply has been received but not its last line. */
  get pending(): boolean {
    return this.partial.length > 0 || this.lines.length > 0;
  }

  private fail(replies: Reply[], error: string): FeedResult {
    this.failed = error;
    this.reset();
    return { replies, error };
  }

  private line(raw: string): Reply | string | null {
    const m = LINE.exec(raw);
    if (!m) return `malformed reply line: ${JSON.stringify(raw.slice(0, 80))}`;
    const code = Number(m[1]);
    if (this.lines.length > 0 && code !== this.code) {
      return `multi-line reply changed its code from ${this.code} to ${code}`; // RFC 5321 §4.2.1
    }
    if (this.lines.length >= this.limits.maxLines) return `reply longer than ${this.limits.maxLines} lines`;
    this.code = code;
    // NUL cannot be stored in PostgreSQL text and has no business in a reply.
    this.lines.push(raw.slice(4).replace(/\0/g, "\uFFFD"));
    if (m[2] === "-") return null;
    const lines = this.lines;
    this.lines = [];
    this.code = 0;
    return { code, enhanced: enhancedCode(code, lines[0] ?? ""), lines, text: lines.join("\n") };
  }
}

/**
 * The enhanced status code at the start of `text`, if its class matches the reply code's first
 * digit (RFC 2034 §4: a mismatch means the code is not an enhanced status code).
 */
export function enhancedCode(code: number, text: string): string | null {
  const m = ENHANCED.exec(text);
  if (!m || Number(m[1]) !== Math.floor(code / 100)) return null;
  return `${m[1]}.${m[2]}.${m[3]}`;
}

/** A reply as it appeared on the wire, for logs and stored outcomes: "550-a\n550 b". */
export function formatReply(reply: Reply): string {
  return reply.lines.map((l, i) => `${reply.code}${i === reply.lines.length - 1 ? " " : "-"}${l}`).join("\n");
}

/** A reply the client makes up itself (refusing before sending); marked `synthetic`. */
export function syntheticReply(code: number, enhanced: string, text: string): Reply {
  const line = `${enhanced} ${text}`;
  return { code, enhanced, lines: [line], text: line, synthetic: true };
}
