/**
 * Attempt rows have no foreign keys (migration 0005); triggers on their parents delete them as
 * ON DELETE CASCADE did. Deleting a message or a webhook must take its attempts along and leave
 * everyone else's alone.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eq, sql } from "drizzle-orm";
import type { Store } from "../../src/db/client.js";
import * as t from "../../src/db/schema.js";
import { testStore } from "../helpers/store.js";

describe("attempts without foreign keys", () => {
  let store: Store;
  beforeAll(async () => {
    store = await testStore();
    await store.db.insert(t.accounts).values({ id: "acct_a", name: "a" });
  });
  afterAll(async () => {
    await store.close();
  });

  const message = async (id: string) => {
    await store.db.insert(t.messages).values({
      id,
      accountId: "acct_a",
      messageId: `<${id}@example.com>`,
      mailFrom: "a@example.com",
      fromHeader: "a@example.com",
      subject: "s",
      addresses: { to: [], cc: [], bcc: [], reply_to: [] },
      raw: Buffer.from("x"),
      size: 1,
      status: "delivered",
    });
    for (const n of [1, 2]) {
      const rid = `rcpt_${id}_${n}`;
      await store.db.insert(t.recipients).values({ id: rid, messageId: id, accountId: "acct_a", email: `u${n}@example.org`, emailKey: `u${n}@example.org`, domain: "example.org", kind: "to", status: "delivered" });
      await store.db.insert(t.attempts).values({ id: `att_${rid}`, recipientId: rid, messageId: id, accountId: "acct_a", startedAt: new Date(), durationMs: 1, outcome: "delivered" });
    }
  };
  const attemptsOf = async (messageId: string) => (await store.db.select().from(t.attempts).where(eq(t.attempts.messageId, messageId))).length;

  it("deletes a deleted message's attempts with its recipients, and no other message's", async () => {
    await message("msg_gone");
    await message("msg_kept");
    expect([await attemptsOf("msg_gone"), await attemptsOf("msg_kept")]).toEqual([2, 2]);
    await store.db.delete(t.messages).where(eq(t.messages.id, "msg_gone"));
    expect([await attemptsOf("msg_gone"), await attemptsOf("msg_kept")]).toEqual([0, 2]);
  });

  it("deletes a deleted webhook's delivery attempts, and no other webhook's", async () => {
    for (const id of ["wh_gone", "wh_kept"]) {
      await store.db.insert(t.webhooks).values({ id, accountId: "acct_a", url: "https://example.com/h", events: ["email.delivered"], secretSealed: "x" });
      const [d] = await store.db
        .insert(t.webhookDeliveries)
        .values({ webhookId: id, accountId: "acct_a", eventId: `evt_${id}`, eventType: "email.delivered" })
        .returning({ seq: t.webhookDeliveries.seq });
      await store.db.insert(t.webhookAttempts).values([1, 2].map(() => ({ deliverySeq: d!.seq, startedAt: new Date(), durationMs: 1, statusCode: 500 })));
    }
    const count = async () =>
      store.rows<{ webhook_id: string; n: number }>(sql`
        select d.webhook_id, count(*)::int as n from webhook_attempts a join webhook_deliveries d on d.seq = a.delivery_seq
        group by d.webhook_id order by d.webhook_id`);
    expect(await count()).toEqual([{ webhook_id: "wh_gone", n: 2 }, { webhook_id: "wh_kept", n: 2 }]);
    await store.db.delete(t.webhooks).where(eq(t.webhooks.id, "wh_gone"));
    expect(await count()).toEqual([{ webhook_id: "wh_kept", n: 2 }]);
    // Nothing is left behind that no delivery owns.
    const [orphans] = await store.rows<{ n: number }>(sql`
      select count(*)::int as n from webhook_attempts a where not exists (select 1 from webhook_deliveries d where d.seq = a.delivery_seq)`);
    expect(orphans!.n).toBe(0);
  });
});
