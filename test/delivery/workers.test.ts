import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eq } from "drizzle-orm";
import { openStore, type Store } from "../../src/db/client.js";
import { recipients } from "../../src/db/schema.js";
import { engineHarness, TEST_TIMEOUTS, type EngineHarness } from "../helpers/engine.js";
import { startMailServer } from "../helpers/mail-server.js";
import { runMain } from "../helpers/process.js";
import { usingPostgres } from "../helpers/store.js";

let h: EngineHarness;
beforeAll(async () => {
  h = await engineHarness();
});
afterAll(() => h.close());

async function waitUntil(cond: () => boolean | Promise<boolean>, ms: number, what: string) {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("several workers on one database", () => {
  it("deliver 3 000 recipients exactly once between three workers", async () => {
    const mx = await startMailServer();
    const domains = Array.from({ length: 5 }, (_, i) => `scale${i}.example`);
    for (const d of domains) h.publish({ [d]: { A: ["127.0.0.1"] } });
    // Three workers, each with its own connection pool when on PostgreSQL (as three processes would have).
    const extra: Store[] = [];
    const stores = await Promise.all(
      [0, 1, 2].map(async () => {
        if (!usingPostgres()) return h.store;
        const s = await openStore({ url: (h.store as Store & { url?: string }).url });
        extra.push(s);
        return s;
      }),
    );
    // Test server and workers share one event loop here: modest caps and patient timeouts.
    const workers = await Promise.all(
      stores.map((store) => h.worker({ store, smtpPort: mx.port, maxConnections: 10, deliver: { timeouts: { ...TEST_TIMEOUTS, greeting: 10_000, ehlo: 10_000, mail: 10_000, rcpt: 10_000, dataInit: 10_000, dataDone: 10_000 } } })),
    );
    const ids: string[] = [];
    for (let i = 0; i < 300; i++) {
      const to = Array.from({ length: 10 }, (_, j) => `u${i}-${j}@${domains[j % 5]}`);
      ids.push((await h.send({ to })).id);
    }
    await waitUntil(async () => {
      const rows = await h.store.db.select({ s: recipients.status }).from(recipients).where(eq(recipients.status, "delivered"));
      return rows.length >= 3000;
    }, 60_000, "3000 deliveries");
    const seen = new Map<string, number>();
    for (const t of mx.received) for (const rcpt of t.to) seen.set(rcpt, (seen.get(rcpt) ?? 0) + 1);
    expect(seen.size).toBe(3000);
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
    // One transaction per (message, domain): 300 messages × 5 domains.
    expect(mx.received).toHaveLength(1500);
    await Promise.all(workers.map((w) => w.stop()));
    await Promise.all(extra.map((s) => s.close()));
    await mx.close();
  }, 90_000);

  it.runIf(usingPostgres())("takes over from a worker process killed mid-transaction once its lease expires", async () => {
    const mx = await startMailServer({ script: { hangData: (n) => n === 1 } });
    h.publish({ "killed.example": { MX: [{ preference: 10, exchange: "mx.killed.example" }] }, "mx.killed.example": { A: ["127.0.0.1"] } });
    const m = await h.send({ to: ["a@killed.example", "b@killed.example"] });
    const child = runMain({
      ROLE: "worker",
      DATABASE_URL: (h.store as Store & { url?: string }).url!,
      DNS_SERVERS: h.dns.address,
      SMTP_PORT: String(mx.port),
      DELIVERY_ALLOW_NETWORKS: "127.0.0.0/8",
      DELIVERY_LEASE: "1s",
      LOG_LEVEL: "info",
    });
    await waitUntil(() => mx.dataSeen >= 1, 20_000, "the child worker to reach DATA");
    child.proc.kill("SIGKILL");
    await child.exited();
    const held = await h.store.db.select().from(recipients).where(eq(recipients.messageId, m.id));
    expect(held.every((r) => r.status === "sending")).toBe(true);
    const w = await h.worker({ smtpPort: mx.port, leaseMs: 1_000 });
    const rows = await h.settle(m.id, ["delivered"], 20_000);
    expect(rows.map((r) => r.status)).toEqual(["delivered", "delivered"]);
    expect(mx.received).toHaveLength(1);
    expect(mx.received[0]!.to.sort()).toEqual(["a@killed.example", "b@killed.example"]);
    await w.stop();
    await mx.close();
  }, 60_000);

  it.runIf(usingPostgres())("finishes the transaction in flight on SIGTERM, records it, and exits 0", async () => {
    const mx = await startMailServer({ script: { dataDelayMs: 1_000 } });
    h.publish({ "sigterm.example": { MX: [{ preference: 10, exchange: "mx.sigterm.example" }] }, "mx.sigterm.example": { A: ["127.0.0.1"] } });
    const m = await h.send({ to: "user@sigterm.example" });
    const child = runMain({
      ROLE: "worker",
      DATABASE_URL: (h.store as Store & { url?: string }).url!,
      DNS_SERVERS: h.dns.address,
      SMTP_PORT: String(mx.port),
      DELIVERY_ALLOW_NETWORKS: "127.0.0.0/8",
      LOG_LEVEL: "info",
    });
    await waitUntil(() => mx.dataSeen >= 1, 20_000, "the child worker to reach DATA");
    child.proc.kill("SIGTERM");
    expect(await child.exited()).toBe(0);
    const rows = await h.store.db.select().from(recipients).where(eq(recipients.messageId, m.id));
    expect(rows.map((r) => r.status)).toEqual(["delivered"]);
    expect(mx.received).toHaveLength(1);
    await mx.close();
  }, 60_000);
});
