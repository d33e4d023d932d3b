/**
 * A short-lived, in-process memo of key hash → principal, so a busy client does not cost one
 * database read per request. Correctness rules:
 * - entries live AUTH_CACHE_MS (a few seconds): a key revoked by another process stops
 *   working here within that time;
 * - a revocation in this process (`forgetKey`) drops the key's entries at once, and bumps a
 *   generation counter so a look-up that started before the revocation cannot put the
 *   stale principal back;
 * - only keys that were found valid are remembered (unknown keys always reach the database),
 *   entries are bound to the database handle they came from, and the map is bounded.
 */
import type { Db } from "../db/client.js";

export const AUTH_CACHE_MS = 2_000;
const MAX_ENTRIES = 10_000;

export interface CachedKey<P> {
  db: Db;
  principal: P;
  keyId: string;
  /** Raw SHA-256 of the key, for the constant-time comparison on every hit. */
  hash: Buffer;
  expiresAt: number;
  /** When last_used_at was last written (ms), as far as this process knows. */
  lastUsedAt: number | null;
}

const entries = new Map<string, CachedKey<unknown>>();
let generation = 0;

/** The current revocation generation; pass it to `remember` so stale look-ups are dropped. */
export const cacheGeneration = () => generation;

/** The live entry for `hashHex` on `db`, or undefined. */
export function recall<P>(db: Db, hashHex: string, now: number): CachedKey<P> | undefined {
  const e = entries.get(hashHex) as CachedKey<P> | undefined;
  if (!e) return undefined;
  if (e.expiresAt <= now || e.db !== db) {
    if (e.expiresAt <= now) entries.delete(hashHex);
    return undefined;
  }
  return e;
}

/** Remembers a valid key (this very object; its expiry is set here) unless a revocation happened since `startedAt` (a generation). */
export function remember<P>(hashHex: string, entry: CachedKey<P>, now: number, startedAt: number): void {
  if (startedAt !== generation) return;
  if (entries.size >= MAX_ENTRIES) {
    for (const [k, e] of entries) if (e.expiresAt <= now) entries.delete(k);
    // Still full: drop the oldest (Map iteration is insertion order).
    if (entries.size >= MAX_ENTRIES) entries.delete(entries.keys().next().value!);
  }
  entry.expiresAt = now + AUTH_CACHE_MS;
  entries.set(hashHex, entry);
}

/** Forgets every entry of the key `keyId` at once (called when it is revoked in this process). */
export function forgetKey(keyId: string): void {
  generation++;
  for (const [k, e] of entries) if (e.keyId === keyId) entries.delete(k);
}
