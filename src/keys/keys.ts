/**
 * API keys (SPEC.md "Words"): `pl_` + 32 random bytes in base64url, shown once, stored only as
 * SHA-256 plus a short display prefix. Scopes: send ⊂ full; admin is separate.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { and, desc, eq, isNull, lt, or } from "drizzle-orm";
import type { Db, Tx } from "../db/client.js";
import { apiKeys } from "../db/schema.js";
import { newId } from "../lib/ids.js";
import { notFound } from "../lib/errors.js";

export const SCOPES = ["send", "full", "admin"] as const;
export type Scope = (typeof SCOPES)[number];

/** Who is calling: resolved from a valid, unrevoked key. */
export interface Principal {
  keyId: string;
  /** Null for admin keys. */
  accountId: string | null;
  scopes: Scope[];
}

export interface CreatedKey {
  id: string;
  name: string;
  key: string;
  prefix: string;
  scopes: Scope[];
  created_at: string;
}

export function generateKey(): string {
  return `pl_${randomBytes(32).toString("base64url")}`;
}

export function hashKey(key: string): string {
  return createHash("sha256").update(key, "utf8").digest("hex");
}

export const displayPrefix = (key: string) => key.slice(0, 11);

/** True when a principal holding `have` may use a route that needs `need` (full implies send). */
export function scopeAllows(have: readonly Scope[], need: Scope): boolean {
  return have.includes(need) || (need === "send" && have.includes("full"));
}

/** Stores a key (generated, or the given one for ADMIN_API_KEY) and returns it once. */
export async function createKey(
  db: Db | Tx,
  input: { accountId: string | null; name: string; scopes: Scope[]; key?: string },
): Promise<CreatedKey> {
  const key = input.key ?? generateKey();
  const [row] = await db
    .insert(apiKeys)
    .values({
      id: newId("apiKey"),
      accountId: input.accountId,
      name: input.name,
      prefix: displayPrefix(key),
      hash: hashKey(key),
      scopes: input.scopes,
    })
    .returning();
  return { id: row!.id, name: row!.name, key, prefix: row!.prefix, scopes: row!.scopes as Scope[], created_at: row!.createdAt.toISOString() };
}

const LAST_USED_GRANULARITY_MS = 60_000;

/**
 * Resolves a presented key to its principal, or null when unknown or revoked. The hash is
 * looked up by index and then compared in constant time; `last_used_at` is written at most
 * once a minute so authentication stays a single read on the hot path.
 */
export async function authenticate(db: Db, presented: string, now = new Date()): Promise<Principal | null> {
  if (!/^pl_[A-Za-z0-9_-]{32,128}$/.test(presented)) return null;
  const hash = hashKey(presented);
  const [row] = await db
    .select({ id: apiKeys.id, accountId: apiKeys.accountId, scopes: apiKeys.scopes, hash: apiKeys.hash, lastUsedAt: apiKeys.lastUsedAt })
    .from(apiKeys)
    .where(and(eq(apiKeys.hash, hash), isNull(apiKeys.revokedAt)))
    .limit(1);
  if (!row || !timingSafeEqual(Buffer.from(row.hash, "hex"), Buffer.from(hash, "hex"))) return null;
  if (!row.lastUsedAt || now.getTime() - row.lastUsedAt.getTime() > LAST_USED_GRANULARITY_MS) {
    const stale = new Date(now.getTime() - LAST_USED_GRANULARITY_MS);
    await db
      .update(apiKeys)
      .set({ lastUsedAt: now })
      .where(and(eq(apiKeys.id, row.id), or(isNull(apiKeys.lastUsedAt), lt(apiKeys.lastUsedAt, stale))));
  }
  return { keyId: row.id, accountId: row.accountId, scopes: row.scopes as Scope[] };
}

export interface KeyView {
  id: string;
  name: string;
  prefix: string;
  scopes: Scope[];
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

const view = (r: typeof apiKeys.$inferSelect): KeyView => ({
  id: r.id,
  name: r.name,
  prefix: r.prefix,
  scopes: r.scopes as Scope[],
  created_at: r.createdAt.toISOString(),
  last_used_at: r.lastUsedAt?.toISOString() ?? null,
  revoked_at: r.revokedAt?.toISOString() ?? null,
});

/** The account's keys, newest first, revoked ones included (they show `revoked_at`). */
export async function listKeys(db: Db, accountId: string, page: { limit: number; cursor?: string }) {
  const rows = await db
    .select()
    .from(apiKeys)
    .where(and(eq(apiKeys.accountId, accountId), page.cursor ? lt(apiKeys.id, page.cursor) : undefined))
    .orderBy(desc(apiKeys.id))
    .limit(page.limit + 1);
  const data = rows.slice(0, page.limit).map(view);
  return { data, next_cursor: rows.length > page.limit ? data[data.length - 1]!.id : null };
}

/** Revokes one of the account's keys; 404 for a key of another account. Revoking twice is harmless. */
export async function revokeKey(db: Db, accountId: string, id: string): Promise<KeyView> {
  const [row] = await db
    .update(apiKeys)
    .set({ revokedAt: new Date() })
    .where(and(eq(apiKeys.id, id), eq(apiKeys.accountId, accountId), isNull(apiKeys.revokedAt)))
    .returning();
  if (row) return view(row);
  const [existing] = await db
    .select()
    .from(apiKeys)
    .where(and(eq(apiKeys.id, id), eq(apiKeys.accountId, accountId)));
  if (!existing) throw notFound("API key");
  return view(existing);
}
