/**
 * Standard Webhooks signatures (pure): `webhook-signature: v1,<base64 HMAC-SHA256>` over
 * `${id}.${timestamp}.${body}`, keyed with the base64-decoded part of the `whsec_…` secret, so
 * receivers verify with the standardwebhooks/Svix libraries.
 */
import { createHmac, randomBytes } from "node:crypto";

const PREFIX = "whsec_";

/** A new endpoint secret: `whsec_` and 32 random bytes in base64. */
export function newWebhookSecret(): string {
  return PREFIX + randomBytes(32).toString("base64");
}

/** The HMAC key inside a `whsec_…` secret. */
export function secretKey(secret: string): Buffer {
  if (!secret.startsWith(PREFIX)) throw new Error("not a whsec_ secret");
  return Buffer.from(secret.slice(PREFIX.length), "base64");
}

/** A type, not an interface, so it passes as the client's Record<string, string> without a copy. */
export type SignatureHeaders = {
  "webhook-id": string;
  "webhook-timestamp": string;
  "webhook-signature": string;
};

/** The three headers for one try: `timestamp` in seconds since the epoch. */
export function signatureHeaders(key: Buffer, id: string, timestamp: number, body: string | Buffer): SignatureHeaders {
  const ts = String(Math.floor(timestamp));
  const mac = createHmac("sha256", key).update(`${id}.${ts}.`).update(body).digest("base64");
  return { "webhook-id": id, "webhook-timestamp": ts, "webhook-signature": `v1,${mac}` };
}
