import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eq } from "drizzle-orm";
import type { Db } from "../../src/db/client.js";
import { apiKeys } from "../../src/db/schema.js";
import { AUTH_CACHE_MS, cacheGeneration, forgetKey, recall, remember } from "../../src/keys/auth-cache.js";
import { authenticate, createKey, revokeKey } from "../../src/keys/keys.js";
import { createAccount } from "../../src/accounts/accounts.js";
import { testStore } from "../helpers/store.js";

let store: Awaited<ReturnType<typeof testStore>>;
let accountId: string;
beforeAll(async () => {
  store = await testStore();
  accountId = (await createAccount(store.db, "cache test")).id;
});
afterAll(() => store.close());

const newKey = () => createKey(store.db, { accountId, name: "k", scopes: ["send"] });

describe("authentication cache", () => {
  it("stops accepting a key revoked by another process once AUTH_CACHE_MS have passed", async () => {
    const k = await newKey();
    const t0 = Date.now();
    expect(await authenticate(store.db, k.key, new Date(t0))).toMatchObject({ keyId: k.id, accountId });
    // Another process revokes it: only the database changes, this process's cache does not hear of it.
    await store.db.update(apiKeys).set({ revokedAt: new Date() }).where(eq(apiKeys.id, k.id));
    expect(await authenticate(store.db, k.key, new Date(t0 + AUTH_CACHE_MS - 1))).not.toBeNull();
    expect(await authenticate(store.db, k.key, new Date(t0 + AUTH_CACHE_MS + 1))).toBeNull();
  });

  it("refuses a cached key at once when it is revoked in this process", async () => {
    const k = await newKey();
    const t0 = Date.now();
    expect(await authenticate(store.db, k.key, new Date(t0))).not.toBeNull();
    await revokeKey(store.db, accountId, k.id);
    expect(await authenticate(store.db, k.key, new Date(t0 + 1))).toBeNull();
  });

  it("does not cache unknown keys: a key created after a failed attempt works at once", async () => {
    const key = `pl_${"A".repeat(43)}`;
    expect(await authenticate(store.db, key)).toBeNull();
    await createKey(store.db, { accountId, name: "late", scopes: ["send"], key });
    expect(await authenticate(store.db, key)).toMatchObject({ accountId });
  });

  it("drops a look-up's result when a revocation happened while it was in flight", () => {
    const db = {} as Db;
    const startedAt = cacheGeneration();
    forgetKey("key_racing"); // the revocation commits while the look-up waits for its row
    const entry = { db, principal: { keyId: "key_racing" }, keyId: "key_racing", hash: Buffer.alloc(32), expiresAt: 0, lastUsedAt: null };
    remember("racing-hash", entry, Date.now(), startedAt);
    expect(recall(db, "racing-hash", Date.now())).toBeUndefined();
  });

  it("keeps entries of one database away from another", () => {
    const a = {} as Db;
    const b = {} as Db;
    const entry = { db: a, principal: {}, keyId: "key_a", hash: Buffer.alloc(32), expiresAt: 0, lastUsedAt: null };
    remember("shared-hash", entry, Date.now(), cacheGeneration());
    expect(recall(a, "shared-hash", Date.now())).toBe(entry);
    expect(recall(b, "shared-hash", Date.now())).toBeUndefined();
  });
});
