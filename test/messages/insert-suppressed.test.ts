/**
 * Submit-time suppression inside the insert statements (src/messages/insert-sql.ts): a recipient
 * on the account's suppression list is stored `suppressed`, never due, with its email.suppressed
 * event, in the same statement as the message — on the grouped path and on the path that claims
 * an Idempotency-Key — and only for the account whose list holds it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { and, eq, inArray } from "drizzle-orm";
import { createAccount } from "../../src/accounts/accounts.js";
import { events, idempotencyKeys, messages, recipients } from "../../src/db/schema.js";
import { newId } from "../../src/lib/ids.js";
import { insertMessage, type MessageRow, type RecipientRow } from "../../src/messages/insert.js";
import { addSuppression } from "../../src/suppressions/suppressions.js";
import { testStore } from "../helpers/store.js";

let store: Awaited<ReturnType<typeof testStore>>;
let accountId: string;
let otherAccountId: string;
beforeAll(async () => {
  store = await testStore();
  accountId = (await createAccount(store.db, "suppressed inserts")).id;
  otherAccountId = (await createAccount(store.db, "someone else")).id;
  await addSuppression(store, { accountId, email: "Gone@Example.org", reason: "hard_bounce" });
  await addSuppression(store, { accountId, email: "left@example.org", reason: "unsubscribe" });
});
afterAll(() => store.close());

function message(emails: string[], account = accountId): { m: MessageRow; rcpts: RecipientRow[] } {
  const now = new Date();
  const m: MessageRow = {
    id: newId("message"),
    accountId: account,
    messageId: `<${newId("message")}@example.com>`,
    mailFrom: "a@example.com",
    fromHeader: "a@example.com",
    subject: "s",
    addresses: { to: emails, cc: [], bcc: [], reply_to: [] },
    tags: { campaign: "c1" },
    raw: Buffer.from("Subject: s\r\n\r\nbody\r\n"),
    smtputf8: false,
    scheduledAt: null,
    createdAt: now,
  };
  const rcpts = emails.map((email) => ({ id: newId("recipient"), email, emailKey: email.toLowerCase(), domain: "example.org", kind: "to" as const, nextAttemptAt: now }));
  return { m, rcpts };
}

const stored = (messageId: string) => store.db.select().from(recipients).where(eq(recipients.messageId, messageId));

describe("insertMessage with the suppression list", () => {
  it("stores a suppressed address as suppressed with no next attempt, and the others queued", async () => {
    const { m, rcpts } = message(["ok@example.org", "GONE@example.org"]);
    const r = await insertMessage(store, m, rcpts);
    expect(r!.status).toBe("queued");
    expect(Object.fromEntries(r!.recipients)).toEqual({ [rcpts[0]!.id]: "queued", [rcpts[1]!.id]: "suppressed" });
    const rows = Object.fromEntries((await stored(m.id)).map((x) => [x.email, x]));
    expect(rows["ok@example.org"]).toMatchObject({ status: "queued" });
    expect(rows["ok@example.org"]!.nextAttemptAt).toBeInstanceOf(Date);
    expect(rows["GONE@example.org"]).toMatchObject({ status: "suppressed", nextAttemptAt: null });
    const ev = await store.db.select().from(events).where(eq(events.messageId, m.id));
    expect(ev).toHaveLength(1);
    expect(ev[0]).toMatchObject({ type: "email.suppressed", recipientId: rcpts[1]!.id, accountId });
    expect(ev[0]!.data).toEqual({
      message: m.id, recipient: rcpts[1]!.id, email: "GONE@example.org", message_id: m.messageId, tags: { campaign: "c1" }, suppression: { reason: "hard_bounce" },
    });
  });

  it("marks a message whose every recipient is suppressed as suppressed", async () => {
    const { m, rcpts } = message(["gone@example.org", "left@example.org"]);
    expect((await insertMessage(store, m, rcpts))!.status).toBe("suppressed");
    const [row] = await store.db.select({ status: messages.status }).from(messages).where(eq(messages.id, m.id));
    expect(row!.status).toBe("suppressed");
    const ev = await store.db.select().from(events).where(eq(events.messageId, m.id));
    expect(ev.map((e) => (e.data as { suppression: { reason: string } }).suppression.reason).sort()).toEqual(["hard_bounce", "unsubscribe"]);
  });

  it("decides each message of a group on its own", async () => {
    const batch = Array.from({ length: 24 }, (_, i) => message(i % 3 === 0 ? ["gone@example.org"] : [`u${i}@example.org`, ...(i % 3 === 1 ? ["left@example.org"] : [])]));
    const results = await Promise.all(batch.map(({ m, rcpts }) => insertMessage(store, m, rcpts)));
    expect(results.map((r) => r!.status)).toEqual(batch.map((_, i) => (i % 3 === 0 ? "suppressed" : "queued")));
    const rows = await store.db.select().from(recipients).where(inArray(recipients.messageId, batch.map((b) => b.m.id)));
    for (const row of rows) expect(row.status).toBe(["gone@example.org", "left@example.org"].includes(row.email) ? "suppressed" : "queued");
  });

  it("does not apply one account's suppression list to another account", async () => {
    const { m, rcpts } = message(["gone@example.org"], otherAccountId);
    expect((await insertMessage(store, m, rcpts))!.status).toBe("queued");
    expect((await stored(m.id))[0]!.status).toBe("queued");
    expect(await store.db.select().from(events).where(eq(events.messageId, m.id))).toEqual([]);
  });

  it("decides the same way when claiming an Idempotency-Key, and stores those states in the replayable response", async () => {
    const { m, rcpts } = message(["ok2@example.org", "gone@example.org"]);
    const claim = { key: "sup-1", requestHash: "h", response: { id: m.id, status: "queued", recipients: [] }, expiredBefore: new Date(Date.now() - 86_400_000) };
    const r = await insertMessage(store, m, rcpts, claim);
    expect(Object.fromEntries(r!.recipients)).toEqual({ [rcpts[0]!.id]: "queued", [rcpts[1]!.id]: "suppressed" });
    expect((await stored(m.id)).find((x) => x.email === "gone@example.org")).toMatchObject({ status: "suppressed", nextAttemptAt: null });
    expect((await store.db.select().from(events).where(eq(events.messageId, m.id))).map((e) => e.type)).toEqual(["email.suppressed"]);
    const [idem] = await store.db.select().from(idempotencyKeys).where(and(eq(idempotencyKeys.accountId, accountId), eq(idempotencyKeys.key, "sup-1")));
    expect(idem!.response).toEqual({
      id: m.id,
      status: "queued",
      recipients: [
        { id: rcpts[0]!.id, email: "ok2@example.org", status: "queued" },
        { id: rcpts[1]!.id, email: "gone@example.org", status: "suppressed" },
      ],
    });
  });

  it("marks an all-suppressed message suppressed on the Idempotency-Key path too", async () => {
    const { m, rcpts } = message(["left@example.org"]);
    const claim = { key: "sup-2", requestHash: "h", response: {}, expiredBefore: new Date(Date.now() - 86_400_000) };
    expect((await insertMessage(store, m, rcpts, claim))!.status).toBe("suppressed");
    const [row] = await store.db.select({ status: messages.status }).from(messages).where(eq(messages.id, m.id));
    expect(row!.status).toBe("suppressed");
  });
});
