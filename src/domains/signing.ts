/**
 * What the send path asks of sending domains: the DKIM key for a From domain, and whether the
 * account may send from it (REQUIRE_VERIFIED_DOMAIN). Each call reads the row (one indexed
 * look-up), so a domain deleted or re-verified by any process counts at once; only the
 * decrypted, parsed key is cached (keys.ts).
 */
import type { KeyObject } from "node:crypto";
import { and, eq } from "drizzle-orm";
import type { Store } from "../db/client.js";
import { domains } from "../db/schema.js";
import type { ServiceSecret } from "../lib/secret.js";
import type { DomainStatus } from "./domains.js";
import { unsealPrivateKey, type DkimAlgorithm } from "./keys.js";
import { normalizeDomainName } from "./names.js";

export interface SigningKey {
  domainId: string;
  /** The registered name (ASCII), which is the DKIM `d=`. */
  name: string;
  status: DomainStatus;
  /** The DKIM `s=`. */
  selector: string;
  algorithm: DkimAlgorithm;
  /** PKCS#8 PEM. Never log it. */
  privateKeyPem: string;
  /** The same key, parsed. */
  privateKey: KeyObject;
}

/**
 * The account's key for `fromDomain` (the From address's domain, any case, Unicode or
 * punycode), or null when the account has no such domain. Exact match: a key for example.com
 * is not offered for news.example.com. Pending domains have keys too; check `status` (or
 * isVerified) before sending when REQUIRE_VERIFIED_DOMAIN is on.
 */
export async function signingKeyFor(store: Pick<Store, "db">, accountId: string, fromDomain: string, secret: ServiceSecret): Promise<SigningKey | null> {
  const checked = normalizeDomainName(fromDomain);
  if (!checked.ok) return null;
  const [row] = await store.db
    .select()
    .from(domains)
    .where(and(eq(domains.name, checked.name), eq(domains.accountId, accountId)));
  if (!row) return null;
  const key = unsealPrivateKey(secret, row);
  return {
    domainId: row.id,
    name: row.name,
    status: row.status as DomainStatus,
    selector: row.selector,
    algorithm: row.algorithm as DkimAlgorithm,
    privateKeyPem: key.privateKeyPem,
    privateKey: key.privateKey,
  };
}

/** True when `fromDomain` is a verified sending domain of the account. */
export async function isVerified(store: Pick<Store, "db">, accountId: string, fromDomain: string): Promise<boolean> {
  const checked = normalizeDomainName(fromDomain);
  if (!checked.ok) return false;
  const [row] = await store.db
    .select({ status: domains.status })
    .from(domains)
    .where(and(eq(domains.name, checked.name), eq(domains.accountId, accountId)));
  return row?.status === "verified";
}
