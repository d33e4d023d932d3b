import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { and, eq } from "drizzle-orm";
import { createAccount } from "../../src/accounts/accounts.js";
import type { Store } from "../../src/db/client.js";
import { events, messages, recipients } from "../../src/db/schema.js";
import { claimDue } from "../../src/delivery/queue/claim.js";
import { releaseLeases } from "../../src/delivery/queue/lease.js";
import { sendMessage } from "../../src/messages/send.js";
import { addSuppression } from "../../src/suppressions/suppressions.js";
import { testStore } from "../helpers/store.js";

let store: Store;
let accountId: string;
let otherAccount: string;
const T0 = new Date("2026-11-23T10:00:00Z");

beforeAll(async () => {
  store = await testStore();
  accountId = (await createAccount(store.db, "claim")).id;
  otherAccount = (await createAccount(store.db, "other")).id;
});
afterAll(() => store.close());

const send = async (to: string[], scheduledAt?: Date) =>
  (await sendMessage(store, { from: "a@example.com", to, subject: "s", text: "t", scheduled_at: scheduledAt?.toISOString() }, { accountId, maxMessageBytes: 1e6, now: T0 })).result;

describe("claiming due recipients against the suppression list", () => {
  it("writes the suppressed event for an address whose key SQL lower() would fold differently (İ)", async () => {
    const at = new Date(T0.getTime() + 7_200_000);
    const m = await send(["İrem@dotted.example"], at);
    await addSuppression(store, { accountId, email: "İrem@dotted.example", reason: "manual" });
    expect(await claimDue(store, { workerId: "w9", limit: 10, leaseMs: 60_000, skipDomains: [], now: at })).toEqual([]);
    const [r] = await store.db.select().from(recipients).where(eq(recipients.messageId, m.id));
    expect(r!.status).toBe("suppressed");
    // The event is the webhook outbox: without it the suppression would never be announced.
    const ev = await store.db.select().from(events).where(and(eq(events.recipientId, r!.id), eq(events.type, "email.suppressed")));
    expect(ev).toHaveLength(1);
  });

  it("suppresses a scheduled recipient whose address was listed after acceptance, and hands out only the others", async () => {
    const at = new Date(T0.getTime() + 3_600_000);
    const m = await send(["Gone@one.example", "stay@one.example"], at);
    expect(m.recipients.map((r) => r.status)).toEqual(["queued", "queued"]);
    // Listed meanwhile (case differs), and the same address in another account changes nothing here.
    await addSuppression(store, { accountId, email: "gone@one.example", reason: "unsubscribe" });
    await addSuppression(store, { accountId: otherAccount, email: "stay@one.example", reason: "manual" });

    const claimed = await claimDue(store, { workerId: "w1", limit: 10, leaseMs: 60_000, skipDomains: [], now: at });
    expect(claimed.map((r) => r.email)).toEqual(["stay@one.example"]);
    const rows = await store.db.select().from(recipients).where(eq(recipients.messageId, m.id));
    const gone = rows.find((r) => r.email === "Gone@one.example")!;
    expect(gone).toMatchObject({ status: "suppressed", nextAttemptAt: null, lockedBy: null });
    expect(rows.find((r) => r.email === "stay@one.example")).toMatchObject({ status: "sending", lockedBy: expect.stringMatching(/^w1\./) });
    const ev = await store.db.select().from(events).where(and(eq(events.recipientId, gone.id), eq(events.type, "email.suppressed")));
    expect(ev).toHaveLength(1);
    expect(ev[0]!.data).toMatchObject({ message: m.id, recipient: gone.id, email: "Gone@one.example", suppression: { reason: "unsubscribe" } });
    await releaseLeases(store, "w1", claimed.map((r) => r.id), at);
    // Nothing is claimed for it again.
    const again = await claimDue(store, { workerId: "w2", limit: 10, leaseMs: 60_000, skipDomains: [], now: at });
    expect(again.map((r) => r.email)).toEqual(["stay@one.example"]);
    await releaseLeases(store, "w2", again.map((r) => r.id), at);
  });

  it("marks the message suppressed when its only recipient was listed before its next try", async () => {
    const at = new Date(T0.getTime() + 7_200_000);
    const m = await send(["only@two.example"], at);
    await addSuppression(store, { accountId, email: "only@two.example", reason: "hard_bounce" });
    const claimed = await claimDue(store, { workerId: "w3", limit: 10, leaseMs: 60_000, skipDomains: [], now: at });
    expect(claimed.filter((r) => r.message_id === m.id)).toEqual([]);
    const [msg] = await store.db.select({ status: messages.status }).from(messages).where(eq(messages.id, m.id));
    expect(msg!.status).toBe("suppressed");
    await releaseLeases(store, "w3", claimed.map((r) => r.id), at);
  });
});
