/**
 * A migrated store owned by one test file: on real PostgreSQL (DATABASE_URL set) a database
 * of its own, dropped afterwards; otherwise an in-memory PGlite.
 */
import { randomBytes } from "node:crypto";
import postgres from "postgres";
import { openStore, type Store } from "../../src/db/client.js";

export const usingPostgres = () => Boolean(process.env.DATABASE_URL);

/** Creates an empty database next to DATABASE_URL's and returns its URL and a dropper. */
export async function scratchDatabase(baseUrl: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `t_${randomBytes(6).toString("hex")}`;
  const admin = postgres(baseUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database "${name}"`);
  await admin.end();
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const a = postgres(baseUrl, { max: 1, onnotice: () => {} });
      await a.unsafe(`drop database if exists "${name}" with (force)`);
      await a.end();
    },
  };
}

export async function testStore(): Promise<Store & { url?: string }> {
  const base = process.env.DATABASE_URL;
  const scratch = base ? await scratchDatabase(base) : undefined;
  const store = await openStore({ url: scratch?.url });
  await store.migrate();
  return {
    ...store,
    url: scratch?.url,
    close: async () => {
      await store.close();
      await scratch?.drop();
    },
  };
}
