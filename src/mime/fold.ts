/**
 * Header folding (RFC 5322 §2.2.3): a field body is written as tokens separated by whitespace,
 * and a line break (CRLF) may be inserted before any of that whitespace. Lines are kept to 78
 * octets where the tokens allow (RFC 5322 §2.1.1 SHOULD) and never pass 998 (MUST).
 */

/** RFC 5322 §2.1.1: lines SHOULD be at most 78 characters, excluding the CRLF. */
export const SOFT_LINE = 78;
/** RFC 5322 §2.1.1: lines MUST be at most 998 characters, excluding the CRLF. */
export const HARD_LINE = 998;

const NON_ASCII = /[^\x00-\x7f]/;

/** Length of `s` in octets once UTF-8 encoded (line limits count octets, RFC 6532 §3.4). */
export function octets(s: string): number {
  return NON_ASCII.test(s) ? Buffer.byteLength(s, "utf8") : s.length;
}

/**
 * Builds one header field line by line. `add` appends a token after one space and folds
 * before that space when the token would carry the line past 78 octets; a token that fits no
 * line of 78 stays whole on its own line (still ≤ 998, or a RangeError: callers encode or split
 * anything longer, so that error means a bug).
 */
export class FieldWriter {
  private readonly lines: string[] = [];
  private line: string;
  private used: number;
  /** True once the current line holds a token after which a fold is allowed. */
  private hasToken = false;

  constructor(name: string) {
    this.line = `${name}:`;
    this.used = this.line.length;
  }

  /** Octets left on the current line for a token after one separating space (may be ≤ 0). */
  get room(): number {
    return SOFT_LINE - this.used - 1;
  }

  /** True when a run of `n` octets (spaces included) still fits the current line within 78. */
  fits(n: number): boolean {
    return this.used + n <= SOFT_LINE;
  }

  /** Ends the current line here, when there is something on it to end after. */
  fold(): void {
    if (!this.hasToken) return;
    this.lines.push(this.line);
    this.line = "";
    this.used = 0;
    this.hasToken = false;
  }

  /** Appends ` token`, folding before the space when the line would pass 78 octets. */
  add(token: string): void {
    const n = octets(token);
    // Never fold before an empty token: the new line would hold nothing but whitespace (§3.2.2).
    if (n > 0 && this.used + 1 + n > SOFT_LINE) this.fold();
    if (this.used + 1 + n > HARD_LINE && this.lines.length === 0) {
      // Only the field name is on the line: fold right after it (the body may start with FWS).
      this.lines.push(this.line);
      this.line = "";
      this.used = 0;
    }
    if (this.used + 1 + n > HARD_LINE) throw new RangeError(`header token of ${n} octets cannot fit a 998-octet line`);
    this.line += ` ${token}`;
    this.used += 1 + n;
    this.hasToken = true;
  }

  /** The field, folded, without the final CRLF. */
  toString(): string {
    return this.lines.length === 0 ? this.line : `${this.lines.join("\r\n")}\r\n${this.line}`;
  }
}
