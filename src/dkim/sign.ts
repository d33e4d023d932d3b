/**
 * DKIM signing (RFC 6376 §5, RFC 8463): one DKIM-Signature per key, prepended to the exact bytes
 * that go on the wire, relaxed/relaxed canonicalisation, rsa-sha256 or ed25519-sha256.
 */
import { createHash, sign, type KeyObject } from "node:crypto";
import { domainToASCII } from "node:url";
import { bodyHash, canonicalizeHeader } from "./canonicalize.js";
import { privateKeyObject, type DkimAlgorithm } from "./keys.js";

export interface DkimSigningKey {
  /** The signing domain `d=` (Unicode is converted to A-labels, RFC 8616 §4). */
  domain: string;
  /** The selector `s=`: the key is published at `<selector>._domainkey.<domain>`. */
  selector: string;
  /** PKCS#8/PKCS#1 PEM (parsed once and cached) or a KeyObject. */
  privateKey: string | KeyObject;
  algorithm: DkimAlgorithm;
}

export interface SignOptions {
  /** Header names to sign (case-insensitive); default {@link DEFAULT_SIGNED_HEADERS}. */
  headers?: readonly string[];
  /** The `t=` timestamp; default now. */
  now?: Date;
}

/**
 * The fields whose change would change what the reader sees, where replies go or how the body
 * is read (RFC 6376 §5.4.1), and the one-click unsubscribe fields, which RFC 8058 §4 requires a
 * valid DKIM signature to cover. Each instance present is signed, and most are listed once more
 * (see {@link OVER_SIGNED}).
 */
export const DEFAULT_SIGNED_HEADERS = [
  "from", "to", "cc", "subject", "date", "message-id", "reply-to", "in-reply-to", "references",
  "mime-version", "content-type", "content-transfer-encoding", "list-unsubscribe", "list-unsubscribe-post",
] as const;

/**
 * Listed once more than they occur (RFC 6376 §8.15), so an added instance breaks the signature.
 * A verifier takes a field's instances bottom-up (§5.4.2): a Subject, Reply-To or Cc added
 * above a signed message is what a reader sees, so without this a replayed message could carry
 * any of them, under the domain's valid signature (the key signs every tenant's mail). "always":
 * also when absent (an added Reply-To or Cc breaks it too). List-* only when present: a mailing
 * list that adds its own to a message without them does not break its signature.
 */
const OVER_SIGNED: ReadonlyMap<string, "always" | "present"> = new Map([
  ...(["from", "to", "cc", "subject", "date", "message-id", "reply-to", "in-reply-to", "references", "mime-version", "content-type", "content-transfer-encoding"] as const).map(
    (h) => [h, "always"] as const,
  ),
  ["list-unsubscribe", "present"],
  ["list-unsubscribe-post", "present"],
]);

/** RFC 6376 §3.1 selector: dot-separated LDH labels. */
const SELECTOR = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i;

interface Field {
  name: string;
  text: string;
}

/** Splits a CRLF message into its header fields (latin1: one char per octet) and its body. */
function split(message: Buffer): { fields: Field[]; body: Buffer } {
  let headerEnd: number;
  let bodyStart: number;
  if (message[0] === 0x0d && message[1] === 0x0a) {
    headerEnd = 0;
    bodyStart = 2;
  } else {
    const blank = message.indexOf("\r\n\r\n");
    headerEnd = blank < 0 ? message.length : blank + 2;
    bodyStart = blank < 0 ? message.length : blank + 4;
  }
  const fields: Field[] = [];
  // A field ends at a CRLF not followed by whitespace (RFC 5322 §2.2.3 unfolding).
  for (const text of message.toString("latin1", 0, headerEnd).split(/\r\n(?![ \t])/)) {
    const colon = text.indexOf(":");
    if (colon > 0) fields.push({ name: text.slice(0, colon).trim().toLowerCase(), text: text.replace(/\r\n$/, "") });
  }
  return { fields, body: message.subarray(bodyStart) };
}

/** Folds `tokens` after `first` at the spaces between them, lines ≤ 78 where tokens allow. */
function fold(first: string, tokens: string[]): string {
  let out = first;
  let line = first.length;
  for (const t of tokens) {
    if (line + 1 + t.length > 78) {
      out += `\r\n ${t}`;
      line = 1 + t.length;
    } else {
      out += ` ${t}`;
      line += 1 + t.length;
    }
  }
  return out;
}

/** `h=a:b:c;` as tokens that break after a colon (FWS is allowed there, RFC 6376 §3.5). */
function headerListTokens(names: string[]): string[] {
  const tokens: string[] = [];
  let current = "h=";
  names.forEach((n, i) => {
    const piece = n + (i < names.length - 1 ? ":" : ";");
    if (current.length + piece.length > 76 && current !== "h=") {
      tokens.push(current);
      current = "";
    }
    current += piece;
  });
  tokens.push(current);
  return tokens;
}

function signOne(key: DkimSigningKey, headerData: string, names: string[], bh: string, t: number): string {
  const domain = domainToASCII(key.domain);
  if (!domain) throw new RangeError(`DKIM domain ${JSON.stringify(key.domain)} is not a valid domain name`);
  if (!SELECTOR.test(key.selector)) throw new RangeError(`DKIM selector ${JSON.stringify(key.selector)} is not valid`);
  const pk = privateKeyObject(key.privateKey);
  const expected = key.algorithm === "rsa-sha256" ? "rsa" : "ed25519";
  if (pk.asymmetricKeyType !== expected) throw new RangeError(`${key.algorithm} needs an ${expected} key, not ${pk.asymmetricKeyType}`);
  const unsigned = fold("DKIM-Signature:", [
    "v=1;", `a=${key.algorithm};`, "c=relaxed/relaxed;", `d=${domain};`, `s=${key.selector};`, `t=${t};`,
    ...headerListTokens(names), `bh=${bh};`, "b=",
  ]);
  // §3.7: the header hash covers the signed fields, then this field with an empty b= and no CRLF.
  const data = Buffer.from(headerData + canonicalizeHeader(unsigned), "latin1");
  const signature =
    key.algorithm === "rsa-sha256"
      ? sign("sha256", data, pk)
      : sign(null, createHash("sha256").update(data).digest(), pk); // RFC 8463 §3: Ed25519 over the SHA-256 hash
  const b64 = signature.toString("base64");
  // b= continues on its line, then 76-character lines: whitespace inside b= is ignored (§3.5).
  const lastLine = unsigned.length - unsigned.lastIndexOf("\n") - 1;
  let folded = b64.slice(0, Math.max(0, 78 - lastLine));
  for (let i = folded.length; i < b64.length; i += 76) folded += `\r\n ${b64.slice(i, i + 76)}`;
  return `${unsigned}${folded}\r\n`;
}

/**
 * Signs `message` (CRLF line ends, as composed) with every key, prepending one DKIM-Signature per
 * key in key order. Signs each present instance of the listed headers bottom-up (§5.4.2) and
 * lists the reader-facing ones (and present List-Unsubscribe fields) once more than they
 * occur, so one added later breaks the signature (§8.15).
 */
export function signMessage(message: Buffer, keys: readonly DkimSigningKey[], opts: SignOptions = {}): Buffer {
  if (!keys.length) return message;
  const { fields, body } = split(message);
  const bh = bodyHash(body);
  const t = Math.floor((opts.now ?? new Date()).getTime() / 1000);
  const wanted = [...new Set((opts.headers ?? DEFAULT_SIGNED_HEADERS).map((h) => h.toLowerCase()))];
  const names: string[] = [];
  let headerData = "";
  for (const name of wanted) {
    let present = false;
    for (let i = fields.length - 1; i >= 0; i--) {
      const f = fields[i]!;
      if (f.name !== name) continue;
      present = true;
      names.push(name);
      headerData += `${canonicalizeHeader(f.text)}\r\n`;
    }
    // An h= name with no instance left is signed as the null string (§5.4.2): over-signing.
    const over = OVER_SIGNED.get(name);
    if (over === "always" || (over === "present" && present)) names.push(name);
  }
  const signatures = keys.map((k) => signOne(k, headerData, names, bh, t)).join("");
  return Buffer.concat([Buffer.from(signatures, "latin1"), message]);
}
