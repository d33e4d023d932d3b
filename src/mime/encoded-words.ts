/**
 * RFC 2047 encoded-words in UTF-8: `=?utf-8?B?…?=` or `=?utf-8?Q?…?=`, each at most 75
 * characters (§2), split only between characters so no word ever holds part of a UTF-8 sequence
 * (§5 (3): "each 'encoded-word' MUST represent an integral number of characters").
 */

/** RFC 2047 §2: an encoded-word is at most 75 characters long. */
export const MAX_ENCODED_WORD = 75;
const OVERHEAD = "=?utf-8?B??=".length; // 12: charset, encoding and delimiters

const HEX = "0123456789ABCDEF";
/**
 * Octets a Q word may carry literally. RFC 2047 §5 (3) is the strictest context (a phrase):
 * only letters, digits and "!" "*" "+" "-" "/". Using it everywhere keeps one table.
 */
const Q_LITERAL = new Uint8Array(256);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/") Q_LITERAL[c.charCodeAt(0)] = 1;
const SPACE = 0x20;

/** Encoded length of one octet in Q: itself, "_" for a space (§4.2 (2)), or "=XX". */
function qCost(b: number): number {
  return Q_LITERAL[b] === 1 || b === SPACE ? 1 : 3;
}

function qWord(bytes: Buffer, start: number, end: number): string {
  let s = "=?utf-8?Q?";
  for (let i = start; i < end; i++) {
    const b = bytes[i]!;
    if (Q_LITERAL[b] === 1) s += String.fromCharCode(b);
    else if (b === SPACE) s += "_";
    else s += `=${HEX[b >> 4]}${HEX[b & 15]}`;
  }
  return `${s}?=`;
}

function bWord(bytes: Buffer, start: number, end: number): string {
  return `=?utf-8?B?${bytes.toString("base64", start, end)}?=`;
}

/**
 * Encodes `text` as encoded-words. Q is used when it is no longer than B (mostly-ASCII text stays
 * readable), B otherwise. The first word is sized to fit `firstRoom` characters when that room can
 * hold at least one character; later words use up to `maxWord` (≤ 75).
 */
export function encodeWords(text: string, firstRoom = MAX_ENCODED_WORD, maxWord = MAX_ENCODED_WORD): string[] {
  const bytes = Buffer.from(text, "utf8");
  let qTotal = 0;
  for (let i = 0; i < bytes.length; i++) qTotal += qCost(bytes[i]!);
  const useQ = qTotal <= Math.ceil(bytes.length / 3) * 4;
  const words: string[] = [];
  let limit = Math.min(firstRoom, maxWord);
  let start = 0;
  let cost = 0; // Q: encoded characters so far; B: octets so far
  let i = 0;
  while (i < bytes.length) {
    // One character: a lead octet and its continuation octets (10xxxxxx).
    let end = i + 1;
    while (end < bytes.length && (bytes[end]! & 0xc0) === 0x80) end++;
    let charCost = 0;
    if (useQ) for (let k = i; k < end; k++) charCost += qCost(bytes[k]!);
    else charCost = end - i;
    const next = cost + charCost;
    const length = OVERHEAD + (useQ ? next : Math.ceil(next / 3) * 4);
    if (length > limit && i > start) {
      words.push(useQ ? qWord(bytes, start, i) : bWord(bytes, start, i));
      start = i;
      cost = 0;
      limit = maxWord;
      continue; // re-measure this character against the fresh word
    }
    if (length > limit && i === start && limit < maxWord) {
      limit = maxWord; // the first room cannot hold even one character: the caller folds first
      continue;
    }
    cost = next;
    i = end;
  }
  if (start < bytes.length || words.length === 0) words.push(useQ ? qWord(bytes, start, bytes.length) : bWord(bytes, start, bytes.length));
  return words;
}
