/**
 * MIME parameters (RFC 2045 §5.1): `type/subtype; attr=value; …`. Values that are not short
 * printable ASCII use RFC 2231 extended values (`filename*=utf-8''%E2%82%AC.pdf`), split into
 * numbered continuations (`filename*0*=…; filename*1*=…`, §3–4) so no line passes 78 octets,
 * after a plain ASCII fallback (`filename="…"`) for readers that know no RFC 2231.
 */
import { FieldWriter } from "./fold.js";

/** RFC 2045 §5.1 token: printable ASCII without tspecials, usable without quotes. */
const TOKEN = /^[!#$%&'*+\-.^_`{|}~0-9A-Za-z]+$/;
/** RFC 5987 §3.2.1 attr-char: what an extended value may hold unescaped. */
const ATTR_CHAR = new Uint8Array(128);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$&+-.^_`|~") ATTR_CHAR[c.charCodeAt(0)] = 1;
const HEX = "0123456789ABCDEF";
/** A parameter token plus its ";" must fit a continuation line: " " + token + ";" ≤ 78. */
const MAX_PARAM = 76;
/** Fallback names are cut to this length, extension kept. */
const MAX_FALLBACK = 60;

/** `value` escaped per RFC 2231 §4, one string per character so splits never cut a UTF-8 sequence. */
function percentEncoded(value: string): string[] {
  const out: string[] = [];
  for (const ch of value) {
    const code = ch.codePointAt(0)!;
    if (code < 128 && ATTR_CHAR[code] === 1) {
      out.push(ch);
      continue;
    }
    let esc = "";
    for (const b of Buffer.from(ch, "utf8")) esc += `%${HEX[b >> 4]}${HEX[b & 15]}`;
    out.push(esc);
  }
  return out;
}

/** A printable-ASCII stand-in for readers without RFC 2231: accents dropped, the rest "_". */
export function asciiFallback(value: string): string {
  let s = value
    .normalize("NFKD")
    .replace(/\p{M}/gu, "")
    .replace(/[^\x20-\x7e]|["\\]/g, "_");
  const dot = s.lastIndexOf(".");
  const ext = dot > 0 && s.length - dot <= 10 ? s.slice(dot) : "";
  let stem = ext ? s.slice(0, dot) : s;
  if (!/[A-Za-z0-9]/.test(stem)) stem = "attachment";
  if (stem.length + ext.length > MAX_FALLBACK) stem = stem.slice(0, MAX_FALLBACK - ext.length);
  s = stem + ext;
  return s;
}

/** One parameter as tokens: `attr=token`, `attr="quoted"`, or fallback + RFC 2231 extended form. */
export function paramTokens(attr: string, value: string): string[] {
  if (/^[\x20-\x7e]*$/.test(value) && !/["\\]/.test(value)) {
    const plain = TOKEN.test(value) ? `${attr}=${value}` : `${attr}="${value}"`;
    if (plain.length <= MAX_PARAM) return [plain];
  }
  const tokens = [`${attr}="${asciiFallback(value)}"`];
  const chars = percentEncoded(value);
  const whole = `${attr}*=utf-8''${chars.join("")}`;
  if (whole.length <= MAX_PARAM) return [...tokens, whole];
  // RFC 2231 §3: attr*0*=utf-8''…; attr*1*=…; each section a whole number of characters.
  let section = 0;
  let current = `${attr}*0*=utf-8''`;
  for (const c of chars) {
    // One character is at most 12 escaped octets, so a fresh section always takes it.
    if (current.length + c.length > MAX_PARAM) {
      tokens.push(current);
      section++;
      current = `${attr}*${section}*=`;
    }
    current += c;
  }
  tokens.push(current);
  return tokens;
}

/**
 * Writes `value; attr=…; attr=…` into `w`, folding between parameters (RFC 2045 §5.1 allows
 * whitespace around ";").
 */
export function writeParams(w: FieldWriter, value: string, params: readonly (readonly [string, string])[]): void {
  const tokens = [value, ...params.flatMap(([a, v]) => paramTokens(a, v))];
  tokens.forEach((t, i) => w.add(i < tokens.length - 1 ? `${t};` : t));
}

/** `Name: value; attr=…` as a folded header field. */
export function paramHeader(name: string, value: string, params: readonly (readonly [string, string])[]): string {
  const w = new FieldWriter(name);
  writeParams(w, value, params);
  return w.toString();
}
