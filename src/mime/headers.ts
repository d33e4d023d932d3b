/**
 * Header field bodies: RFC 2047 encoded-words only where RFC 2047 §5 allows them (unstructured
 * text, display-name phrases), raw UTF-8 instead when the message travels with SMTPUTF8
 * (RFC 6532 §3.2), and address lists folded between addresses (RFC 5322 §3.4).
 */
import type { Mailbox } from "./address.js";
import { encodeWords } from "./encoded-words.js";
import { FieldWriter, HARD_LINE, octets } from "./fold.js";

export { encodeWords } from "./encoded-words.js";

/** ENGINE-NOTES "Header and address injection": CR, LF and NUL are refused, never stripped. */
export function assertHeaderText(text: string, what: string): void {
  if (/[\r\n\0]/.test(text)) throw new RangeError(`${what} contains CR, LF or NUL`);
}

/** A raw token may hold only these (tab and printable ASCII; plus UTF-8 under RFC 6532). */
const RAW_ASCII = /^[\t\x20-\x7e]*$/;
// Not raw even in UTF-8 headers: C1 controls and the Unicode line and paragraph separators, which
// some readers take for line breaks (U+0085 NEL, U+2028, U+2029; RFC 5198 §2): those are encoded.
const RAW_UTF8 = /^[^\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]*$/;

export interface UnstructuredOptions {
  /** RFC 6532 UTF-8 headers: non-ASCII words stay raw. */
  utf8?: boolean;
  /**
   * Longest word kept raw. Display text (Subject) uses 77, so every line can stay within 78 by
   * encoding longer words; caller headers keep machine-read tokens raw up to 997 (" " + token
   * still fits one 998-octet line).
   */
  maxRaw?: number;
}
/** Subject rules: a word longer than a continuation line's 77 octets is encoded. */
export const SUBJECT: UnstructuredOptions = { maxRaw: 77 };

/**
 * Words that must become encoded-words: non-ASCII (unless UTF-8 headers), controls, anything a
 * decoder could take for an encoded-word ("=?", RFC 2047 §6.2), and words too long to keep raw.
 */
function mustEncode(word: string, utf8: boolean, maxRaw: number): boolean {
  return !(utf8 ? RAW_UTF8 : RAW_ASCII).test(word) || word.includes("=?") || octets(word) > maxRaw;
}

type Segment = { raw: string } | { encode: string };

/**
 * Splits unstructured text at spaces into raw words and encoded spans. Neighbouring words that
 * need encoding share one span with the spaces between them, because whitespace between two
 * encoded-words is dropped by decoders (RFC 2047 §6.2). A run of spaces travels with the word
 * after it, as one token (encoded when that makes it too long to keep raw): a fold then never
 * falls inside the run, where it would leave a line of nothing but spaces or carry a line past
 * 998 octets (a value of encoded words, 981 spaces and a word was a RangeError, a 500).
 */
function segments(text: string, { utf8 = false, maxRaw = HARD_LINE - 1 }: UnstructuredOptions): Segment[] {
  const out: Segment[] = [];
  let spaces = ""; // the spaces before the next word, beyond the one that separates tokens
  for (const word of text.split(" ")) {
    if (word === "") {
      spaces += " ";
      continue;
    }
    const token = spaces + word;
    spaces = "";
    const last = out[out.length - 1];
    if (mustEncode(token, utf8, maxRaw)) {
      if (last && "encode" in last) last.encode += ` ${token}`;
      else out.push({ encode: token });
    } else {
      out.push({ raw: token });
    }
  }
  if (spaces) {
    // Trailing spaces stay with the last token (in its encoded-word, if it is one).
    const last = out[out.length - 1];
    if (!last) out.push({ raw: spaces.slice(1) }); // only spaces: n + 1 empty words for n spaces
    else if ("encode" in last) last.encode += spaces;
    else if (mustEncode(last.raw + spaces, utf8, maxRaw)) out[out.length - 1] = { encode: last.raw + spaces };
    else last.raw += spaces;
  }
  return out;
}

/** Writes unstructured text (RFC 5322 §3.2.5), encoded-words filling the room left on each line. */
export function writeUnstructured(w: FieldWriter, text: string, opts: UnstructuredOptions = {}): void {
  for (const seg of segments(text, opts)) {
    if ("raw" in seg) w.add(seg.raw);
    else for (const word of encodeWords(seg.encode, w.room)) w.add(word);
  }
}

/**
 * Unstructured text encoded, unfolded (words joined by single spaces); Subject rules unless told
 * otherwise. Its length is the encoded length the API limits (SPEC: subject ≤ 998 octets encoded).
 */
export function encodeUnstructured(text: string, opts: UnstructuredOptions = SUBJECT): string {
  return segments(text, opts)
    .flatMap((seg) => ("raw" in seg ? [seg.raw] : encodeWords(seg.encode)))
    .join(" ");
}

// RFC 5322 §3.2.3 atext (RFC 6532 §3.2 adds UTF8-non-ascii); a phrase of atoms needs no quotes.
const ATOMS_ASCII = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+(?: [A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*$/;
const ATOMS_UTF8 = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u0080-\u{10FFFF}]+(?: [A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u0080-\u{10FFFF}]+)*$/u;
/** Keep a quoted string or an atom on one 78-octet line with its neighbours: longer ones are encoded. */
const MAX_PHRASE_TOKEN = 76;

/**
 * A display name as phrase tokens (RFC 5322 §3.2.5): atoms as they are, a quoted string when it
 * has specials (commas, quotes…), encoded-words when it has non-ASCII (without UTF-8 headers) or
 * is too long to sit on one line — never an encoded-word inside quotes (RFC 2047 §5 (3)).
 */
export function phraseTokens(name: string, utf8 = false, firstRoom?: number): string[] {
  assertHeaderText(name, "display name");
  const plain = (utf8 ? RAW_UTF8 : /^[\x20-\x7e]*$/).test(name) && !name.includes("=?");
  if (plain) {
    if ((utf8 ? ATOMS_UTF8 : ATOMS_ASCII).test(name)) {
      const atoms = name.split(" ");
      if (atoms.every((a) => octets(a) <= MAX_PHRASE_TOKEN)) return atoms;
    } else {
      const quoted = `"${name.replace(/["\\]/g, "\\$&")}"`;
      if (octets(quoted) <= MAX_PHRASE_TOKEN) return [quoted];
    }
  }
  return encodeWords(name, firstRoom);
}

/** A display name as one phrase string (tokens joined by spaces). */
export function encodePhrase(name: string, utf8 = false): string {
  return phraseTokens(name, utf8).join(" ");
}

/**
 * Writes a comma-separated address list. Each mailbox stays on one line when it fits one, so
 * folds fall between addresses; a long display name folds between its own words.
 */
export function writeMailboxes(w: FieldWriter, list: readonly Mailbox[], utf8 = false): void {
  list.forEach((m, i) => {
    const address = utf8 ? m.address : m.asciiAddress;
    assertHeaderText(address, "address");
    if (!utf8 && /[^\x00-\x7f]/.test(address)) throw new RangeError("a UTF-8 local part needs UTF-8 headers (SMTPUTF8)");
    // An encoded display name's first word is sized to the room left where it starts (after the
    // field name, or on a fresh line), so that line too stays within 78.
    const tokensFor = (room: number) => {
      const tokens = m.name ? [...phraseTokens(m.name, utf8, room), `<${address}>`] : [address];
      if (i < list.length - 1) tokens[tokens.length - 1] += ",";
      return tokens;
    };
    let tokens = tokensFor(w.room);
    if (!w.fits(tokens.reduce((n, t) => n + 1 + octets(t), 0))) {
      w.fold();
      tokens = tokensFor(w.room);
    }
    for (const t of tokens) w.add(t);
  });
}

/** `Name: value` folded at spaces (value written as given: already encoded or structured). */
export function foldHeader(name: string, value: string): string {
  const w = new FieldWriter(name);
  for (const token of value.split(" ")) w.add(token);
  return w.toString();
}
