import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { recipients } from "../../src/db/schema.js";
import { DEST, inboundHarness, RETURN_PATH, type InboundHarness } from "./harness.js";
import { arfReport } from "./samples.js";

// Mailbox providers' feedback loops report to the one address registered with them, not to
// each message's VERP sender: fbl@RETURN_PATH_DOMAIN, matched through the reported message.
let t: InboundHarness;
beforeAll(async () => {
  t = await inboundHarness();
});
afterAll(() => t.close());

const FBL = `fbl@${RETURN_PATH}`;
const status = async (id: string) => (await t.h.store.db.select({ s: recipients.status }).from(recipients).where(eq(recipients.id, id)))[0]!.s;

describe("the feedback-loop address", () => {
  it("marks the recipient complained when the report's Original-Mail-From is its VERP sender", async () => {
    const m = await t.deliver([`fbl-user@${DEST}`]);
    const x = await t.report(FBL, arfReport({ to: FBL, rcpt: `fbl-user@${DEST}`, mailFrom: m.verp, returned: m.returned }), { mailFrom: "fbl@feedback.example.net" });
    expect(x.rcpt[0]).toMatch(/^250/);
    expect(x.end).toMatch(/^250/);
    const rid = m.recipients[0]!.id;
    expect(await status(rid)).toBe("complained");
    expect((await t.suppressions(m.accountId)).find((s) => s.emailKey === `fbl-user@${DEST}`)).toMatchObject({ reason: "complaint" });
    expect((await t.inbound()).find((r) => r.recipientId === rid)).toMatchObject({ kind: "arf", outcome: "complained", rcptTo: FBL });
  });

  it("matches through the reported message's Return-Path when Original-Mail-From is missing", async () => {
    const m = await t.deliver([`rp-user@${DEST}`]);
    const report = arfReport({ to: FBL, rcpt: `rp-user@${DEST}`, mailFrom: "", returned: m.returned }).replace(/^Original-Mail-From: <>\r\n/m, "");
    expect(report).not.toMatch(/Original-Mail-From/);
    expect((await t.report(FBL, report)).end).toMatch(/^250/);
    expect(await status(m.recipients[0]!.id)).toBe("complained");
  });

  it("stores a report whose envelope sender carries no valid token as unmatched and changes nothing", async () => {
    const m = await t.deliver([`kept-user@${DEST}`]);
    const forged = m.verp.replace(/-([0-9a-z])/, (_s, c: string) => `-${c === "a" ? "b" : "a"}`);
    const returned = m.returned.replace(m.verp, forged);
    const x = await t.report(FBL, arfReport({ to: FBL, rcpt: `kept-user@${DEST}`, mailFrom: forged, returned }));
    expect(x.end).toMatch(/^250/);
    expect(await status(m.recipients[0]!.id)).toBe("delivered");
    expect((await t.suppressions(m.accountId)).find((s) => s.emailKey === `kept-user@${DEST}`)).toBeUndefined();
    const stored = (await t.inbound()).filter((r) => r.rcptTo === FBL && r.outcome === "unmatched");
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({ kind: "arf", recipientId: null, accountId: null });
  });

  it("still refuses other local parts on the return-path domain", async () => {
    const x = await t.report(`abuse@${RETURN_PATH}`, "Subject: x\r\n\r\nx\r\n");
    expect(x.rcpt[0]).toMatch(/^550/);
  });
});
