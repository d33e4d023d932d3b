import { sql } from "drizzle-orm";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { eventBody } from "../../src/webhooks/events.js";
import { claimDeliveries } from "../../src/webhooks/queue/claim.js";
import { webhookHarness } from "./harness.js";

let h: Awaited<ReturnType<typeof webhookHarness>>;
beforeAll(async () => {
  h = await webhookHarness();
});
afterEach(() => h.reset());
afterAll(() => h?.close());

const claim = (now = new Date()) =>
  claimDeliveries(h.store, { dispatcherId: "d_test", limit: 10, perEndpoint: 10, rooms: new Map(), leaseMs: 60_000, now });

describe("claiming webhook deliveries", () => {
  it("returns the body eventBody builds from the event row, byte for byte, with the event's time", async () => {
    await h.webhook("http://127.0.0.1:9/hooks");
    const data = { email: "bob@example.org", text: 'quote " backslash \\ é \u2028 <tag>', n: 1.5, tags: { b: "2", a: "1" }, none: null };
    const id = await h.emit("email.delivered", data, new Date("2026-01-02T03:04:05.678Z"));
    // Microseconds the JavaScript Date of the row does not hold: both forms drop them.
    await h.store.rows(sql`update events set created_at = '2026-01-02T03:04:05.678999Z' where id = ${id}`);
    const [row] = await h.store.rows<{ data: string }>(sql`select data::text as data from events where id = ${id}`);

    const [d] = await claim();
    expect(d).toMatchObject({ eventId: id, attempts: 0, eventAt: new Date("2026-01-02T03:04:05.678Z") });
    expect(d!.body).toBe(eventBody({ type: "email.delivered", createdAt: new Date("2026-01-02T03:04:05.678Z"), dataJson: row!.data }));
    expect(JSON.parse(d!.body)).toEqual({ type: "email.delivered", created_at: "2026-01-02T03:04:05.678Z", data });
  });

  it("a refill limited to some endpoints leaves the others' due rows unleased", async () => {
    const a = await h.webhook("http://127.0.0.1:9/a");
    const b = await h.webhook("http://127.0.0.1:9/b", ["email.delivered"]);
    // Each event fans out to both endpoints.
    for (let i = 0; i < 3; i++) await h.emit("email.delivered");

    const got = await claimDeliveries(h.store, { dispatcherId: "d_test", limit: 10, perEndpoint: 10, rooms: new Map([[a.id, 2]]), only: [a.id], leaseMs: 60_000, now: new Date() });
    expect(got.map((d) => d.webhookId)).toEqual([a.id, a.id]);
    const leased = (rows: { lockedBy: string | null }[]) => rows.filter((r) => r.lockedBy === "d_test").length;
    expect(leased(await h.deliveries(a.id))).toBe(2);
    expect(leased(await h.deliveries(b.id))).toBe(0);

    // Without `only`, the same claim takes b's rows too.
    const rest = await claim();
    expect(rest.filter((d) => d.webhookId === b.id)).toHaveLength(3);
  });
});
