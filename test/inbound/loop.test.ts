import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { messages, recipients, webhookDeliveries, webhooks } from "../../src/db/schema.js";
import { verpAddress } from "../../src/inbound/verp.js";
import type { SendMessageInput } from "../../src/messages/schemas.js";
import { sendMessage } from "../../src/messages/send.js";
import { DEST, inboundHarness, RETURN_PATH, type InboundHarness } from "./harness.js";
import { arfReport, eximBounce, postfixDsn, qmailBounce } from "./samples.js";

let t: InboundHarness;
beforeAll(async () => {
  t = await inboundHarness();
});
afterAll(() => t.close());

const userUnknown = (email: string) => ({
  email, action: "failed", status: "5.1.1", remoteMta: `mx2.${DEST}`,
  diagnostic: `smtp; 550 5.1.1 <${email}>: Recipient address rejected: User unknown in local recipient table`,
});

async function messageStatus(id: string) {
  return (await t.h.store.db.select({ status: messages.status }).from(messages).where(eq(messages.id, id)))[0]!.status;
}

describe("asynchronous bounces and complaints, end to end", () => {
  it("bounces a delivered recipient, suppresses it and writes email.bounced when a Postfix DSN arrives at its VERP address", async () => {
    await t.h.store.db.insert(webhooks).values({ id: "wh_inbound", accountId: t.h.accountId, url: "https://hooks.example/x", events: ["email.bounced"], secretSealed: "v1.x.y" });
    const m = await t.deliver([`gone@${DEST}`]);
    expect(m.verp).toMatch(new RegExp(`^b\\+[0-9a-z]{26}-[0-9a-z]{16}@${RETURN_PATH.replace(/\./g, "\\.")}$`));
    const dsn = postfixDsn({ to: m.verp, returned: m.returned, recipients: [userUnknown(`gone@${DEST}`)] });
    const x = await t.report(m.verp, dsn);
    expect(x.mail).toMatch(/^250/); // MAIL FROM:<> — the null reverse-path
    expect(x.end).toMatch(/^250 2\.0\.0 Accepted inb_/);

    const rid = m.recipients[0]!.id;
    expect(await t.recipient(rid)).toMatchObject({ status: "bounced", lastCode: 550, lastEnhanced: "5.1.1" });
    expect(await messageStatus(m.id)).toBe("bounced");
    const bounced = (await t.events(m.id)).filter((e) => e.type === "email.bounced");
    expect(bounced).toHaveLength(1);
    expect(bounced[0]!.data).toMatchObject({
      message: m.id, recipient: rid, email: `gone@${DEST}`, message_id: m.messageIdHeader, tags: { campaign: "inbound" },
      smtp: { code: 550, enhanced: "5.1.1", text: expect.stringContaining("User unknown in local recipient table") },
      bounce: { kind: "hard", source: "dsn" },
    });
    const sup = (await t.suppressions(m.accountId)).find((s) => s.emailKey === `gone@${DEST}`);
    expect(sup).toMatchObject({ reason: "hard_bounce", sourceMessageId: m.id, sourceRecipientId: rid });
    expect(sup!.detail).toContain("550 5.1.1");
    // The event is the webhook outbox: the subscribed endpoint has a delivery for it.
    expect(await t.h.store.db.select({ eventId: webhookDeliveries.eventId }).from(webhookDeliveries).where(eq(webhookDeliveries.webhookId, "wh_inbound"))).toEqual([{ eventId: bounced[0]!.id }]);
    const row = (await t.inbound()).find((r) => r.recipientId === rid)!;
    expect(row).toMatchObject({ kind: "dsn", outcome: "bounced", accountId: m.accountId, messageId: m.id, mailFrom: "", rcptTo: m.verp.toLowerCase() });
    expect(row.raw.equals(Buffer.from(dsn, "latin1"))).toBe(true);
    expect(row.detail).toMatchObject({ format: "rfc3464", dsn: { reportingMta: "mx.example.net", returnedMessageId: m.messageIdHeader } });

    // The MTA sends the same DSN again (our 250 got lost): nothing changes.
    expect((await t.report(m.verp, dsn)).end).toMatch(/^250/);
    expect((await t.events(m.id)).filter((e) => e.type === "email.bounced")).toHaveLength(1);
    expect((await t.inbound()).filter((r) => r.recipientId === rid).map((r) => r.outcome).sort()).toEqual(["bounced", "duplicate"]);

    // The next message to that address is not sent (SPEC.md: suppressed at submit time).
    const { result } = await sendMessage(t.h.store, { from: "Sender <sender@example.com>", to: [`gone@${DEST}`], subject: "Again", text: "Hi" } as SendMessageInput, { accountId: m.accountId, maxMessageBytes: 1 << 20 });
    expect(result.recipients[0]).toMatchObject({ email: `gone@${DEST}`, status: "suppressed" });
  });

  it("marks a delivered recipient complained on an ARF abuse report and suppresses it", async () => {
    const m = await t.deliver([`fbl@${DEST}`]);
    const x = await t.report(m.verp, arfReport({ to: m.verp, rcpt: `fbl@${DEST}`, mailFrom: m.verp, returned: m.returned }));
    expect(x.end).toMatch(/^250/);
    const rid = m.recipients[0]!.id;
    expect((await t.recipient(rid)).status).toBe("complained");
    expect(await messageStatus(m.id)).toBe("complained");
    const ev = (await t.events(m.id)).find((e) => e.type === "email.complained")!;
    expect(ev.data).toMatchObject({ recipient: rid, email: `fbl@${DEST}`, message_id: m.messageIdHeader, complaint: { feedback_type: "abuse", user_agent: "ExampleMail-Feedback/2.0", source: "arf" } });
    expect((await t.suppressions(m.accountId)).find((s) => s.emailKey === `fbl@${DEST}`)).toMatchObject({ reason: "complaint", sourceRecipientId: rid });
    expect((await t.inbound()).find((r) => r.recipientId === rid)).toMatchObject({ kind: "arf", outcome: "complained", detail: { arf: { returnedMessageId: m.messageIdHeader } } });
  });

  it("notes a delayed (4.x.x) DSN as email.deferred without changing the recipient, once", async () => {
    const m = await t.deliver([`slow@${DEST}`]);
    const dsn = postfixDsn({
      to: m.verp, returned: m.returned, delayed: true,
      recipients: [{ email: `slow@${DEST}`, action: "delayed", status: "4.4.1", willRetryUntil: "Sat, 5 Dec 2026 06:30:01 +0000 (UTC)", diagnostic: "X-Postfix; connect to mx3.dest.example[192.0.2.3]:25: Connection timed out" }],
    });
    expect((await t.report(m.verp, dsn)).end).toMatch(/^250/);
    expect((await t.report(m.verp, dsn)).end).toMatch(/^250/);
    const rid = m.recipients[0]!.id;
    expect((await t.recipient(rid)).status).toBe("delivered");
    const deferred = (await t.events(m.id)).filter((e) => e.type === "email.deferred");
    expect(deferred).toHaveLength(1);
    expect(deferred[0]!.data).toMatchObject({ source: "dsn", smtp: { code: null, enhanced: "4.4.1" }, will_retry_until: "Sat, 5 Dec 2026 06:30:01 +0000 (UTC)" });
    expect((await t.inbound()).filter((r) => r.recipientId === rid).map((r) => r.outcome).sort()).toEqual(["delayed", "duplicate"]);
    expect(await t.suppressions(m.accountId)).not.toContainEqual(expect.objectContaining({ emailKey: `slow@${DEST}` }));
  });

  it("asks again later (451) for a DSN that beats the recipient's own outcome, and applies it when it comes again", async () => {
    const m = await t.deliver([`early@${DEST}`]);
    const id = m.recipients[0]!.id;
    // The window a fast MTA's DSN can hit: the transaction is done, its outcome not yet recorded.
    await t.h.store.db.update(recipients).set({ status: "sending" }).where(eq(recipients.id, id));
    const dsn = postfixDsn({ to: m.verp, returned: m.returned, recipients: [userUnknown(`early@${DEST}`)] });
    const first = await t.report(m.verp, dsn);
    expect(first.end).toMatch(/^451 4\.3\.0 /);
    expect((await t.recipient(id)).status).toBe("sending");
    await t.h.store.db.update(recipients).set({ status: "delivered" }).where(eq(recipients.id, id));
    // The sender's retry, byte for byte: not taken for a duplicate of the first.
    const again = await t.report(m.verp, dsn);
    expect(again.end).toMatch(/^250 /);
    expect((await t.recipient(id)).status).toBe("bounced");
    expect((await t.events(m.id)).map((e) => e.type)).toEqual(["email.delivered", "email.bounced"]);
    expect((await t.suppressions(m.accountId)).map((s) => s.emailKey)).toContain(`early@${DEST}`);
    const stored = (await t.inbound()).filter((r) => r.messageId === m.id).map((r) => r.outcome);
    expect(stored).toEqual(["early", "bounced"]);
    // A third copy now is a duplicate: nothing twice.
    expect((await t.report(m.verp, dsn)).end).toMatch(/^250 /);
    expect((await t.events(m.id)).map((e) => e.type)).toEqual(["email.delivered", "email.bounced"]);
  });

  it("bounces only the recipient a DSN names when one transaction carried three", async () => {
    const m = await t.deliver([`m1@${DEST}`, `m2@${DEST}`, `m3@${DEST}`]);
    const x = await t.report(m.verp, postfixDsn({ to: m.verp, returned: m.returned, recipients: [userUnknown(`M2@${DEST.toUpperCase()}`)] }));
    expect(x.end).toMatch(/^250/);
    const rows = await t.h.store.db.select().from(recipients).where(eq(recipients.messageId, m.id));
    expect(Object.fromEntries(rows.map((r) => [r.email, r.status]))).toEqual({ [`m1@${DEST}`]: "delivered", [`m2@${DEST}`]: "bounced", [`m3@${DEST}`]: "delivered" });
    expect(await messageStatus(m.id)).toBe("partially_delivered");
    const sup = (await t.suppressions(m.accountId)).map((s) => s.emailKey);
    expect(sup).toContain(`m2@${DEST}`);
    expect(sup).not.toContain(`m1@${DEST}`);
    expect(sup).not.toContain(`m3@${DEST}`);
  });

  it("takes a DSN's bare Status 5.0.0 as the 5.1.1 of the server's reply in Diagnostic-Code: a hard bounce, suppressed", async () => {
    const m = await t.deliver([`x1@${DEST}`]);
    const dsn = postfixDsn({
      to: m.verp, returned: m.returned,
      recipients: [{ email: `x1@${DEST}`, action: "failed", status: "5.0.0", remoteMta: `mx2.${DEST}`, diagnostic: `smtp; 550 5.1.1 <x1@${DEST}>: User unknown` }],
    });
    expect((await t.report(m.verp, dsn)).end).toMatch(/^250/);
    const rid = m.recipients[0]!.id;
    expect(await t.recipient(rid)).toMatchObject({ status: "bounced", lastCode: 550, lastEnhanced: "5.1.1" });
    expect((await t.events(m.id)).find((e) => e.type === "email.bounced")!.data).toMatchObject({ bounce: { kind: "hard", source: "dsn" } });
    expect((await t.suppressions(m.accountId)).find((s) => s.emailKey === `x1@${DEST}`)).toMatchObject({ reason: "hard_bounce", sourceRecipientId: rid });
  });

  it("acts on an Exim bounce for the one address it names, and on a qmail bounce for a single-recipient message", async () => {
    const m = await t.deliver([`e1@${DEST}`, `e2@${DEST}`]);
    expect((await t.report(m.verp, eximBounce({ to: m.verp, failed: `e2@${DEST}`, returned: m.returned }))).end).toMatch(/^250/);
    const rows = await t.h.store.db.select().from(recipients).where(eq(recipients.messageId, m.id));
    expect(Object.fromEntries(rows.map((r) => [r.email, r.status]))).toEqual({ [`e1@${DEST}`]: "delivered", [`e2@${DEST}`]: "bounced" });
    expect((await t.events(m.id)).find((e) => e.type === "email.bounced")!.data).toMatchObject({ email: `e2@${DEST}`, smtp: { code: 550, enhanced: "5.1.1" }, bounce: { kind: "hard", source: "dsn" } });

    const q = await t.deliver([`q1@${DEST}`]);
    expect((await t.report(q.verp, qmailBounce({ to: q.verp, failed: `q1@${DEST}`, returned: q.returned }))).end).toMatch(/^250/);
    expect((await t.recipient(q.recipients[0]!.id)).status).toBe("bounced");
  });

  it("never guesses: a plain bounce naming no address for a two-recipient message changes nothing", async () => {
    const m = await t.deliver([`n1@${DEST}`, `n2@${DEST}`]);
    const vague = "Subject: Undeliverable: Test\r\n\r\nYour message could not be delivered.\r\nRemote server said: 550 5.1.1 mailbox unavailable\r\n";
    expect((await t.report(m.verp, vague)).end).toMatch(/^250/);
    const rows = await t.h.store.db.select().from(recipients).where(eq(recipients.messageId, m.id));
    expect(rows.map((r) => r.status)).toEqual(["delivered", "delivered"]);
    expect((await t.events(m.id)).map((e) => e.type)).toEqual(["email.delivered", "email.delivered"]);
    expect((await t.inbound()).find((r) => r.messageId === m.id)).toMatchObject({ kind: "dsn", outcome: "unmatched" });
  });

  it("never crosses accounts: a DSN on one account's token naming another account's recipient changes nothing", async () => {
    const mine = await t.deliver([`shared@${DEST}`, `mine@${DEST}`]);
    const theirs = await t.deliver([`shared@${DEST}`, `victim@${DEST}`], t.otherAccountId);
    const before = await t.h.store.db.select().from(recipients).where(eq(recipients.messageId, theirs.id));
    expect((await t.report(mine.verp, postfixDsn({ to: mine.verp, returned: mine.returned, recipients: [userUnknown(`victim@${DEST}`)] }))).end).toMatch(/^250/);
    expect(await t.h.store.db.select().from(recipients).where(eq(recipients.messageId, theirs.id))).toEqual(before);
    expect((await t.events(theirs.id)).map((e) => e.type)).toEqual(["email.delivered", "email.delivered"]);
    expect(await t.suppressions(t.otherAccountId)).toEqual([]);
    expect((await t.inbound()).find((r) => r.messageId === mine.id)).toMatchObject({ outcome: "unmatched", accountId: mine.accountId });
    // An address both accounts sent to: only the token's own account is touched.
    expect((await t.report(mine.verp, postfixDsn({ to: mine.verp, returned: mine.returned, recipients: [userUnknown(`shared@${DEST}`)] }))).end).toMatch(/^250/);
    const mineShared = (await t.h.store.db.select().from(recipients).where(eq(recipients.messageId, mine.id))).find((r) => r.email === `shared@${DEST}`)!;
    expect(mineShared.status).toBe("bounced");
    expect(await t.h.store.db.select().from(recipients).where(eq(recipients.messageId, theirs.id))).toEqual(before);
    expect(await t.suppressions(t.otherAccountId)).toEqual([]);
  });

  it("leaves a recipient that was never accepted alone (a DSN for a deferred recipient is ignored)", async () => {
    const m = await t.deliver([`later@${DEST}`]);
    const rid = m.recipients[0]!.id;
    await t.h.store.db.update(recipients).set({ status: "deferred" }).where(eq(recipients.id, rid));
    expect((await t.report(m.verp, postfixDsn({ to: m.verp, returned: m.returned, recipients: [userUnknown(`later@${DEST}`)] }))).end).toMatch(/^250/);
    expect((await t.recipient(rid)).status).toBe("deferred");
    expect((await t.inbound()).find((r) => r.recipientId === rid)).toMatchObject({ outcome: "ignored" });
    expect(await t.suppressions(m.accountId)).not.toContainEqual(expect.objectContaining({ emailKey: `later@${DEST}` }));
  });

  it("unsubscribes through the mailto u+ address (RFC 2369), once", async () => {
    const m = await t.deliver([`unsub@${DEST}`]);
    const rid = m.recipients[0]!.id;
    const u = verpAddress(t.key, rid, RETURN_PATH, "unsubscribe");
    expect((await t.report(u, "Subject: unsubscribe\r\n\r\n", { mailFrom: `unsub@${DEST}` })).end).toMatch(/^250/);
    expect((await t.report(u, "Subject: unsubscribe again\r\n\r\n", { mailFrom: `unsub@${DEST}` })).end).toMatch(/^250/);
    expect((await t.suppressions(m.accountId)).find((s) => s.emailKey === `unsub@${DEST}`)).toMatchObject({ reason: "unsubscribe", detail: "mailto" });
    expect((await t.events(m.id)).filter((e) => e.type === "email.unsubscribed")).toHaveLength(1);
    expect((await t.recipient(rid)).status).toBe("delivered");
    expect((await t.inbound()).filter((r) => r.recipientId === rid).map((r) => [r.kind, r.outcome]).sort()).toEqual([["unsubscribe", "duplicate"], ["unsubscribe", "unsubscribed"]]);
  });
});
