import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eq } from "drizzle-orm";
import { attempts, events, messages } from "../../src/db/schema.js";
import { countingStore, engineHarness, type EngineHarness } from "../helpers/engine.js";
import { failingInserts } from "../helpers/store.js";
import { startMailServer } from "../helpers/mail-server.js";
import { scriptedServer, waitUntil } from "../helpers/smtp-servers.js";

let h: EngineHarness;
beforeAll(async () => {
  h = await engineHarness();
});
afterAll(() => h.close());

async function storedRaw(id: string) {
  const [m] = await h.store.db.select({ raw: messages.raw }).from(messages).where(eq(messages.id, id));
  return m!.raw;
}

describe("the delivery engine", () => {
  it("delivers every recipient of one domain in one transaction, byte for byte", async () => {
    const mx = await startMailServer();
    h.publish({ "multi.example": { MX: [{ preference: 10, exchange: "mx.multi.example" }] }, "mx.multi.example": { A: ["127.0.0.1"] } });
    const w = await h.worker({ smtpPort: mx.port });
    const m = await h.send({ to: ["a@multi.example", "b@multi.example"], cc: "c@multi.example" });
    const rows = await h.settle(m.id);
    expect(rows.map((r) => r.status)).toEqual(["delivered", "delivered", "delivered"]);
    expect(mx.received).toHaveLength(1);
    expect(mx.received[0]!.to.sort()).toEqual(["a@multi.example", "b@multi.example", "c@multi.example"]);
    expect(mx.received[0]!.data.equals(await storedRaw(m.id))).toBe(true);
    for (const r of rows) {
      expect(r).toMatchObject({ attempts: 1, lastCode: 250, mx: "mx.multi.example", ip: "127.0.0.1" });
      expect(r.deliveredAt).toBeInstanceOf(Date);
    }
    const ev = await h.store.db.select().from(events).where(eq(events.messageId, m.id));
    expect(ev.map((e) => e.type)).toEqual(["email.delivered", "email.delivered", "email.delivered"]);
    const [msg] = await h.store.db.select().from(messages).where(eq(messages.id, m.id));
    expect(msg!.status).toBe("delivered");
    await w.stop();
    await mx.close();
  });

  it("bounces the one recipient answered 550 and delivers the others", async () => {
    const mx = await startMailServer({ script: { rcpt: (a) => (a.startsWith("gone@") ? { code: 550, text: "5.1.1 No such user" } : undefined) } });
    h.publish({ "mixed.example": { MX: [{ preference: 10, exchange: "mx.mixed.example" }] }, "mx.mixed.example": { A: ["127.0.0.1"] } });
    const w = await h.worker({ smtpPort: mx.port });
    const m = await h.send({ to: ["ok@mixed.example", "gone@mixed.example"] });
    const rows = await h.settle(m.id);
    const by = Object.fromEntries(rows.map((r) => [r.email, r]));
    expect(by["ok@mixed.example"]!.status).toBe("delivered");
    expect(by["gone@mixed.example"]).toMatchObject({ status: "bounced", lastCode: 550, lastEnhanced: "5.1.1" });
    expect(by["gone@mixed.example"]!.lastText).toContain("No such user");
    expect(mx.received[0]!.to).toEqual(["ok@mixed.example"]);
    const bounced = (await h.store.db.select().from(events).where(eq(events.messageId, m.id))).find((e) => e.type === "email.bounced")!;
    expect(bounced.data).toMatchObject({ email: "gone@mixed.example", smtp: { code: 550, enhanced: "5.1.1" }, bounce: { kind: "hard", source: "smtp" } });
    await w.stop();
    await mx.close();
  });

  it("defers on 451 (greylisting) and delivers on the retry", async () => {
    const mx = await startMailServer({ script: { rcpt: (_a, n) => (n === 1 ? { code: 451, text: "4.7.1 Greylisted, try again" } : undefined) } });
    h.publish({ "grey.example": { MX: [{ preference: 10, exchange: "mx.grey.example" }] }, "mx.grey.example": { A: ["127.0.0.1"] } });
    const w = await h.worker({ smtpPort: mx.port });
    const m = await h.send({ to: "user@grey.example" });
    const rows = await h.settle(m.id);
    expect(rows[0]).toMatchObject({ status: "delivered", attempts: 2 });
    expect(mx.received).toHaveLength(1);
    const tries = await h.store.db.select().from(attempts).where(eq(attempts.recipientId, rows[0]!.id));
    expect(tries.map((a) => [a.outcome, a.code]).sort()).toEqual([["deferred", 451], ["delivered", 250]]);
    const types = (await h.store.db.select().from(events).where(eq(events.messageId, m.id))).map((e) => e.type);
    expect(types).toEqual(["email.deferred", "email.delivered"]);
    await w.stop();
    await mx.close();
  });

  it("fails over to the second MX host when the first refuses connections", async () => {
    const mx = await startMailServer({ host: "127.0.0.3" });
    h.publish({
      "failover.example": { MX: [{ preference: 10, exchange: "mx1.failover.example" }, { preference: 20, exchange: "mx2.failover.example" }] },
      "mx1.failover.example": { A: ["127.0.0.2"] }, // nothing listens there
      "mx2.failover.example": { A: ["127.0.0.3"] },
    });
    const w = await h.worker({ smtpPort: mx.port });
    const m = await h.send({ to: "user@failover.example" });
    const rows = await h.settle(m.id);
    expect(rows[0]).toMatchObject({ status: "delivered", mx: "mx2.failover.example", ip: "127.0.0.3", attempts: 1 });
    expect(mx.received).toHaveLength(1);
    await w.stop();
    await mx.close();
  });

  it("uses the domain's own address when it has no MX (implicit MX)", async () => {
    const mx = await startMailServer();
    h.publish({ "implicit.example": { A: ["127.0.0.1"] } });
    const w = await h.worker({ smtpPort: mx.port });
    const m = await h.send({ to: "user@implicit.example" });
    const rows = await h.settle(m.id);
    expect(rows[0]).toMatchObject({ status: "delivered", mx: "implicit.example" });
    await w.stop();
    await mx.close();
  });

  it("fails at once for a null MX, an NXDOMAIN, and a loopback address without the allow-list", async () => {
    const mx = await startMailServer();
    h.publish({
      "nullmx.example": { MX: [{ preference: 0, exchange: "." }], A: ["127.0.0.1"] },
      "guarded.example": { MX: [{ preference: 10, exchange: "mx.guarded.example" }] },
      "mx.guarded.example": { A: ["127.0.0.1"] },
    });
    const w = await h.worker({ smtpPort: mx.port, deliver: { allowNetworks: [] } });
    const a = await h.send({ to: "user@nullmx.example" });
    const b = await h.send({ to: "user@nonexistent.example" });
    const c = await h.send({ to: "user@guarded.example" });
    expect((await h.settle(a.id))[0]).toMatchObject({ status: "failed", lastEnhanced: "5.1.10", attempts: 0 });
    expect((await h.settle(b.id))[0]).toMatchObject({ status: "failed", lastEnhanced: "5.1.2" });
    const guarded = (await h.settle(c.id))[0]!;
    expect(guarded.status).toBe("failed");
    expect(guarded.lastText).toMatch(/127\.0\.0\.1.*loopback/);
    expect(mx.received).toHaveLength(0);
    await w.stop();
    await mx.close();
  });

  it("bounces every recipient when the server answers 552 after DATA", async () => {
    const mx = await startMailServer({ script: { data: () => ({ code: 552, text: "5.3.4 Message too big for policy" }) } });
    h.publish({ "full.example": { MX: [{ preference: 10, exchange: "mx.full.example" }] }, "mx.full.example": { A: ["127.0.0.1"] } });
    const w = await h.worker({ smtpPort: mx.port });
    const m = await h.send({ to: ["a@full.example", "b@full.example"] });
    const rows = await h.settle(m.id);
    expect(rows.map((r) => [r.status, r.lastCode, r.lastEnhanced])).toEqual([
      ["bounced", 552, "5.3.4"],
      ["bounced", 552, "5.3.4"],
    ]);
    await w.stop();
    await mx.close();
  });

  it("defers when the server drops the connection mid-DATA, then delivers exactly once", async () => {
    const mx = await startMailServer({ script: { dropMidData: (n) => n === 1 } });
    h.publish({ "drop.example": { MX: [{ preference: 10, exchange: "mx.drop.example" }] }, "mx.drop.example": { A: ["127.0.0.1"] } });
    const w = await h.worker({ smtpPort: mx.port });
    const m = await h.send({ to: "user@drop.example", text: "x".repeat(200_000) });
    const rows = await h.settle(m.id);
    expect(rows[0]).toMatchObject({ status: "delivered", attempts: 2 });
    expect(mx.received).toHaveLength(1);
    await w.stop();
    await mx.close();
  });

  it("defers a recipient whose server hangs, and still delivers another domain on time", async () => {
    const hung = await startMailServer({ host: "127.0.0.4", script: { hangData: true } });
    const good = await startMailServer({ host: "127.0.0.5", port: hung.port });
    h.publish({
      "hang.example": { MX: [{ preference: 10, exchange: "mx.hang.example" }] },
      "mx.hang.example": { A: ["127.0.0.4"] },
      "quick.example": { MX: [{ preference: 10, exchange: "mx.quick.example" }] },
      "mx.quick.example": { A: ["127.0.0.5"] },
    });
    const w = await h.worker({ smtpPort: hung.port, retry: { schedule: [60_000], lifetimeMs: 600_000 } });
    const slow = await h.send({ to: "user@hang.example" });
    const fast = await h.send({ to: "user@quick.example" });
    const t0 = Date.now();
    expect((await h.settle(fast.id))[0]!.status).toBe("delivered");
    expect(Date.now() - t0).toBeLessThan(1_400); // well inside the hung server's DATA timeout
    const r = (await h.settle(slow.id, ["deferred"]))[0]!;
    expect(r.lastText).toMatch(/no reply to .* within \d+ ms/);
    await w.stop();
    await hung.close();
    await good.close();
  });

  it("still claims and delivers another domain while a hanging domain's backlog waits for its slots", async () => {
    const hung = await startMailServer({ host: "127.0.0.6", script: { hangData: true } });
    const good = await startMailServer({ host: "127.0.0.7", port: hung.port });
    h.publish({
      "stuck.example": { MX: [{ preference: 10, exchange: "mx.stuck.example" }] },
      "mx.stuck.example": { A: ["127.0.0.6"] },
      "free.example": { MX: [{ preference: 10, exchange: "mx.free.example" }] },
      "mx.free.example": { A: ["127.0.0.7"] },
    });
    // Twelve messages for the hanging domain fall due first; 2 slots a domain, 4 in all (room for 8 claimed).
    const slow = [];
    for (let i = 0; i < 12; i++) slow.push(await h.send({ to: `user${i}@stuck.example` }));
    const fast = await h.send({ to: "user@free.example" });
    const t0 = Date.now();
    const w = await h.worker({ smtpPort: hung.port, domainConcurrency: 2, maxConnections: 4, retry: { schedule: [60_000], lifetimeMs: 600_000 } });
    expect((await h.settle(fast.id))[0]!.status).toBe("delivered");
    // Before the first hung transaction times out (1.5 s): the stuck domain's backlog did not hold the room.
    expect(Date.now() - t0).toBeLessThan(1_400);
    expect(good.received.map((m) => m.to)).toEqual([["user@free.example"]]);
    await w.stop(0);
    await hung.close();
    await good.close();
  });

  it("keeps open connections within MAX_CONNECTIONS, idle pooled ones included (the oldest warm one is QUIT first)", async () => {
    // Four destinations at four addresses; two connections allowed. A job's connection stays
    // warm in the pool after it, so the next job to another host must QUIT one before opening.
    const servers: Awaited<ReturnType<typeof startMailServer>>[] = [];
    let peak = 0;
    const connect = () => (peak = Math.max(peak, servers.reduce((n, s) => n + s.open, 0)));
    servers.push(await startMailServer({ host: "127.0.0.21", script: { connect } }));
    for (let i = 2; i <= 4; i++) servers.push(await startMailServer({ host: `127.0.0.2${i}`, port: servers[0]!.port, script: { connect } }));
    for (let i = 1; i <= 4; i++)
      h.publish({ [`cap${i}.example`]: { MX: [{ preference: 10, exchange: `mx.cap${i}.example` }] }, [`mx.cap${i}.example`]: { A: [`127.0.0.2${i}`] } });
    const sent = [];
    for (let i = 1; i <= 4; i++) for (let k = 0; k < 2; k++) sent.push(await h.send({ to: `user${k}@cap${i}.example` }));
    const w = await h.worker({ smtpPort: servers[0]!.port, maxConnections: 2 });
    for (const m of sent) expect((await h.settle(m.id))[0]!.status).toBe("delivered");
    expect(servers.map((s) => s.received.length)).toEqual([2, 2, 2, 2]);
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThanOrEqual(2);
    await w.stop();
    for (const s of servers) await s.close();
  });

  it("writes an outcome again when its first write fails, so the message is not sent a second time", async () => {
    const mx = await startMailServer({ host: "127.0.0.31" });
    h.publish({ "blip.example": { MX: [{ preference: 10, exchange: "mx.blip.example" }] }, "mx.blip.example": { A: ["127.0.0.31"] } });
    // A real failure of the outcome statement, once (PostgreSQL restarting would look the same to the worker).
    const failing = await failingInserts(h.store, "attempts", "once");
    try {
      // A short lease: had the result been dropped, the recipient would be claimed and sent again within ~1.5 s.
      const w = await h.worker({ smtpPort: mx.port, leaseMs: 1_000 });
      const m = await h.send({ to: "user@blip.example" });
      const [r] = await h.settle(m.id);
      expect(r).toMatchObject({ status: "delivered", attempts: 1 });
      expect(await failing.seen()).toBeGreaterThanOrEqual(2); // the first write failed, a later one held
      await w.stop();
      expect(mx.received).toHaveLength(1);
      expect(mx.transactions).toBe(1);
    } finally {
      await failing.heal();
      await mx.close();
    }
  });

  it("keeps an outcome through writes failing for longer than a lease, so a PostgreSQL outage does not send the message twice", async () => {
    const mx = await startMailServer({ host: "127.0.0.33" });
    h.publish({ "outage.example": { MX: [{ preference: 10, exchange: "mx.outage.example" }] }, "mx.outage.example": { A: ["127.0.0.33"] } });
    // Outcome writes fail for the next 2 s (over three leases of 600 ms).
    const failing = await failingInserts(h.store, "attempts", { until: new Date(Date.now() + 2_000) });
    try {
      const w = await h.worker({ smtpPort: mx.port, leaseMs: 600 });
      const m = await h.send({ to: "user@outage.example" });
      expect((await h.settle(m.id, ["delivered"], 20_000))[0]!.attempts).toBe(1);
      await w.stop();
      expect(mx.received).toHaveLength(1);
    } finally {
      await failing.heal();
      await mx.close();
    }
  });

  it("gives a batch up once its outcome writes have failed for ten leases (later outcomes are not held back for ever)", async () => {
    const mx = await startMailServer({ host: "127.0.0.32" });
    h.publish({ "stuck-outcome.example": { MX: [{ preference: 10, exchange: "mx.stuck-outcome.example" }] }, "mx.stuck-outcome.example": { A: ["127.0.0.32"] } });
    // Every outcome write fails (a batch that can never be written, as a bug would make it).
    const failing = await failingInserts(h.store, "attempts", "always");
    try {
      const w = await h.worker({ smtpPort: mx.port, leaseMs: 600 });
      const m = await h.send({ to: "user@stuck-outcome.example" });
      // Dropped after ten leases of failures (6 s), the recipient's lease runs out and it is sent
      // again; kept for ever, the heartbeat would renew that lease and nothing more would happen.
      await waitUntil(() => mx.received.length >= 2, 20_000, "the recipient tried again");
      await failing.heal();
      expect((await h.settle(m.id))[0]!.status).toBe("delivered");
      await w.stop();
    } finally {
      await failing.heal();
      await mx.close();
    }
  });

  it("does not spin while the only due work is for a domain at its cap (a job's end wakes the worker)", async () => {
    const hung = await startMailServer({ host: "127.0.0.8", script: { hangData: true } });
    h.publish({ "busy.example": { MX: [{ preference: 10, exchange: "mx.busy.example" }] }, "mx.busy.example": { A: ["127.0.0.8"] } });
    for (let i = 0; i < 3; i++) await h.send({ to: `user${i}@busy.example` });
    // The worker's statements, counted on the real store.
    const counting = countingStore(h.store);
    const w = await h.worker({ store: counting.store, smtpPort: hung.port, domainConcurrency: 1, maxConnections: 1, pollMs: 1_000, retry: { schedule: [60_000], lifetimeMs: 600_000 } });
    await waitUntil(() => hung.dataSeen >= 1, 3_000, "the first DATA");
    const before = counting.statements;
    await new Promise((r) => setTimeout(r, 600)); // the transaction hangs (DATA timeout 1.5 s)
    // One look at most per poll interval (plus the lease heartbeat), not one every 5 ms (~120).
    expect(counting.statements - before).toBeLessThan(10);
    await w.stop(0);
    await hung.close();
  });

  it("on stop, closes a transaction still running when the grace period ends before giving its lease back (recorded as deferred)", async () => {
    let closed = 0;
    const hung = await startMailServer({ host: "127.0.0.10", script: { hangData: true }, options: { onClose: () => void closed++ } });
    h.publish({ "halt.example": { MX: [{ preference: 10, exchange: "mx.halt.example" }] }, "mx.halt.example": { A: ["127.0.0.10"] } });
    const w = await h.worker({ smtpPort: hung.port, retry: { schedule: [60_000], lifetimeMs: 600_000 } });
    const m = await h.send({ to: "user@halt.example" });
    await waitUntil(() => hung.dataSeen >= 1, 3_000, "the DATA");
    const t0 = Date.now();
    await w.stop(200);
    expect(Date.now() - t0).toBeLessThan(1_300); // well before the hung DATA's own timeout (1.5 s)
    // The connection is gone (the server sees it within moments), not left to finish after the lease went back.
    await waitUntil(() => closed === 1, 400, "the server to see the connection closed");
    const [r] = await h.settle(m.id, ["deferred"], 1_000);
    expect(r).toMatchObject({ status: "deferred", lockedBy: null });
    expect(hung.received).toEqual([]);
    await hung.close();
  });

  it("on stop, never starts a transaction on a connection that was still opening when the grace ended; the recipient goes back due", async () => {
    const seen: string[] = [];
    const srv = await scriptedServer(async (p) => {
      await new Promise((r) => setTimeout(r, 700)); // a slow greeting
      await p.send("220 mx.slowgreet.example ESMTP\r\n");
      for (;;) {
        const line = await p.line();
        if (line === null) return;
        seen.push(line);
        if (line.startsWith("EHLO")) await p.send("250-mx.slowgreet.example\r\n250 PIPELINING\r\n");
        else if (line === "QUIT") return void (await p.send("221 bye\r\n"));
        else await p.send("250 ok\r\n");
      }
    });
    h.publish({ "slowgreet.example": { MX: [{ preference: 10, exchange: "mx.slowgreet.example" }] }, "mx.slowgreet.example": { A: ["127.0.0.1"] } });
    const w = await h.worker({ smtpPort: srv.port, retry: { schedule: [60_000], lifetimeMs: 600_000 } });
    const m = await h.send({ to: "user@slowgreet.example" });
    await waitUntil(() => srv.peers.length >= 1, 3_000, "the connection");
    await w.stop(100); // the grace ends while the greeting is still awaited
    expect(seen.filter((l) => !l.startsWith("EHLO"))).toEqual([]); // no MAIL, no RCPT, no DATA
    const [r] = await h.settle(m.id, ["queued"], 1_000);
    expect(r).toMatchObject({ status: "queued", lockedBy: null, attempts: 0 });
    await srv.close();
  });

  it("holds a scheduled message until its time", async () => {
    const mx = await startMailServer();
    h.publish({ "later.example": { MX: [{ preference: 10, exchange: "mx.later.example" }] }, "mx.later.example": { A: ["127.0.0.1"] } });
    const w = await h.worker({ smtpPort: mx.port });
    const when = new Date(Date.now() + 1_500);
    const m = await h.send({ to: "user@later.example", scheduled_at: when.toISOString() });
    const rows = await h.settle(m.id);
    expect(rows[0]!.status).toBe("delivered");
    expect(rows[0]!.deliveredAt!.getTime()).toBeGreaterThanOrEqual(when.getTime());
    await w.stop();
    await mx.close();
  });

  it("fails a recipient once MAX_QUEUE_LIFETIME has passed since it fell due, a scheduled one counted from its time", async () => {
    const mx = await startMailServer({ script: { rcpt: () => ({ code: 451, text: "4.7.1 try again later" }) } });
    h.publish({ "forever.example": { MX: [{ preference: 10, exchange: "mx.forever.example" }] }, "mx.forever.example": { A: ["127.0.0.1"] } });
    const w = await h.worker({ smtpPort: mx.port, retry: { schedule: [100], lifetimeMs: 700 } });
    const when = new Date(Date.now() + 1_000);
    const now = await h.send({ to: "user@forever.example" });
    const later = await h.send({ to: "other@forever.example", scheduled_at: when.toISOString() });

    const [a] = await h.settle(now.id, ["failed"]);
    expect(a).toMatchObject({ status: "failed", lastEnhanced: "5.4.7", lastCode: 451, lastText: "queue lifetime exceeded; last error: 4.7.1 try again later" });
    expect(a!.attempts).toBeGreaterThanOrEqual(2);
    // Counted from acceptance, the scheduled one would fail at its first try (1 000 ms > 700);
    // counted from its time, it is deferred first and fails once its next try (~100 ms on)
    // would fall more than 700 ms after that time.
    const [b] = await h.settle(later.id, ["failed"]);
    expect(b).toMatchObject({ status: "failed", lastEnhanced: "5.4.7" });
    expect(b!.attempts).toBeGreaterThanOrEqual(2);
    expect(b!.updatedAt.getTime()).toBeGreaterThanOrEqual(when.getTime() + 700 - 110 - 50);
    await w.stop();
    await mx.close();
  });
});
