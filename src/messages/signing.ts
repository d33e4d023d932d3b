/**
 * The send path's domain rule and signature: with REQUIRE_VERIFIED_DOMAIN the From domain must
 * be a verified domain of the account (422 otherwise, naming it); whenever the account has a
 * key for that domain the message is DKIM-signed over the exact bytes that will go on the wire.
 */
import { signMessage } from "../dkim/sign.js";
import type { Store } from "../db/client.js";
import { isVerified, signingKeyFor } from "../domains/signing.js";
import { AppError } from "../lib/errors.js";
import type { ServiceSecret } from "../lib/secret.js";

export interface DomainPolicy {
  requireVerified: boolean;
  secret: ServiceSecret;
}

export async function authorizeAndSign(store: Store, accountId: string, fromDomain: string, message: Buffer, policy: DomainPolicy): Promise<Buffer> {
  const key = await signingKeyFor(store, accountId, fromDomain, policy.secret);
  if (policy.requireVerified && key?.status !== "verified") {
    const why = key ? "is not verified yet (POST /domains/{id}/verify)" : "is not a sending domain of this account (POST /domains)";
    throw new AppError("unprocessable", `the From domain ${fromDomain} ${why}`, [{ path: "from", message: `${fromDomain} ${why}` }]);
  }
  if (!key) return message;
  return signMessage(message, [{ domain: key.name, selector: key.selector, privateKey: key.privateKey, algorithm: key.algorithm }]);
}

/**
 * With REQUIRE_VERIFIED_DOMAIN, a raw message's envelope sender must be at its From domain (or a
 * subdomain of it, e.g. a bounce domain) or at another verified domain of the account: without
 * RETURN_PATH_DOMAIN it is the MAIL FROM, where SPF is evaluated and bounces go, so an unchecked
 * one would send as (and backscatter to) anybody's domain. Domains are ASCII, lower-cased.
 */
export async function authorizeEnvelopeSender(store: Store, accountId: string, envelopeDomain: string, fromDomain: string, policy: DomainPolicy): Promise<void> {
  if (!policy.requireVerified || envelopeDomain === fromDomain || envelopeDomain.endsWith(`.${fromDomain}`)) return;
  if (await isVerified(store, accountId, envelopeDomain)) return;
  const why = `the envelope sender's domain ${envelopeDomain} is neither the From domain ${fromDomain} (or under it) nor a verified sending domain of this account`;
  throw new AppError("unprocessable", why, [{ path: "from", message: why }]);
}
