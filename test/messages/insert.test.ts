import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eq, inArray } from "drizzle-orm";
import { createAccount } from "../../src/accounts/accounts.js";
import { messages, recipients } from "../../src/db/schema.js";
import { newId } from "../../src/lib/ids.js";
import { insertMessage, type MessageRow, type RecipientRow } from "../../src/messages/insert.js";
import { testStore } from "../helpers/store.js";

let store: Awaited<ReturnType<typeof testStore>>;
let accountId: string;
beforeAll(async () => {
  store = await testStore();
  accountId = (await createAccount(store.db, "insert test")).id;
});
afterAll(() => store.close());

function message(i: number, over: Partial<MessageRow> = {}): { m: MessageRow; rcpts: RecipientRow[] } {
  const now = new Date();
  const m: MessageRow = {
    id: newId("message"),
    accountId,
    messageId: `<m${i}@example.com>`,
    mailFrom: "a@example.com",
    fromHeader: "A <a@example.com>",
    subject: `Subject "${i}" \\ {with, array} NULL`,
    addresses: { to: [`r${i}@example.org`], cc: [], bcc: [], reply_to: [] },
    tags: { n: String(i) },
    raw: Buffer.from(`Subject: ${i}\r\n\r\nbody ${i} \u00e9\r\n`),
    smtputf8: i % 2 === 0,
    scheduledAt: i % 3 === 0 ? new Date(now.getTime() + 60_000) : null,
    createdAt: now,
    ...over,
  };
  const rcpts: RecipientRow[] = Array.from({ length: (i % 3) + 1 }, (_, k) => ({
    id: newId("recipient"),
    email: `r${i}.${k}@example.org`,
    emailKey: `r${i}.${k}@example.org`,
    domain: "example.org",
    kind: k === 0 ? "to" : "cc",
    nextAttemptAt: now,
  }));
  return { m, rcpts };
}

describe("insertMessage", () => {
  it("stores every one of many concurrent messages exactly, with its own recipients", async () => {
    const batch = Array.from({ length: 30 }, (_, i) => message(i));
    const inserted = await Promise.all(batch.map(({ m, rcpts }) => insertMessage(store, m, rcpts)));
    expect(inserted.map((r) => r?.status)).toEqual(batch.map(() => "queued"));
    inserted.forEach((r, i) => expect([...r!.recipients.keys()].sort()).toEqual(batch[i]!.rcpts.map((x) => x.id).sort()));
    const ids = batch.map(({ m }) => m.id);
    const stored = await store.db.select().from(messages).where(inArray(messages.id, ids));
    const storedRcpts = await store.db.select().from(recipients).where(inArray(recipients.messageId, ids));
    for (const { m, rcpts } of batch) {
      const row = stored.find((r) => r.id === m.id)!;
      expect(row).toMatchObject({ subject: m.subject, tags: m.tags, addresses: m.addresses, smtputf8: m.smtputf8, size: m.raw.length, status: "queued" });
      expect(Buffer.from(row.raw).equals(m.raw)).toBe(true);
      expect(row.scheduledAt?.getTime() ?? null).toBe(m.scheduledAt?.getTime() ?? null);
      const mine = storedRcpts.filter((r) => r.messageId === m.id);
      expect(mine.map((r) => r.id).sort()).toEqual(rcpts.map((r) => r.id).sort());
      expect(mine.every((r) => r.accountId === accountId && r.status === "queued")).toBe(true);
    }
  });

  it("fails only the bad message when messages accepted together are stored together", async () => {
    // Inserts already running make the later ones wait and go as one statement; one of those is bad.
    const batch = Array.from({ length: 20 }, (_, i) => message(100 + i, i === 12 ? { accountId: "acct_does_not_exist" } : {}));
    const outcomes = await Promise.allSettled(batch.map(({ m, rcpts }) => insertMessage(store, m, rcpts)));
    expect(outcomes.map((o) => o.status)).toEqual(batch.map((_, i) => (i === 12 ? "rejected" : "fulfilled")));
    const stored = await store.db.select({ id: messages.id }).from(messages).where(inArray(messages.id, batch.map(({ m }) => m.id)));
    expect(stored.map((r) => r.id).sort()).toEqual(batch.filter((_, i) => i !== 12).map(({ m }) => m.id).sort());
    expect(await store.db.select().from(recipients).where(eq(recipients.messageId, batch[12]!.m.id))).toEqual([]);
  });

  it("stores nothing when the Idempotency-Key is live, and everything when it is new", async () => {
    const claim = { key: "k-1", requestHash: "h", response: { ok: true }, expiredBefore: new Date(Date.now() - 86_400_000) };
    const first = message(200);
    const second = message(201);
    expect((await insertMessage(store, first.m, first.rcpts, claim))?.status).toBe("queued");
    expect(await insertMessage(store, second.m, second.rcpts, claim)).toBeNull();
    const stored = await store.db.select({ id: messages.id }).from(messages).where(inArray(messages.id, [first.m.id, second.m.id]));
    expect(stored.map((r) => r.id)).toEqual([first.m.id]);
  });
});
