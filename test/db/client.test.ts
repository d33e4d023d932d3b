import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sql } from "drizzle-orm";
import type { Store } from "../../src/db/client.js";
import { testStore } from "../helpers/store.js";

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
});
