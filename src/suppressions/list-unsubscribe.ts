/**
 * The one-click unsubscribe URIs a message with `unsubscribe: true` carries in its
 * List-Unsubscribe field (RFC 2369 §3.2, RFC 8058 §3.1): first the link
 * `PUBLIC_URL/unsubscribe/<JWT>` that POST /unsubscribe/{token} honours (RFC 8058 §3.1 wants
 * an HTTPS URI: mailbox providers ignore one-click for http, so production sets an https
 * PUBLIC_URL), then — when RETURN_PATH_DOMAIN is set — `mailto:u+<VERP token>@RETURN_PATH_DOMAIN`,
 * which the inbound listener honours. A JWT does not fit a local part (64 octets), hence the short VERP token.
 */
import { verpAddress } from "../inbound/verp.js";
import { signUnsubscribeToken, type UnsubscribeClaims } from "./unsubscribe-token.js";

export interface UnsubscribeLinks {
  /** The `unsubscribe` sub-key of the service secret (src/lib/secret.ts). */
  key: Buffer;
  /** PUBLIC_URL: where POST /unsubscribe/{token} is reachable from the recipient's mail provider. */
  publicUrl: string;
  /** The `verp` sub-key and RETURN_PATH_DOMAIN, when mailto unsubscribes can be received. */
  verp?: { key: Buffer; domain: string };
}

/** The URIs for one recipient, in order of preference (RFC 2369 §2: the client takes the first it supports). */
export async function listUnsubscribeUris(links: UnsubscribeLinks, claims: UnsubscribeClaims, now: Date = new Date()): Promise<string[]> {
  const token = await signUnsubscribeToken(links.key, claims, now);
  const uris = [`${links.publicUrl.replace(/\/+$/, "")}/unsubscribe/${token}`];
  if (links.verp) uris.push(`mailto:${verpAddress(links.verp.key, claims.recipient, links.verp.domain, "unsubscribe")}`);
  return uris;
}
