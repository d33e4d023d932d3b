/**
 * A migrated store owned by one test file: on real PostgreSQL (DATABASE_URL set) a schema of
 * its own, dropped afterwards; otherwise an in-memory PGlite.
 */
import { randomBytes } from "node:crypto";
import postgres from "postgres";
import { openStore, type Store } from "../../src/db/client.js";

export const usingPostgres = () => Boolean(process.env.DATABASE_URL);

export async function testStore(): Promise<Store & { schema?: string }> {
  const url = process.env.DATABASE_URL;
  const schema = url ? `t_${randomBytes(6).toString("hex")}` : undefined;
  const store = await openStore({ url, schema });
  await store.migrate();
  return {
    ...store,
    schema,
    close: async () => {
      await store.close();
      if (url && schema) {
        const admin = postgres(url, { max: 1, onnotice: () => {} });
        await admin.unsafe(`drop schema if exists "${schema}" cascade`);
        await admin.end();
      }
    },
  };
}
