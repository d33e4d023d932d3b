/**
 * Header encoding: RFC 2047 encoded-words for unstructured text and display-name phrases,
 * and folding (RFC 5322 §2.2.3) so no line passes 78 characters where it can be avoided
 * and never 998.
 */

const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/**
 * Encodes `text` as RFC 2047 "B" encoded-words of at most 75 characters each, split on
 * character boundaries so no UTF-8 sequence is ever cut (RFC 2047 §5 (3)).
 */
export function encodeWords(text: string): string[] {
  const words: string[] = [];
  const maxBytes = 45; // base64 of 45 bytes = 60 chars; with "=?utf-8?B?" and "?=" → 72 ≤ 75
  let chunk = "";
  let chunkBytes = 0;
  for (const ch of text) {
    const n = Buffer.byteLength(ch, "utf8");
    if (chunkBytes + n > maxBytes && chunk) {
      words.push(`=?utf-8?B?${Buffer.from(chunk, "utf8").toString("base64")}?=`);
      chunk = "";
      chunkBytes = 0;
    }
    chunk += ch;
    chunkBytes += n;
  }
  if (chunk || words.length === 0) words.push(`=?utf-8?B?${Buffer.from(chunk, "utf8").toString("base64")}?=`);
  return words;
}

/** Unstructured header text (Subject, custom headers): as is when printable ASCII, encoded-words otherwise. */
export function encodeUnstructured(text: string): string {
  if (PRINTABLE_ASCII.test(text) && !/=\?/.test(text)) return text;
  return encodeWords(text).join(" ");
}

/**
 * A display name as an RFC 5322 phrase: atoms as is, a quoted string when it has specials,
 * encoded-words when it has non-ASCII (never inside a quoted string, RFC 2047 §5 (3)).
 */
export function encodePhrase(name: string): string {
  if (!PRINTABLE_ASCII.test(name) || /=\?/.test(name)) return encodeWords(name).join(" ");
  if (/^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~ ]+$/.test(name) && name.trim() === name && !/ {2}/.test(name)) return name;
  return `"${name.replace(/(["\\])/g, "\\$1")}"`;
}

/**
 * Folds `Name: value` at whitespace so lines stay within 78 characters where possible.
 * A single word longer than that stays on its own line (still ≤ 998 for our inputs).
 */
export function foldHeader(name: string, value: string): string {
  const words = value.split(" ");
  const lines: string[] = [];
  let line = `${name}:`;
  for (const word of words) {
    if (line.length + 1 + word.length > 78 && line.length > name.length + 1 && line.trim() !== "") {
      lines.push(line);
      line = ` ${word}`;
    } else {
      line += ` ${word}`;
    }
  }
  lines.push(line);
  return lines.join("\r\n");
}
