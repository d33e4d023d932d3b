/**
 * API keys (SPEC.md "Words"): `pl_` + 32 random bytes in base64url, shown once, stored only as
 * SHA-256 plus a short display prefix. Scopes: send ⊂ full; admin is separate.
 */
import crypto, { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { and, desc, eq, isNull, lt, or, sql } from "drizzle-orm";
import type { Db, Tx } from "../db/client.js";
import { apiKeys } from "../db/schema.js";
import { API_KEY_FORMAT, isId, newId } from "../lib/ids.js";
import { notFound } from "../lib/errors.js";
import { cacheGeneration, forgetKey, recall, remember } from "./auth-cache.js";
import { pageById } from "../lib/page.js";

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

/** SHA-256 of the key, hex; `crypto.hash` (Node ≥ 20.12) is a one-shot digest without a Hash object. */
export const hashKey: (key: string) => string =
  typeof crypto.hash === "function"
    ? (key) => crypto.hash("sha256", key, "hex")
    : (key) => createHash("sha256").update(key, "utf8").digest("hex");

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

/** The key look-up, prepared once per database: no SQL building per request, one round trip. */
const lookups = new WeakMap<Db, ReturnType<typeof prepareLookup>>();
function prepareLookup(db: Db) {
  return db
    .select({ id: apiKeys.id, accountId: apiKeys.accountId, scopes: apiKeys.scopes, hash: apiKeys.hash, lastUsedAt: apiKeys.lastUsedAt })
    .from(apiKeys)
    .where(and(eq(apiKeys.hash, sql.placeholder("hash")), isNull(apiKeys.revokedAt)))
    .limit(1)
    .prepare("authenticate_key");
}

/**
 * Resolves a presented key to its principal, or null when unknown or revoked. The hash is
 * looked up by index and then compared in constant time; a valid key is remembered for a few
 * seconds (./auth-cache.ts: revocations in this process apply at once, elsewhere within
 * AUTH_CACHE_MS). `last_used_at` is written at most once a minute.
 */
export async function authenticate(db: Db, presented: string, now = new Date()): Promise<Principal | null> {
  if (!API_KEY_FORMAT.test(presented)) return null;
  const hashHex = hashKey(presented);
  const hash = Buffer.from(hashHex, "hex");
  const t = now.getTime();
  let entry = recall<Principal>(db, hashHex, t);
  if (entry) {
    if (!timingSafeEqual(entry.hash, hash)) return null;
  } else {
    const startedAt = cacheGeneration();
    let lookup = lookups.get(db);
    if (!lookup) lookups.set(db, (lookup = prepareLookup(db)));
    const [row] = await lookup.execute({ hash: hashHex });
    if (!row) return null;
    const stored = Buffer.from(row.hash, "hex");
    if (stored.length !== hash.length || !timingSafeEqual(stored, hash)) return null;
    const principal: Principal = Object.freeze({ keyId: row.id, accountId: row.accountId, scopes: Object.freeze([...row.scopes]) as Scope[] });
    entry = { db, principal, keyId: row.id, hash: stored, expiresAt: 0, lastUsedAt: row.lastUsedAt?.getTime() ?? null };
    remember(hashHex, entry, t, startedAt);
  }
  if (entry.lastUsedAt === null || t - entry.lastUsedAt > LAST_USED_GRANULARITY_MS) {
    entry.lastUsedAt = t; // set first: concurrent requests on a cached entry do not all write
    const stale = new Date(t - LAST_USED_GRANULARITY_MS);
    await db
      .update(apiKeys)
      .set({ lastUsedAt: now })
      .where(and(eq(apiKeys.id, entry.keyId), or(isNull(apiKeys.lastUsedAt), lt(apiKeys.lastUsedAt, stale))));
  }
  return entry.principal;
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
  return pageById(rows, page.limit, view);
}

/** Revokes one of the account's keys; 404 for a key of another account. Revoking twice is harmless. */
export async function revokeKey(db: Db, accountId: string, id: string): Promise<KeyView> {
  if (!isId("apiKey", id)) throw notFound("API key");
  const [row] = await db
    .update(apiKeys)
    .set({ revokedAt: new Date() })
    .where(and(eq(apiKeys.id, id), eq(apiKeys.accountId, accountId), isNull(apiKeys.revokedAt)))
    .returning();
  forgetKey(id); // after the update: a look-up racing it cannot re-cache the key (auth-cache.ts)
  if (row) return view(row);
  const [existing] = await db
    .select()
    .from(apiKeys)
    .where(and(eq(apiKeys.id, id), eq(apiKeys.accountId, accountId)));
  if (!existing) throw notFound("API key");
  return view(existing);
}
