import { describe, expect, it } from "vitest";
import fs from "node:fs";
import path from "node:path";
import { sql } from "drizzle-orm";
import { MIGRATIONS_FOLDER } from "../../src/db/migrate.js";
import { openStore } from "../../src/db/client.js";
import { scratchDatabase, usingPostgres } from "../helpers/store.js";

describe("migrations", () => {
  it("apply once when several processes start together, and report ready", async () => {
    const scratch = usingPostgres() ? await scratchDatabase(process.env.DATABASE_URL!) : undefined;
    const stores = await Promise.all([1, 2, 3].map(() => openStore({ url: scratch?.url })));
    try {
      if (scratch) {
        expect(await stores[0]!.ready()).toBe(false);
        await Promise.all(stores.map((s) => s.migrate())); // three pools on one database, at once
      } else {
        // PGlite is one embedded instance per process: concurrency is not possible, repetition is.
        await stores[0]!.migrate();
        await stores[0]!.migrate();
      }
      expect(await stores[0]!.ready()).toBe(true);
      const [row] = await stores[0]!.rows<{ n: number }>(sql`select count(*)::int as n from drizzle.__drizzle_migrations`);
      const journal = JSON.parse(fs.readFileSync(path.join(MIGRATIONS_FOLDER, "meta/_journal.json"), "utf8"));
      expect(row!.n).toBe(journal.entries.length);
      const tables = await stores[0]!.rows<{ t: string }>(
        sql`select table_name as t from information_schema.tables where table_schema = 'public' order by 1`,
      );
      expect(tables.map((r) => r.t)).toEqual(["accounts", "api_keys", "attempts", "domains", "events", "idempotency_keys", "inbound_messages", "messages", "recipients", "suppressions", "webhook_attempts", "webhook_deliveries", "webhooks"]);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
      await scratch?.drop();
    }
  });
});
