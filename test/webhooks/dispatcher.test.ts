import { eq } from "drizzle-orm";
import { Webhook } from "standardwebhooks";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { webhooks } from "../../src/db/schema.js";
import { failingInserts } from "../helpers/store.js";
import { startReceiver, until, type ReceivedHook, type Receiver } from "../helpers/webhook-receiver.js";
import { webhookHarness } from "./harness.js";

let h: Awaited<ReturnType<typeof webhookHarness>>;
const receivers: Receiver[] = [];
beforeAll(async () => {
  h = await webhookHarness();
});
afterEach(async () => {
  await h.reset();
  await Promise.all(receivers.splice(0).map((r) => r.close()));
});
afterAll(() => h?.close());

const receiver = async (...args: Parameters<typeof startReceiver>) => {
  const r = await startReceiver(...args);
  receivers.push(r);
  return r;
};
const verify = (secret: string, hook: ReceivedHook) => new Webhook(secret).verify(hook.body, hook.headers as Record<string, string>);
const settled = async (webhookId: string, n: number, states = ["succeeded", "failed"]) =>
  until(async () => {
    const rows = await h.deliveries(webhookId);
    return rows.length === n && rows.every((r) => states.includes(r.status)) && rows;
  }, `${n} deliveries of ${webhookId} in ${states.join("/")}`);

/** The endpoint's only delivery once its first try is recorded. */
const firstTry = async (webhookId: string) =>
  until(async () => {
    const [row] = await h.deliveries(webhookId);
    return row?.attempts === 1 && row;
  }, "one try");

describe("the webhook dispatcher", () => {
  it("POSTs each event signed so that standardwebhooks verifies it, and records the 2xx", async () => {
    const rx = await receiver(() => ({ status: 200, body: "got it" }));
    const wh = await h.webhook(`${rx.base}/hooks`, ["email.delivered", "email.bounced"]);
    const d = await h.dispatcher();
    const createdAt = new Date(Date.now() - 1_000);
    const delivered = await h.emit("email.delivered", { message: "msg_1", email: "bob@example.org", tags: { a: "1" } }, createdAt);
    const bounced = await h.emit("email.bounced", { message: "msg_2", bounce: { kind: "hard", source: "smtp" } });
    await h.emit("email.deferred"); // not subscribed: no delivery at all
    d.wake();
    const rows = await settled(wh.id, 2);

    expect(rx.received.map((r) => r.headers["webhook-id"]).sort()).toEqual([delivered, bounced].sort());
    const hook = rx.received.find((r) => r.headers["webhook-id"] === delivered)!;
    expect(verify(wh.secret, hook)).toEqual({ type: "email.delivered", created_at: createdAt.toISOString(), data: { message: "msg_1", email: "bob@example.org", tags: { a: "1" } } });
    expect(hook).toMatchObject({ method: "POST", url: "/hooks", headers: { "content-type": "application/json", "user-agent": expect.stringMatching(/Postline/) } });
    expect(Math.abs(Number(hook.headers["webhook-timestamp"]) - Date.now() / 1000)).toBeLessThan(60);
    for (const r of rx.received) expect(() => verify(wh.secret, r)).not.toThrow();
    // A tampered body fails verification.
    expect(() => verify(wh.secret, { ...hook, body: hook.body.replace("bob@", "eve@") })).toThrow(/signature/i);

    for (const r of rows) {
      expect(r).toMatchObject({ status: "succeeded", attempts: 1, lastStatusCode: 200, lastError: null, lockedBy: null });
      expect(r.deliveredAt).not.toBeNull();
      expect(await h.tries(r.seq)).toMatchObject([{ statusCode: 200, response: "got it", error: null }]);
    }
  });

  it("delivers to a receiver that fails 3 times exactly once with a 2xx, after 4 recorded tries with the same body and webhook-id", async () => {
    let twoXx = 0;
    const rx = await receiver((_req, n) => (n <= 3 ? { status: 500, body: `down ${n}` } : (twoXx++, { status: 204 })));
    const wh = await h.webhook(`${rx.base}/flaky`);
    const d = await h.dispatcher({ retry: { baseMs: 5, lifetimeMs: 3_600_000 } });
    const id = await h.emit();
    d.wake();
    const [row] = await settled(wh.id, 1);

    expect(row).toMatchObject({ status: "succeeded", attempts: 4, lastStatusCode: 204 });
    expect((await h.tries(row!.seq)).map((t) => [t.statusCode, t.response])).toEqual([[500, "down 1"], [500, "down 2"], [500, "down 3"], [204, ""]]);
    expect(twoXx).toBe(1);
    expect(rx.received).toHaveLength(4);
    expect(new Set(rx.received.map((r) => r.body)).size).toBe(1);
    expect(rx.received.map((r) => r.headers["webhook-id"])).toEqual([id, id, id, id]);
    for (const r of rx.received) expect(() => verify(wh.secret, r)).not.toThrow();
  });

  it("records a try again when its first write fails, so the event is not POSTed a second time", async () => {
    const rx = await receiver(() => ({ status: 204 }));
    const wh = await h.webhook(`${rx.base}/blip`);
    // A real failure of the completion statement, once.
    const failing = await failingInserts(h.store, "webhook_attempts", "once");
    try {
      // A short lease: had the try been dropped, the event would be claimed and POSTed again within ~1.5 s.
      const d = await h.dispatcher({ leaseMs: 1_000 });
      await h.emit();
      d.wake();
      const [row] = await settled(wh.id, 1);
      expect(row).toMatchObject({ status: "succeeded", attempts: 1, lastStatusCode: 204 });
      expect(await h.tries(row!.seq)).toHaveLength(1);
      expect(await failing.seen()).toBeGreaterThanOrEqual(2); // the first write failed, a later one held
      await h.reset();
      expect(rx.received).toHaveLength(1);
    } finally {
      await failing.heal();
    }
  });

  it("gives a batch of tries up once its writes have failed for longer than a lease (the event is POSTed again later)", async () => {
    const rx = await receiver(() => ({ status: 204 }));
    const wh = await h.webhook(`${rx.base}/stuck`);
    const failing = await failingInserts(h.store, "webhook_attempts", "always");
    try {
      // Kept for ever, the heartbeat would renew the lease and the event would never go again.
      const d = await h.dispatcher({ leaseMs: 600 });
      await h.emit();
      d.wake();
      await until(() => rx.received.length >= 2, "the event POSTed again");
      await failing.heal();
      const [row] = await settled(wh.id, 1);
      expect(row).toMatchObject({ status: "succeeded", lastStatusCode: 204 });
    } finally {
      await failing.heal();
    }
  });

  it("keeps a hanging endpoint to its own connections when another endpoint shares its host and port", async () => {
    // One server, two endpoints: /hang never answers, /fast answers at once.
    const rx = await receiver((req) => (req.url.startsWith("/hang") ? { status: 200, hang: true } : { status: 204 }));
    const slow = await h.webhook(`${rx.base}/hang`);
    const fast = await h.webhook(`${rx.base}/fast`);
    const d = await h.dispatcher({ concurrency: 2, timeoutMs: 1_500 });
    for (let i = 0; i < 6; i++) await h.emit();
    d.wake();
    // Every one of the fast endpoint's deliveries succeeds on its first try: none waited for a
    // connection the hanging endpoint held until its deadline passed.
    const rows = await settled(fast.id, 6);
    expect(rows.map((r) => [r.status, r.attempts, r.lastStatusCode])).toEqual(Array(6).fill(["succeeded", 1, 204]));
    expect((await h.deliveries(slow.id)).every((r) => r.status !== "succeeded")).toBe(true);
  });

  it("records a 2xx whose body arrives after the deadline as the 2xx it is (not a timeout to POST again)", async () => {
    const rx = await receiver(() => ({ status: 200, body: "ok, eventually", bodyDelayMs: 2_000 }));
    const wh = await h.webhook(`${rx.base}/slow-body`);
    const d = await h.dispatcher({ timeoutMs: 300 });
    await h.emit();
    d.wake();
    const [row] = await settled(wh.id, 1);
    expect(row).toMatchObject({ status: "succeeded", attempts: 1, lastStatusCode: 200 });
    expect(rx.received).toHaveLength(1);
  });

  it("keeps a hanging endpoint to its own slots: its timeouts are recorded and retried while another endpoint's events go through", async () => {
    const hang = await receiver(() => ({ status: 200, hang: true }));
    const fast = await receiver(() => ({ status: 200 }));
    const slow = await h.webhook(`${hang.base}/hang`);
    const quick = await h.webhook(`${fast.base}/fast`);
    const d = await h.dispatcher({ concurrency: 2, timeoutMs: 1_500 });
    for (let i = 0; i < 6; i++) await h.emit();
    d.wake();
    await settled(quick.id, 6, ["succeeded"]);
    // Within the hanging endpoint's first timeout: nothing recorded for it, and only its 2 slots used.
    expect((await h.deliveries(slow.id)).map((r) => r.attempts)).toEqual([0, 0, 0, 0, 0, 0]);
    expect(hang.received).toHaveLength(2);

    // The first two time out and are recorded; each is tried again (a third request arrives).
    await until(() => hang.received.length >= 3, "a timed-out delivery tried again");
    // Tries are recorded in batches, a few milliseconds after the slot is free again.
    const timedOut = await until(async () => {
      const rows = (await h.deliveries(slow.id)).filter((r) => r.attempts > 0);
      return rows.length >= 1 && rows;
    }, "a timed-out try recorded");
    for (const r of timedOut) expect(r).toMatchObject({ status: "pending", lastStatusCode: null, lastError: expect.stringMatching(/timeout/) });
    const tries = await h.tries(timedOut[0]!.seq);
    expect(tries[0]).toMatchObject({ statusCode: null, error: expect.stringMatching(/timeout/) });
    expect(tries[0]!.durationMs).toBeGreaterThanOrEqual(1_400);
  });

  it("does not follow a redirect: the 3xx is a failed try", async () => {
    const rx = await receiver((req) => (req.url === "/old" ? { status: 302, headers: { location: "/new" } } : { status: 200 }));
    const wh = await h.webhook(`${rx.base}/old`);
    const d = await h.dispatcher({ retry: { baseMs: 3_600_000, lifetimeMs: 86_400_000 } });
    await h.emit();
    d.wake();
    const row = await firstTry(wh.id);
    expect(row).toMatchObject({ status: "pending", lastStatusCode: 302, lastError: expect.stringMatching(/redirect/) });
    expect(row.nextAttemptAt!.getTime()).toBeGreaterThan(Date.now() + 2_000_000);
    expect(rx.received.map((r) => r.url)).toEqual(["/old"]);
  });

  it("refuses a private address without the allow list: recorded as an error, never connected", async () => {
    const rx = await receiver();
    const wh = await h.webhook(`${rx.base}/private`);
    const d = await h.dispatcher({ retry: { baseMs: 3_600_000, lifetimeMs: 86_400_000 } }, []);
    await h.emit();
    d.wake();
    const row = await firstTry(wh.id);
    expect(row).toMatchObject({ status: "pending", lastStatusCode: null, lastError: expect.stringMatching(/127\.0\.0\.1 is a loopback address/) });
    expect(rx.connections()).toBe(0);
  });

  it("marks a delivery failed once the retry lifetime since the event has passed", async () => {
    const rx = await receiver(() => ({ status: 503, body: "maintenance" }));
    const wh = await h.webhook(`${rx.base}/old-event`);
    const d = await h.dispatcher({ retry: { baseMs: 30_000, lifetimeMs: 24 * 3_600_000 } });
    await h.emit("email.delivered", {}, new Date(Date.now() - 25 * 3_600_000));
    d.wake();
    const [row] = await settled(wh.id, 1);
    expect(row).toMatchObject({ status: "failed", attempts: 1, lastStatusCode: 503, nextAttemptAt: null, deliveredAt: null, lastError: expect.stringMatching(/lifetime/) });
    expect(await h.tries(row!.seq)).toMatchObject([{ statusCode: 503, response: "maintenance" }]);
  });

  it("sends nothing more to a deleted endpoint", async () => {
    const a = await receiver();
    const b = await receiver();
    const gone = await h.webhook(`${a.base}/a`);
    const kept = await h.webhook(`${b.base}/b`);
    const d = await h.dispatcher();
    await h.emit();
    d.wake();
    await settled(gone.id, 1);
    await settled(kept.id, 1);
    await h.store.db.delete(webhooks).where(eq(webhooks.id, gone.id));
    const second = await h.emit();
    d.wake();
    await until(() => b.received.some((r) => r.headers["webhook-id"] === second), "the kept endpoint's second event");
    expect(a.received).toHaveLength(1);
    expect(await h.deliveries(gone.id)).toEqual([]);
  });

  it("shares the work between dispatchers without sending any event twice", async () => {
    const rx = await receiver();
    const wh = await h.webhook(`${rx.base}/many`);
    const ds = await Promise.all([h.dispatcher({ concurrency: 8 }), h.dispatcher({ concurrency: 8 })]);
    const ids: string[] = [];
    for (let i = 0; i < 300; i++) ids.push(await h.emit());
    ds.forEach((d) => d.wake());
    await settled(wh.id, 300, ["succeeded"]);
    const got = rx.received.map((r) => r.headers["webhook-id"] as string);
    expect(got).toHaveLength(300);
    expect(new Set(got)).toEqual(new Set(ids));
  });

  it("still claims for other endpoints, at least once per poll, while refills of a busy one keep it awake", async () => {
    // A: a slow endpoint with a backlog, refilled again and again. B: one event whose delivery
    // no NOTIFY announces (events inserted here never notify): only a claim for every endpoint
    // finds it, and the loop's poll timer never fires while refills keep waking it.
    const slow = await receiver(() => ({ status: 200, delayMs: 20 }));
    const other = await receiver(() => ({ status: 200 }));
    const a = await h.webhook(`${slow.base}/a`, ["email.delivered"]);
    const b = await h.webhook(`${other.base}/b`, ["email.bounced"]);
    for (let i = 0; i < 400; i++) await h.emit("email.delivered");
    // 2 at a time, ~20 ms each: ~4 s of backlog, and a refill (at 64 left) every ~0.65 s, more
    // often than the 1 s poll.
    await h.dispatcher({ concurrency: 2, pollMs: 1_000 });
    await until(() => slow.received.length >= 20, "the slow endpoint's first tries");
    const t0 = Date.now();
    await h.emit("email.bounced");
    await until(() => other.received.length === 1, "the other endpoint's event", 3_000);
    expect(Date.now() - t0).toBeLessThan(2_500);
    expect(slow.received.length).toBeLessThan(400); // the busy endpoint was still being refilled
    expect((await settled(b.id, 1))[0]!.status).toBe("succeeded");
    void a;
  });
});
