/**
 * One-click unsubscribe tokens (RFC 8058): a JWT (HS256, jose) under the `unsubscribe` sub-key
 * naming the account, the recipient address and the message, with its issue time. The token is
 * the only authority POST /unsubscribe/{token} needs, so it must verify before anything changes.
 */
import { SignJWT, jwtVerify } from "jose";

export interface UnsubscribeClaims {
  account: string;
  email: string;
  message: string;
  recipient: string;
}

/** Tokens carry no expiry: an unsubscribe link in an old message must still work (RFC 8058 §3). */
export async function signUnsubscribeToken(key: Buffer, c: UnsubscribeClaims, now: Date = new Date()): Promise<string> {
  return new SignJWT({ acc: c.account, eml: c.email, msg: c.message, rcp: c.recipient })
    .setProtectedHeader({ alg: "HS256" })
    .setIssuedAt(Math.floor(now.getTime() / 1000))
    .sign(key);
}

/** The claims of a valid token, or null for anything malformed, tampered or signed with another key. */
export async function verifyUnsubscribeToken(key: Buffer, token: string): Promise<UnsubscribeClaims | null> {
  if (token.length > 2048) return null;
  try {
    const { payload } = await jwtVerify(token, key, { algorithms: ["HS256"] });
    const { acc, eml, msg, rcp } = payload as Record<string, unknown>;
    if (typeof acc !== "string" || typeof eml !== "string" || typeof msg !== "string" || typeof rcp !== "string") return null;
    return { account: acc, email: eml, message: msg, recipient: rcp };
  } catch {
    return null;
  }
}
