/**
 * What the send path asks of sending domains: the DKIM key for a From domain, and whether the
 * account may send from it (REQUIRE_VERIFIED_DOMAIN). The row is remembered for
 * DOMAIN_CACHE_MS (this is on every POST /messages): a change made in this process
 * (create, verify, delete → `forgetDomains`) counts at once, one made by another process
 * within that time. The decrypted, parsed key is cached separately (keys.ts).
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
  const checked = normalizedFromDomain(fromDomain);
  if (!checked.ok) return null;
  const row = await domainRow(store, accountId, checked.name);
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

/**
 * normalizeDomainName, remembered: it is pure, every POST /messages asks it for its From
 * domain, and its IDNA step (domainToASCII) was ~1 % of the API process's CPU in bench:api.
 */
const normalizedNames = new Map<string, ReturnType<typeof normalizeDomainName>>();
function normalizedFromDomain(name: string): ReturnType<typeof normalizeDomainName> {
  let checked = normalizedNames.get(name);
  if (!checked) {
    checked = Object.freeze(normalizeDomainName(name));
    if (normalizedNames.size >= MAX_CACHED) normalizedNames.clear();
    normalizedNames.set(name, checked);
  }
  return checked;
}

export const DOMAIN_CACHE_MS = 2_000;
const MAX_CACHED = 10_000;
type DomainRow = typeof domains.$inferSelect;
const cache = new Map<string, { db: unknown; row: DomainRow | null; expiresAt: number }>();

/** Drops every remembered domain row (called on create, verify and delete in this process). */
export function forgetDomains(): void {
  cache.clear();
}

async function domainRow(store: Pick<Store, "db">, accountId: string, name: string): Promise<DomainRow | null> {
  const key = `${accountId} ${name}`;
  const now = Date.now();
  const hit = cache.get(key);
  if (hit && hit.expiresAt > now && hit.db === store.db) return hit.row;
  const [row] = await store.db
    .select()
    .from(domains)
    .where(and(eq(domains.name, name), eq(domains.accountId, accountId)));
  if (cache.size >= MAX_CACHED) cache.clear();
  cache.set(key, { db: store.db, row: row ?? null, expiresAt: now + DOMAIN_CACHE_MS });
  return row ?? null;
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

/**
 * Checked at start: the service secret opens the DKIM keys sealed so far (one is enough, they
 * share it). A SECRET_KEY other than the one they were sealed under would otherwise start
 * fine and fail every send from an existing domain with a 500.
 */
export async function assertSecretOpensKeys(store: Pick<Store, "db">, secret: ServiceSecret): Promise<void> {
  const [row] = await store.db.select({ id: domains.id, privateKeySealed: domains.privateKeySealed }).from(domains).limit(1);
  if (!row) return;
  try {
    unsealPrivateKey(secret, row);
  } catch {
    throw new Error("SECRET_KEY does not open the DKIM keys sealed so far: start with the secret they were made under (SECRET_KEY, or DATA_DIR/secret.key)");
  }
}
