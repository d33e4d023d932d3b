import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eq, inArray } from "drizzle-orm";
import { createAccount } from "../../src/accounts/accounts.js";
import { attempts, events, messages, recipients } from "../../src/db/schema.js";
import { claimDue } from "../../src/delivery/queue/claim.js";
import { recordOutcomes, type FinishedTry } from "../../src/delivery/queue/complete.js";
import { reapExpiredLeases, releaseLeases } from "../../src/delivery/queue/lease.js";
import { sendMessage } from "../../src/messages/send.js";
import type { Store } from "../../src/db/client.js";
import { testStore, usingPostgres } from "../helpers/store.js";

let store: Store;
let accountId: string;
const T0 = new Date("2026-11-23T10:00:00Z");

beforeAll(async () => {
  store = await testStore();
  accountId = (await createAccount(store.db, "queue")).id;
});
afterAll(() => store.close());

async function send(to: string[], now = T0) {
  return (await sendMessage(store, { from: "a@example.com", to, subject: "s", text: "t" }, { accountId, maxMessageBytes: 1e6, now })).result;
}

const finished = (r: { id: string; message_id: string; email: string; lease: string }, status: FinishedTry["status"], code: number | null): FinishedTry => ({
  recipientId: r.id,
  lease: r.lease,
  messageId: r.message_id,
  accountId,
  email: r.email,
  messageIdHeader: "<x@example.com>",
  tags: {},
  status,
  reason: { code, enhanced: code ? `${String(code)[0]}.0.0` : null, text: `reply ${code}` },
  nextAttemptAt: status === "deferred" ? new Date(T0.getTime() + 60_000) : null,
  attempted: true,
  attempt: { startedAt: T0, durationMs: 12, mx: "mx.example.org", ip: "192.0.2.1", tls: null },
});

/** Reaps until some lease has expired on the database's clock (bounded); the number reaped. */
async function reapedWithin(ms: number): Promise<number> {
  const deadline = Date.now() + ms;
  for (;;) {
    const n = await reapExpiredLeases(store, T0);
    if (n > 0 || Date.now() > deadline) return n;
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("the delivery queue", () => {
  it("claims every due recipient of a message at one domain together, leased to one worker", async () => {
    const m = await send(["a@one.example", "b@one.example", "c@two.example"]);
    const claimed = await claimDue(store, { workerId: "w1", limit: 1, leaseMs: 60_000, skipDomains: [], now: T0 });
    // limit 1 picks one recipient; the group widens to the others of its (message, domain).
    const domains = new Set(claimed.map((r) => r.domain));
    expect(domains.size).toBe(1);
    expect(claimed.length).toBe(domains.has("one.example") ? 2 : 1);
    const rows = await store.db.select().from(recipients).where(eq(recipients.messageId, m.id));
    for (const r of rows.filter((r) => claimed.some((c) => c.id === r.id))) {
      expect(r.status).toBe("sending");
      expect(r.lockedBy).toMatch(/^w1\.\d+$/); // the lease token: worker and claim
    }
    const rest = await claimDue(store, { workerId: "w2", limit: 10, leaseMs: 60_000, skipDomains: [], now: T0 });
    expect(rest.map((r) => r.id).sort()).toEqual(rows.filter((r) => !claimed.some((c) => c.id === r.id)).map((r) => r.id).sort());
    await releaseLeases(store, "w1", claimed.map((r) => r.id), T0);
    await releaseLeases(store, "w2", rest.map((r) => r.id), T0);
  });

  it("holds scheduled recipients and skips domains at their concurrency limit", async () => {
    const later = new Date(T0.getTime() + 3_600_000);
    await sendMessage(store, { from: "a@example.com", to: ["s@sched.example"], subject: "s", text: "t", scheduled_at: later.toISOString() }, { accountId, maxMessageBytes: 1e6, now: T0 });
    const now = await claimDue(store, { workerId: "w3", limit: 100, leaseMs: 60_000, skipDomains: ["one.example"], now: T0 });
    expect(now.some((r) => r.domain === "sched.example")).toBe(false);
    expect(now.some((r) => r.domain === "one.example")).toBe(false);
    await releaseLeases(store, "w3", now.map((r) => r.id), T0);
    const due = await claimDue(store, { workerId: "w3", limit: 100, leaseMs: 60_000, skipDomains: [], now: later });
    expect(due.some((r) => r.domain === "sched.example")).toBe(true);
    await releaseLeases(store, "w3", due.map((r) => r.id), T0);
  });

  it("records outcomes with attempts, events and the message summary in one go, only for the lease holder", async () => {
    const m = await send(["ok@three.example", "later@three.example", "no@three.example"], T0);
    const claimed = (await claimDue(store, { workerId: "w4", limit: 100, leaseMs: 60_000, skipDomains: [], now: T0 })).filter((r) => r.message_id === m.id);
    expect(claimed).toHaveLength(3);
    const by = (e: string) => claimed.find((r) => r.email === e)!;
    // Another worker cannot write results for recipients it does not hold.
    expect(await recordOutcomes(store, [{ ...finished(by("ok@three.example"), "delivered", 250), lease: "intruder.1" }], T0)).toEqual([by("ok@three.example").id]);
    const lost = await recordOutcomes(store, [
      finished(by("ok@three.example"), "delivered", 250),
      finished(by("later@three.example"), "deferred", 451),
      finished(by("no@three.example"), "bounced", 550),
    ], T0);
    expect(lost).toEqual([]);
    const rows = await store.db.select().from(recipients).where(eq(recipients.messageId, m.id));
    const st = Object.fromEntries(rows.map((r) => [r.email, r]));
    expect(st["ok@three.example"]).toMatchObject({ status: "delivered", attempts: 1, lastCode: 250, mx: "mx.example.org", lockedBy: null });
    expect(st["ok@three.example"]!.deliveredAt).toEqual(T0);
    expect(st["later@three.example"]).toMatchObject({ status: "deferred", attempts: 1, lastCode: 451 });
    expect(st["later@three.example"]!.nextAttemptAt).toEqual(new Date(T0.getTime() + 60_000));
    expect(st["no@three.example"]).toMatchObject({ status: "bounced", lastCode: 550, nextAttemptAt: null });
    const ev = await store.db.select().from(events).where(eq(events.messageId, m.id));
    expect(ev.map((e) => e.type).sort()).toEqual(["email.bounced", "email.deferred", "email.delivered"]);
    expect(ev.find((e) => e.type === "email.bounced")!.data).toMatchObject({ message: m.id, email: "no@three.example", smtp: { code: 550 }, bounce: { source: "smtp" } });
    const at = await store.db.select().from(attempts).where(inArray(attempts.recipientId, rows.map((r) => r.id)));
    expect(at).toHaveLength(3);
    const [msg] = await store.db.select().from(messages).where(eq(messages.id, m.id));
    expect(msg!.status).toBe("deferred");
  });

  it("shows the TLS of the last try that reached a host: a later plain-text try clears it, a try that reached none keeps it", async () => {
    const m = await send(["tls@four.example"], T0);
    const tryOnce = async (attempt: Partial<FinishedTry["attempt"]>, status: FinishedTry["status"], code: number | null) => {
      const [r] = (await claimDue(store, { workerId: "w5", limit: 100, leaseMs: 60_000, skipDomains: [], now: new Date(T0.getTime() + 3_600_000) })).filter((x) => x.message_id === m.id);
      const t = finished(r!, status, code);
      expect(await recordOutcomes(store, [{ ...t, attempt: { ...t.attempt, ...attempt } }], T0)).toEqual([]);
      return (await store.db.select().from(recipients).where(eq(recipients.messageId, m.id)))[0]!;
    };
    expect((await tryOnce({ tls: { version: "TLSv1.3", cipher: "TLS_AES_256_GCM_SHA384" } }, "deferred", 451)).tls).toEqual({ version: "TLSv1.3", cipher: "TLS_AES_256_GCM_SHA384" });
    expect(await tryOnce({ mx: null, ip: null, tls: null }, "deferred", null)).toMatchObject({ mx: "mx.example.org", tls: { version: "TLSv1.3" } });
    expect(await tryOnce({ mx: "mx2.example.org", ip: "192.0.2.2", tls: null }, "delivered", 250)).toMatchObject({ status: "delivered", mx: "mx2.example.org", ip: "192.0.2.2", tls: null });
  });

  it("gives recipients of a dead worker back to the queue once their lease expires", async () => {
    const m = await send(["x@four.example"], T0);
    const claimed = (await claimDue(store, { workerId: "dead", limit: 100, leaseMs: 300, skipDomains: [], now: T0 })).filter((r) => r.message_id === m.id);
    expect(claimed).toHaveLength(1);
    // Leases run on the database's clock: not expired yet, then (within a bounded wait) expired.
    expect(await reapExpiredLeases(store, T0)).toBe(0);
    expect(await reapedWithin(2_000)).toBeGreaterThanOrEqual(1);
    const again = await claimDue(store, { workerId: "alive", limit: 100, leaseMs: 1_000, skipDomains: [], now: new Date(T0.getTime() + 2_000) });
    expect(again.map((r) => r.id)).toContain(claimed[0]!.id);
    // The dead worker's late result is refused: the recipient is claimed again.
    expect(await recordOutcomes(store, [finished(claimed[0]!, "delivered", 250)], T0)).toEqual([claimed[0]!.id]);
    await releaseLeases(store, "alive", again.map((r) => r.id), T0);
  });

  it("times leases on the database's clock: a worker whose clock runs an hour ahead reaps no live lease", async () => {
    const m = await send(["skew@six.example"], T0);
    const [c] = (await claimDue(store, { workerId: "behind", limit: 100, leaseMs: 60_000, skipDomains: [], now: T0 })).filter((r) => r.message_id === m.id);
    expect(await reapExpiredLeases(store, new Date(Date.now() + 3_600_000))).toBe(0);
    const [r] = await store.db.select().from(recipients).where(eq(recipients.id, c!.id));
    expect(r).toMatchObject({ status: "sending", lockedBy: c!.lease });
    await releaseLeases(store, "behind", [c!.id], T0);
  });

  it("still writes a stalled worker's result after its lease was reaped, until the recipient is claimed again (no second send)", async () => {
    const m = await send(["late@six.example"], T0);
    const [c] = (await claimDue(store, { workerId: "slow", limit: 100, leaseMs: 1, skipDomains: [], now: T0 })).filter((r) => r.message_id === m.id);
    expect(await reapedWithin(2_000)).toBeGreaterThanOrEqual(1);
    // The transaction had finished: its result is known, so it is written, and nobody sends it again.
    expect(await recordOutcomes(store, [finished(c!, "delivered", 250)], T0)).toEqual([]);
    const [r] = await store.db.select().from(recipients).where(eq(recipients.messageId, m.id));
    expect(r).toMatchObject({ status: "delivered", lockedBy: null, attempts: 1 });
    const again = await claimDue(store, { workerId: "other", limit: 100, leaseMs: 1_000, skipDomains: [], now: new Date(T0.getTime() + 3_000) });
    expect(again.map((x) => x.id)).not.toContain(c!.id);
    await releaseLeases(store, "other", again.map((x) => x.id), T0);
  });

  it("refreshes the message's summary when a reaper or a release gives a recipient back (it stayed 'sending')", async () => {
    const m = await send(["a@seven.example", "b@seven.example"], T0);
    const claimed = (await claimDue(store, { workerId: "w7", limit: 100, leaseMs: 200, skipDomains: [], now: T0 })).filter((r) => r.message_id === m.id);
    const a = claimed.find((r) => r.email === "a@seven.example")!;
    expect(await recordOutcomes(store, [finished(a, "delivered", 250)], T0)).toEqual([]);
    const status = async () => (await store.db.select({ status: messages.status }).from(messages).where(eq(messages.id, m.id)))[0]!.status;
    expect(await status()).toBe("sending");
    await reapedWithin(2_000);
    expect(await status()).toBe("queued");
    // The same through a release (a worker shutting down).
    const n = await send(["c@seven.example", "d@seven.example"], T0);
    const both = (await claimDue(store, { workerId: "w8", limit: 100, leaseMs: 60_000, skipDomains: [], now: new Date(T0.getTime() + 2_000) })).filter((r) => r.message_id === n.id);
    const c = both.find((r) => r.email === "c@seven.example")!;
    const d = both.find((r) => r.email === "d@seven.example")!;
    expect(await recordOutcomes(store, [finished(c, "delivered", 250)], T0)).toEqual([]);
    const statusOf = async (id: string) => (await store.db.select({ status: messages.status }).from(messages).where(eq(messages.id, id)))[0]!.status;
    expect(await statusOf(n.id)).toBe("sending");
    await releaseLeases(store, "w8", [d.id], T0);
    expect(await statusOf(n.id)).toBe("queued");
    const left = await claimDue(store, { workerId: "w9", limit: 100, leaseMs: 60_000, skipDomains: [], now: new Date(T0.getTime() + 3_000) });
    await releaseLeases(store, "w9", left.map((r) => r.id), T0);
  });

  it("writes a result only under the claim it belongs to, when the same worker claimed the recipient again after a reap", async () => {
    const m = await send(["twice@six.example"], T0);
    const [first] = (await claimDue(store, { workerId: "w6", limit: 100, leaseMs: 1, skipDomains: [], now: T0 })).filter((r) => r.message_id === m.id);
    await reapedWithin(2_000);
    const [second] = (await claimDue(store, { workerId: "w6", limit: 100, leaseMs: 60_000, skipDomains: [], now: new Date(T0.getTime() + 2_000) })).filter((r) => r.message_id === m.id);
    expect(second!.id).toBe(first!.id);
    expect(second!.lease).not.toBe(first!.lease);
    // The first claim's stale 451 does not land on the live second claim; the second's 250 does.
    expect(await recordOutcomes(store, [finished(first!, "deferred", 451)], T0)).toEqual([first!.id]);
    expect(await recordOutcomes(store, [finished(second!, "delivered", 250)], T0)).toEqual([]);
    const [r] = await store.db.select().from(recipients).where(eq(recipients.messageId, m.id));
    expect(r).toMatchObject({ status: "delivered", lastCode: 250 });
  });

  it.runIf(usingPostgres())("never hands the same recipient to two workers claiming at once", async () => {
    for (let i = 0; i < 20; i++) await send([`r${i}@five${i % 4}.example`], T0);
    const results = await Promise.all(
      ["a", "b", "c", "d"].map((w) => claimDue(store, { workerId: w, limit: 5, leaseMs: 60_000, skipDomains: [], now: T0 })),
    );
    const ids = results.flat().map((r) => r.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.length).toBeGreaterThan(0);
  });
});
