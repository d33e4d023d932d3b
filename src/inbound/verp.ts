/**
 * VERP tokens (SPEC.md "Delivery rules"): the envelope sender of every outgoing transaction is
 * `b+<token>@RETURN_PATH_DOMAIN`, and one-click unsubscribe's mailto is `u+<token>@…`. The token
 * is the recipient id's 26 characters, a dash and a 16-character (80-bit) HMAC-SHA256 of them
 * under the `verp` sub-key, in the ids' lower-case base32: 2 + 26 + 1 + 16 = 45 octets, within
 * RFC 5321 §4.5.3.1.1's 64. It cannot be forged or guessed without the service secret; MTAs that
 * change the local part's case do no harm (checked case-insensitively). The unsubscribe tag is
 * part of what its HMAC covers: otherwise anyone who saw a message's return path (a co-recipient,
 * the envelope sender is the transaction's first recipient's) could turn `b+` into `u+` and
 * unsubscribe that recipient.
 *
 * Pure: the key is given (src/lib/secret.ts derives it).
 */
import { createHmac, timingSafeEqual } from "node:crypto";

const ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz";
const RECIPIENT_PREFIX = "rcpt_";
const ID_BODY = /^[0-9a-hjkmnp-tv-z]{26}$/;

/** What the local part's tag says: `b` a bounce or report, `u` a mailto unsubscribe. */
export type VerpKind = "bounce" | "unsubscribe";
const TAGS: Record<VerpKind, string> = { bounce: "b", unsubscribe: "u" };

function mac(key: Buffer, body: string): string {
  const digest = createHmac("sha256", key).update(body).digest();
  let bits = 0;
  let value = 0;
  let out = "";
  for (let i = 0; out.length < 16; ) {
    if (bits < 5) {
      value = (value << 8) | digest[i++]!;
      bits += 8;
    }
    out += ALPHABET[(value >>> (bits - 5)) & 31];
    bits -= 5;
  }
  return out;
}

/** What the HMAC covers: the id, and for unsubscribe its tag too (bounce tokens stay as they were issued). */
const signed = (kind: VerpKind, body: string) => (kind === "unsubscribe" ? `u:${body}` : body);

/** The token for a recipient id (`rcpt_…`). */
export function verpToken(key: Buffer, recipientId: string, kind: VerpKind = "bounce"): string {
  const body = recipientId.startsWith(RECIPIENT_PREFIX) ? recipientId.slice(RECIPIENT_PREFIX.length) : recipientId;
  if (!ID_BODY.test(body)) throw new Error(`not a recipient id: ${recipientId}`);
  return `${body}-${mac(key, signed(kind, body))}`;
}

/** The address `b+<token>@domain` (bounce) or `u+<token>@domain` (unsubscribe). */
export function verpAddress(key: Buffer, recipientId: string, domain: string, kind: VerpKind = "bounce"): string {
  return `${TAGS[kind]}+${verpToken(key, recipientId, kind)}@${domain}`;
}

export type ParsedVerp = { ok: true; kind: VerpKind; recipientId: string } | { ok: false; reason: string };

/**
 * Checks an address received by the inbound listener: the domain must be `domain`, the local
 * part a tag and a token whose HMAC verifies (constant-time). Anything else is refused.
 */
export function parseVerpAddress(key: Buffer, address: string, domain: string): ParsedVerp {
  const at = address.lastIndexOf("@");
  if (at < 1) return { ok: false, reason: "not an address" };
  if (address.slice(at + 1).toLowerCase() !== domain.toLowerCase()) return { ok: false, reason: "not the return-path domain" };
  const m = /^([bu])\+([0-9a-z]{26})-([0-9a-z]{16})$/.exec(address.slice(0, at).toLowerCase());
  if (!m) return { ok: false, reason: "not a Postline return-path address" };
  const [, tag, body, given] = m as unknown as [string, string, string, string];
  if (!ID_BODY.test(body)) return { ok: false, reason: "not a Postline return-path address" };
  const kind: VerpKind = tag === "u" ? "unsubscribe" : "bounce";
  const expected = Buffer.from(mac(key, signed(kind, body)));
  if (!timingSafeEqual(expected, Buffer.from(given))) return { ok: false, reason: "the token does not verify" };
  return { ok: true, kind, recipientId: `${RECIPIENT_PREFIX}${body}` };
}
