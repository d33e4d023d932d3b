import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sql } from "drizzle-orm";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { openStore, type Store } from "../../src/db/client.js";
import { testStore, usingPostgres } from "../helpers/store.js";

describe("store.rows with planner settings", () => {
  let store: Store;
  beforeAll(async () => {
    store = await testStore();
  });
  afterAll(async () => {
    await store.close();
  });

  const current = sql`select current_setting('enable_seqscan') as seq, current_setting('enable_hashjoin') as hash`;

  it("runs the statement under every setting given, and only that statement", async () => {
    expect(await store.rows(current, { enable_seqscan: "off", enable_hashjoin: "off" })).toEqual([{ seq: "off", hash: "off" }]);
    // SET LOCAL ends with the statement's transaction: the pool's connections are as before.
    const after = await Promise.all(Array.from({ length: 12 }, () => store.rows(current)));
    expect(after.every((r) => r[0]!.seq === "on" && r[0]!.hash === "on")).toBe(true);
  });

  it("passes a failing statement's error on and leaves no setting behind", async () => {
    await expect(store.rows(sql`select 1 / 0`, { enable_seqscan: "off" })).rejects.toThrow();
    const after = await Promise.all(Array.from({ length: 12 }, () => store.rows(current)));
    expect(after.every((r) => r[0]!.seq === "on")).toBe(true);
  });

  it.runIf(usingPostgres())("plans every raw statement for its own values, and leaves the query builder's statements to PostgreSQL", async () => {
    const mode = sql`select current_setting('plan_cache_mode') as mode`;
    // Run more than five times: a prepared statement may go generic after its fifth execution.
    for (let i = 0; i < 7; i++) expect(await store.rows(mode)).toEqual([{ mode: "force_custom_plan" }]);
    expect(await store.rows(mode, { enable_seqscan: "off" })).toEqual([{ mode: "force_custom_plan" }]);
    expect(await store.db.execute(mode)).toMatchObject([{ mode: "auto" }]);
  });

  it.runIf(usingPostgres())("plans a statement given force_generic_plan once per connection, and it still answers for each value", async () => {
    const q = (n: number) => sql`select current_setting('plan_cache_mode') as mode, ${n}::int * 2 as twice`;
    for (let i = 0; i < 8; i++) expect(await store.rows(q(i), { plan_cache_mode: "force_generic_plan" })).toEqual([{ mode: "force_generic_plan", twice: i * 2 }]);
    // Other statements keep theirs.
    expect(await store.rows(sql`select current_setting('plan_cache_mode') as mode`)).toEqual([{ mode: "force_custom_plan" }]);
  });

  it("accepts plan_cache_mode on its own (PGlite: nothing to set)", async () => {
    expect(await store.rows(sql`select 1 as one`, { plan_cache_mode: "force_generic_plan" })).toEqual([{ one: 1 }]);
  });

  it("returns the same rows when a prepared statement runs again with other values", async () => {
    const q = (n: number) => sql`select ${n}::int + 1 as next, ${String(n)}::text as label`;
    for (let i = 0; i < 8; i++) expect(await store.rows(q(i))).toEqual([{ next: i + 1, label: String(i) }]);
  });
});

describe("the embedded database in DATA_DIR", () => {
  it("serves one process at a time: a second store on the same DATA_DIR is refused with a clear reason, a stale lock is taken over", async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "postline-lock-"));
    try {
      const first = await openStore({ dataDir });
      // The same process counts: two PGlite instances on one directory each keep their own copy.
      await expect(openStore({ dataDir })).rejects.toThrow(/DATA_DIR .* is in use by process \d+ .*DATABASE_URL/);
      await first.close();
      // A lock left by a process that is gone is no obstacle, nor one with our own pid that we
      // did not take (a container restarted: every start is pid 1).
      for (const pid of ["999999999", String(process.pid)]) {
        fs.writeFileSync(path.join(dataDir, "pgdata.lock"), `${pid}\n`);
        await (await openStore({ dataDir })).close();
      }
      expect(fs.existsSync(path.join(dataDir, "pgdata.lock"))).toBe(false);
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it("keeps its files to this user (message bodies, sealed keys): directories 0700, files 0600, also those of an earlier start", async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "postline-perm-"));
    try {
      fs.chmodSync(dataDir, 0o755); // as a Docker volume or a made-by-hand directory may be
      const store = await openStore({ dataDir });
      await store.migrate();
      await store.close();
      // Loosen one file, as an earlier version left them, and start again.
      const some = fs.readdirSync(path.join(dataDir, "pgdata"), { recursive: true, withFileTypes: true }).find((e) => e.isFile())!;
      fs.chmodSync(path.join(some.parentPath ?? (some as unknown as { path: string }).path, some.name), 0o666);
      await (await openStore({ dataDir })).close();
      const open: string[] = [];
      const walk = (d: string) => {
        if ((fs.statSync(d).mode & 0o077) !== 0) open.push(d);
        for (const e of fs.readdirSync(d, { withFileTypes: true })) {
          const p = path.join(d, e.name);
          if (e.isDirectory()) walk(p);
          else if (e.isFile() && (fs.statSync(p).mode & 0o077) !== 0) open.push(p);
        }
      };
      walk(dataDir);
      expect(open).toEqual([]);
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
