/**
 * Asynchronous outcomes (a DSN's bounce, an ARF complaint) put addresses on the suppression list
 * under the key the recipient has, so the next message to the address is stored suppressed.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eq } from "drizzle-orm";
import { createAccount } from "../../src/accounts/accounts.js";
import type { Store } from "../../src/db/client.js";
import { messages, recipients, suppressions } from "../../src/db/schema.js";
import { recordAsyncOutcome } from "../../src/messages/async-outcome.js";
import { sendMessage } from "../../src/messages/send.js";
import { testStore } from "../helpers/store.js";

let store: Store;
let accountId: string;
beforeAll(async () => {
  store = await testStore();
  accountId = (await createAccount(store.db, "async")).id;
});
afterAll(() => store.close());

const send = async (to: string) => (await sendMessage(store, { from: "a@example.com", to: [to], subject: "s", text: "t" }, { accountId, maxMessageBytes: 1e6 })).result;

describe("recordAsyncOutcome's suppressions", () => {
  it.each(["İrem@dest.example", "Bob@dest.example"])("keys a hard bounce of %s as its recipient is keyed, so the next message to it is suppressed", async (address) => {
    const m = await send(address);
    const id = m.recipients[0]!.id;
    await store.db.update(recipients).set({ status: "delivered" }).where(eq(recipients.id, id));
    const [applied] = await recordAsyncOutcome(store, accountId, m.id, [
      { recipientId: id, to: "bounced", eventType: "email.bounced", reply: { code: 550, enhanced: "5.1.1", text: "user unknown" }, data: {}, suppression: { reason: "hard_bounce", detail: "dsn: 550 5.1.1" } },
    ]);
    expect(applied!.result).toBe("applied");
    const [r] = await store.db.select().from(recipients).where(eq(recipients.id, id));
    const [s] = await store.db.select().from(suppressions).where(eq(suppressions.sourceRecipientId, id));
    expect(s!.emailKey).toBe(r!.emailKey);
    expect((await send(address)).recipients.map((x) => x.status)).toEqual(["suppressed"]);
  });

  it("keeps a message delivered when one of its delivered recipients complains (not partially delivered)", async () => {
    const { result: m } = await sendMessage(store, { from: "a@example.com", to: ["one@dest.example", "two@dest.example"], subject: "s", text: "t" }, { accountId, maxMessageBytes: 1e6 });
    await store.db.update(recipients).set({ status: "delivered" }).where(eq(recipients.messageId, m.id));
    await recordAsyncOutcome(store, accountId, m.id, [{ recipientId: m.recipients[0]!.id, to: "complained", eventType: "email.complained", data: {} }]);
    const [row] = await store.db.select({ status: messages.status }).from(messages).where(eq(messages.id, m.id));
    expect(row!.status).toBe("delivered");
  });
});
