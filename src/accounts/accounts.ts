/** Accounts (tenants). Each starts with one `full` key, created in the same transaction. */
import { and, desc, eq, isNull, lt, ne, sql } from "drizzle-orm";
import type { Db, Store } from "../db/client.js";
import { accounts, apiKeys } from "../db/schema.js";
import { newId } from "../lib/ids.js";
import { createKey, hashKey, type CreatedKey } from "../keys/keys.js";
import { pageById } from "../lib/page.js";

export interface AccountView {
  id: string;
  name: string;
  created_at: string;
}

export async function createAccount(db: Db, name: string): Promise<AccountView & { api_key: CreatedKey }> {
  return db.transaction(async (tx) => {
    const [row] = await tx.insert(accounts).values({ id: newId("account"), name }).returning();
    const key = await createKey(tx, { accountId: row!.id, name: "default", scopes: ["full"] });
    return { id: row!.id, name: row!.name, created_at: row!.createdAt.toISOString(), api_key: key };
  });
}

export async function listAccounts(db: Db, page: { limit: number; cursor?: string }) {
  const rows = await db
    .select()
    .from(accounts)
    .where(page.cursor ? lt(accounts.id, page.cursor) : undefined)
    .orderBy(desc(accounts.id))
    .limit(page.limit + 1);
  return pageById(rows, page.limit, (r) => ({ id: r.id, name: r.name, created_at: r.createdAt.toISOString() }));
}

/**
 * First start: make sure an admin key exists. With `ADMIN_API_KEY` set, that key is stored
 * (once); otherwise, if there is no admin key at all, one is generated and returned so the
 * caller can print it once. Serialised by an advisory lock so two processes starting
 * together create one key.
 */
export async function ensureAdminKey(store: Store, configured?: string): Promise<string | null> {
  return store.db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(7362111)`);
    if (configured) {
      const hash = hashKey(configured);
      const [found] = await tx.select({ id: apiKeys.id, revokedAt: apiKeys.revokedAt }).from(apiKeys).where(eq(apiKeys.hash, hash));
      if (!found) await createKey(tx, { accountId: null, name: "admin (ADMIN_API_KEY)", scopes: ["admin"], key: configured });
      else if (found.revokedAt) await tx.update(apiKeys).set({ revokedAt: null }).where(eq(apiKeys.id, found.id));
      // The configured key is the admin key: any other (the one printed at first start, an
      // earlier ADMIN_API_KEY) is revoked, so changing the variable rotates the key.
      await tx
        .update(apiKeys)
        .set({ revokedAt: new Date() })
        .where(and(sql`'admin' = any(${apiKeys.scopes})`, isNull(apiKeys.revokedAt), ne(apiKeys.hash, hash)));
      return null;
    }
    const [any] = await tx
      .select({ id: apiKeys.id })
      .from(apiKeys)
      .where(and(sql`'admin' = any(${apiKeys.scopes})`, sql`${apiKeys.revokedAt} is null`))
      .limit(1);
    if (any) return null;
    const created = await createKey(tx, { accountId: null, name: "admin (first start)", scopes: ["admin"] });
    return created.key;
  });
}
