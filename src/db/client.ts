/**
 * The store: one drizzle database over either postgres.js (DATABASE_URL set) or PGlite
 * (embedded, under DATA_DIR). This is the only module that knows which one it is.
 */
import fs from "node:fs";
import path from "node:path";
import { PGlite } from "@electric-sql/pglite";
import postgres from "postgres";
import { sql, type SQL } from "drizzle-orm";
import { drizzle as drizzlePglite } from "drizzle-orm/pglite";
import { drizzle as drizzlePostgres } from "drizzle-orm/postgres-js";
import { PgDialect, type PgDatabase, type PgQueryResultHKT } from "drizzle-orm/pg-core";
import * as schema from "./schema.js";
import { applyMigrations, migrationsPending } from "./migrate.js";

export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;
/** A transaction handle has the same query API as the database. */
export type Tx = Parameters<Parameters<Db["transaction"]>[0]>[0];

export interface StoreOptions {
  /** postgres:// URL; absent → PGlite. */
  url?: string;
  /** PGlite data directory; absent with no url → in-memory (tests). */
  dataDir?: string;
  /**
   * postgres.js pool size of the query builder (default 10). `rows` has a pool of half that
   * size (at least 2) and each set of planner settings one of 2, all opened on demand.
   */
  poolSize?: number;
}

export interface Store {
  readonly db: Db;
  readonly kind: "postgres" | "pglite";
  /**
   * Runs a raw SQL statement and returns its rows, whatever the driver. With `settings`, under
   * those planner settings and no others (PostgreSQL: on a connection opened with them; PGlite:
   * SET LOCAL in a transaction of its own): for a statement whose right plan must not depend
   * on how fresh the statistics are.
   */
  rows<T extends Record<string, unknown>>(query: SQL, settings?: PlannerSettings): Promise<T[]>;
  /** Applies pending migrations (safe when several processes start together). */
  migrate(): Promise<void>;
  /** True when the database answers and every migration is applied. */
  ready(): Promise<boolean>;
  listen(channel: string, onPayload: (payload: string) => void): Promise<() => Promise<void>>;
  notify(channel: string, payload: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * Planner settings for one statement, e.g. `{ enable_bitmapscan: "off" }`. On PostgreSQL
 * `plan_cache_mode: "force_generic_plan"` plans a prepared statement once per connection: only
 * for a statement whose plan cannot depend on its values (PGlite ignores it: nothing is prepared).
 */
export type PlannerSettings = Readonly<Partial<Record<`enable_${string}`, "on" | "off">> & { plan_cache_mode?: "force_generic_plan" }>;

/** PGlite's `rows`: `run` executes one query on the database or a transaction. */
function rowsWith<T>(db: Db, run: (on: Db | Tx, query: SQL) => Promise<T[]>) {
  return (query: SQL, settings?: PlannerSettings) =>
    settings
      ? db.transaction(async (tx) => {
          // All of them in one statement: one round trip, however many there are.
          const sets = Object.entries(settings)
            .filter(([name]) => name !== "plan_cache_mode")
            .map(([name, value]) => sql`set_config(${name}, ${value}, true)`);
          if (sets.length) await tx.execute(sql`select ${sql.join(sets, sql`, `)}`);
          return run(tx, query);
        })
      : run(db, query);
}

/** Opens the store described by `opts`. Nothing is migrated until `migrate()`. */
export async function openStore(opts: StoreOptions): Promise<Store> {
  return opts.url ? openPostgres(opts.url, opts) : openPglite(opts);
}

async function openPostgres(url: string, opts: StoreOptions): Promise<Store> {
  const poolSize = opts.poolSize ?? 10;
  // The query builder's client: its named statements (messages/insert.ts, keys/keys.ts) may go
  // generic after five runs, as PostgreSQL decides: that saves the API a plan per request.
  const client = postgres(url, { max: poolSize, onnotice: () => {} });
  const db = drizzlePostgres(client, { schema }) as unknown as Db;
  // `rows` keeps its statements prepared too (below), on connections of its own where each
  // execution is still planned for its own parameter values (force_custom_plan), as an unnamed
  // statement would be: a generic plan chosen after five runs must never decide how a claim or
  // an outcome batch walks the queue.
  // A tuned pool does not ask for the array types at connect (fetch_types): under
  // enable_seqscan=off postgres.js's catalog query took PostgreSQL 170 ms instead of 1 ms per
  // connection, and no statement run with settings returns an array column.
  const connect = (max: number, settings: PlannerSettings = {}) => {
    const tuned = Object.keys(settings).length > 0;
    const pool = postgres(url, { max, onnotice: () => {}, fetch_types: !tuned, connection: { plan_cache_mode: "force_custom_plan", ...settings } });
    drizzlePostgres(pool); // the same result parsers as the query builder's client (timestamps as text)
    return pool;
  };
  const raw = connect(Math.max(2, Math.ceil(poolSize / 2)));
  const dialect = new PgDialect();
  // Statements under planner settings run on small pools of their own whose connections were
  // opened with those settings: no transaction and no SET round trips around each of them.
  const tuned = new Map<string, postgres.Sql>();
  const clientFor = (settings?: PlannerSettings): postgres.Sql => {
    const entries = Object.entries(settings ?? {}).sort(([a], [b]) => a.localeCompare(b));
    if (entries.length === 0) return raw;
    const key = JSON.stringify(entries);
    let pool = tuned.get(key);
    if (!pool) {
      pool = connect(2, Object.fromEntries(entries) as PlannerSettings);
      tuned.set(key, pool);
    }
    return pool;
  };
  // Prepared (named, per connection): postgres.js sends an unnamed statement with parameters
  // as Parse+Describe, waits for the parameter types, then Bind+Execute — two round trips and
  // a parse every time. Prepared, a repeat is one Bind+Execute. Every `rows` statement has a
  // fixed text (arrays travel as one parameter, db/arrays.ts), so the cache stays small.
  const rows = (async (query: SQL, settings?: PlannerSettings) => {
    const { sql: text, params } = dialect.sqlToQuery(query);
    return clientFor(settings).unsafe(text, params as postgres.ParameterOrJSON<never>[], { prepare: true });
  }) as <T>(query: SQL, settings?: PlannerSettings) => Promise<T[]>;
  const migrationsSchema = "drizzle";
  return {
    db,
    kind: "postgres",
    rows,
    migrate: async () => {
      // A dedicated single connection holds the advisory lock for the whole run (CONVENTIONS.md #9).
      const one = postgres(url, { max: 1, onnotice: () => {} });
      try {
        await one`select pg_advisory_lock(7362110)`;
        await applyMigrations(drizzlePostgres(one) as unknown as Db, "postgres", migrationsSchema);
        await one`select pg_advisory_unlock(7362110)`;
      } finally {
        await one.end({ timeout: 5 });
      }
    },
    ready: async () => {
      try {
        return !(await migrationsPending(rows, migrationsSchema));
      } catch {
        return false;
      }
    },
    listen: async (channel, onPayload) => {
      const sub = await client.listen(channel, onPayload);
      return async () => sub.unlisten();
    },
    notify: async (channel, payload) => {
      await client.notify(channel, payload);
    },
    close: async () => {
      await Promise.all([client, raw, ...tuned.values()].map((c) => c.end({ timeout: 5 })));
    },
  };
}

async function openPglite(opts: StoreOptions): Promise<Store> {
  let dir: string | undefined;
  let unlock = () => {};
  if (opts.dataDir) {
    dir = path.resolve(opts.dataDir, "pgdata");
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    unlock = lockDataDir(path.resolve(opts.dataDir));
    privateFiles(path.resolve(opts.dataDir));
  }
  let client: PGlite;
  try {
    client = dir ? new PGlite(dir) : new PGlite();
    await client.waitReady;
  } catch (err) {
    unlock();
    throw err;
  }
  const db = drizzlePglite(client, { schema }) as unknown as Db;
  const rows = rowsWith(db, async (on, query) => ((await on.execute(query)) as unknown as { rows: never[] }).rows) as <T>(query: SQL, settings?: PlannerSettings) => Promise<T[]>;
  return {
    db,
    kind: "pglite",
    rows,
    migrate: async () => applyMigrations(db, "pglite", "drizzle"),
    ready: async () => {
      try {
        return !(await migrationsPending(rows, "drizzle"));
      } catch {
        return false;
      }
    },
    listen: async (channel, onPayload) => {
      const unlisten = await client.listen(channel, onPayload);
      return async () => unlisten();
    },
    notify: async (channel, payload) => {
      await client.query("select pg_notify($1, $2)", [channel, payload]);
    },
    close: async () => {
      await client.close();
      if (opts.dataDir) privateFiles(path.resolve(opts.dataDir)); // PostgreSQL writes some (pg_internal.init) 0666
      unlock();
    },
  };
}

/**
 * One process at a time on an embedded database: PGlite has no locking of its own, and two
 * processes on one DATA_DIR each kept their own copy of the data (one's writes were lost at the
 * next start). A lock file holds the owner's pid; one left by a process that died is taken over.
 * Returns the release.
 */
const lockedHere = new Set<string>();

function lockDataDir(dataDir: string): () => void {
  const file = path.join(dataDir, "pgdata.lock");
  for (let tries = 0; tries < 2; tries++) {
    try {
      if (lockedHere.has(file)) throw Object.assign(new Error("locked"), { code: "EEXIST" });
      fs.writeFileSync(file, `${process.pid}\n`, { flag: "wx", mode: 0o600 });
      lockedHere.add(file);
      return () => {
        lockedHere.delete(file);
        fs.rmSync(file, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const pid = Number(fs.readFileSync(file, "utf8").trim());
      // Our own pid is a lock of this process only if we took it (in a container every start
      // is pid 1, and one killed leaves its lock behind).
      const mine = pid === process.pid;
      if ((mine && lockedHere.has(file)) || (!mine && Number.isInteger(pid) && pid > 0 && alive(pid)))
        throw new Error(`DATA_DIR ${dataDir} is in use by process ${pid} (the embedded database serves one process; set DATABASE_URL for several)`);
      fs.rmSync(file, { force: true }); // left by a process that is gone
    }
  }
  throw new Error(`DATA_DIR ${dataDir}: could not take ${file}`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM"; // exists, owned by someone else
  }
}

/**
 * The embedded database's files hold message bodies, sealed keys and key hashes: readable by
 * this user only. The directories are 0700 (that alone keeps others out); new files get 0600
 * from the umask, and files that came out looser (an earlier version's, or some PostgreSQL
 * writes itself) are corrected at start and at close. Best effort where we do not own them.
 */
function privateFiles(dataDir: string): void {
  process.umask(0o077);
  const fix = (p: string, mode: number) => {
    try {
      if ((fs.statSync(p).mode & 0o077) !== 0) fs.chmodSync(p, mode);
    } catch {
      // not ours to change
    }
  };
  fix(dataDir, 0o700);
  const walk = (d: string) => {
    fix(d, 0o700);
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) fix(p, 0o600);
    }
  };
  walk(path.join(dataDir, "pgdata"));
}
