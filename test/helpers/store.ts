/**
 * A migrated store owned by one test file: on real PostgreSQL (DATABASE_URL set) a database
 * of its own, dropped afterwards; otherwise an in-memory PGlite.
 */
import { randomBytes } from "node:crypto";
import { sql } from "drizzle-orm";
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

/**
 * Makes inserts into `table` fail with a real database error — what a worker sees when
 * PostgreSQL goes away — `once` (the first insert), `always` (until healed), or until a time.
 * A trigger raises; a sequence counts the inserts it saw (a failed statement's own changes are
 * rolled back, a sequence is not). `heal()` removes it all; it may be called twice.
 */
export async function failingInserts(store: Store, table: string, when: "once" | "always" | { until: Date }) {
  const name = `fail_${randomBytes(4).toString("hex")}`;
  const fails =
    when === "once" ? `nextval('${name}_n') = 1` : when === "always" ? `nextval('${name}_n') > 0` : `nextval('${name}_n') > 0 and clock_timestamp() < '${when.until.toISOString()}'::timestamptz`;
  await store.rows(sql.raw(`create sequence ${name}_n`));
  await store.rows(sql.raw(`create function ${name}() returns trigger language plpgsql as $$
    begin if ${fails} then raise exception 'injected: write to ${table} failed'; end if; return new; end $$`));
  await store.rows(sql.raw(`create trigger ${name} before insert on ${table} for each row execute function ${name}()`));
  let healed = false;
  return {
    /** Inserts the trigger saw, failed or not. */
    seen: async () => Number((await store.rows<{ n: number | string }>(sql.raw(`select case when is_called then last_value else 0 end as n from ${name}_n`)))[0]!.n),
    heal: async () => {
      if (healed) return;
      healed = true;
      await store.rows(sql.raw(`drop trigger ${name} on ${table}`));
      await store.rows(sql.raw(`drop function ${name}()`));
      await store.rows(sql.raw(`drop sequence ${name}_n`));
    },
  };
}
