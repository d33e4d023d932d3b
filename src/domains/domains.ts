/**
 * Sending domains (SPEC.md "HTTP API"): a name that belongs to at most one account, its DKIM
 * key (sealed at rest, never returned), the DNS records to publish and their last verified state.
 */
import { and, desc, eq, lt } from "drizzle-orm";
import type { Db } from "../db/client.js";
import { domains } from "../db/schema.js";
import { AppError, notFound } from "../lib/errors.js";
import { isId, newId } from "../lib/ids.js";
import type { ServiceSecret } from "../lib/secret.js";
import { forgetDomains } from "./signing.js";
import { generateDkimKey } from "../dkim/keys.js";
import { forgetPrivateKey, newSelector, sealPrivateKey, type DkimAlgorithm } from "./keys.js";
import { normalizeDomainName } from "./names.js";
import { expectedRecords, type RecordPurpose, type RecordSettings, type RecordStatus } from "./records.js";
import { pageById } from "../lib/page.js";

export type DomainRow = typeof domains.$inferSelect;

/**
 * A domain's overall status:
 * - `pending`: its required records (DKIM and SPF) are not all verified yet;
 * - `verified`: they were at the last verification; sending from it is allowed when
 *   REQUIRE_VERIFIED_DOMAIN is on.
 */
export const DOMAIN_STATES = ["pending", "verified"] as const;
export type DomainStatus = (typeof DOMAIN_STATES)[number];

export interface RecordView {
  purpose: RecordPurpose;
  type: "TXT";
  name: string;
  value: string;
  required: boolean;
  status: RecordStatus;
  checked_at: string | null;
  detail: string | null;
}

export interface DomainView {
  id: string;
  name: string;
  status: DomainStatus;
  dkim: { selector: string; algorithm: DkimAlgorithm };
  records: RecordView[];
  created_at: string;
  verified_at: string | null;
}

/** The API form of a row; never includes the private key. */
export function domainView(row: DomainRow, settings: RecordSettings): DomainView {
  return {
    id: row.id,
    name: row.name,
    status: row.status as DomainStatus,
    dkim: { selector: row.selector, algorithm: row.algorithm as DkimAlgorithm },
    records: expectedRecords(row, settings).map((r) => {
      const state = row.checks[r.purpose];
      return { ...r, status: state?.status ?? "pending", checked_at: state?.checked_at ?? null, detail: state?.detail ?? null };
    }),
    created_at: row.createdAt.toISOString(),
    verified_at: row.verifiedAt?.toISOString() ?? null,
  };
}

// One message for the caller's own domain and another account's: which account holds it is not told.
const taken = (name: string) => new AppError("conflict", `${name} is already registered as a sending domain`);

/**
 * Registers a domain for an account with a new key pair. 422 for a name that cannot be a
 * sending domain, 409 when any account already has it (the unique index decides races).
 */
export async function createDomain(
  db: Db,
  secret: ServiceSecret,
  settings: RecordSettings,
  input: { accountId: string; name: string; algorithm?: DkimAlgorithm },
): Promise<DomainView> {
  const checked = normalizeDomainName(input.name);
  if (!checked.ok) throw new AppError("validation_failed", `invalid domain name: ${checked.reason}`, [{ path: "name", message: checked.reason }]);
  const name = checked.name;
  // Cheap early answer before generating a key; the insert below is what guarantees uniqueness.
  const [existing] = await db.select({ id: domains.id }).from(domains).where(eq(domains.name, name)).limit(1);
  if (existing) throw taken(name);

  const algorithm = input.algorithm ?? "rsa-sha256";
  const key = await generateDkimKey(algorithm);
  const id = newId("domain");
  const [row] = await db
    .insert(domains)
    .values({
      id,
      accountId: input.accountId,
      name,
      selector: newSelector(),
      algorithm,
      privateKeySealed: sealPrivateKey(secret, id, key.privateKey),
      dkimRecord: key.dnsRecord,
    })
    .onConflictDoNothing({ target: domains.name })
    .returning();
  if (!row) throw taken(name);
  forgetDomains();
  return domainView(row, settings);
}

/** One of the account's domains by id; null for unknown ids and other accounts' domains. */
export async function findDomain(db: Db, accountId: string, id: string): Promise<DomainRow | null> {
  if (!isId("domain", id)) return null;
  const [row] = await db
    .select()
    .from(domains)
    .where(and(eq(domains.id, id), eq(domains.accountId, accountId)));
  return row ?? null;
}

export async function getDomain(db: Db, settings: RecordSettings, accountId: string, id: string): Promise<DomainView> {
  const row = await findDomain(db, accountId, id);
  if (!row) throw notFound("domain");
  return domainView(row, settings);
}

/** The account's domains, newest first, cursor-paginated by id. */
export async function listDomains(db: Db, settings: RecordSettings, accountId: string, page: { limit: number; cursor?: string }) {
  const rows = await db
    .select()
    .from(domains)
    .where(and(eq(domains.accountId, accountId), page.cursor ? lt(domains.id, page.cursor) : undefined))
    .orderBy(desc(domains.id))
    .limit(page.limit + 1);
  return pageById(rows, page.limit, (r) => domainView(r, settings));
}

/** Deletes one of the account's domains and its key; the name is free again. 404 for others'. */
export async function deleteDomain(db: Db, accountId: string, id: string): Promise<{ id: string; name: string; deleted: true }> {
  if (!isId("domain", id)) throw notFound("domain");
  const [row] = await db
    .delete(domains)
    .where(and(eq(domains.id, id), eq(domains.accountId, accountId)))
    .returning({ id: domains.id, name: domains.name });
  if (!row) throw notFound("domain");
  forgetPrivateKey(row.id);
  forgetDomains();
  return { id: row.id, name: row.name, deleted: true };
}
