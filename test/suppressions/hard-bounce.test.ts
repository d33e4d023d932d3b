/**
 * Synchronous hard bounces feed the suppression list through the real engine: a receiver that
 * answers 550 5.1.1 for one RCPT and 250 for another leaves exactly one suppression (reason
 * hard_bounce, with its source and the reply), written in the outcome statement; the next
 * message to that address is stored `suppressed` and never reaches the receiver. A soft
 * (policy) bounce suppresses nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eq } from "drizzle-orm";
import { events, suppressions } from "../../src/db/schema.js";
import { engineHarness, type EngineHarness } from "../helpers/engine.js";
import { startMailServer } from "../helpers/mail-server.js";
import { scriptedServer } from "../helpers/smtp-servers.js";

let h: EngineHarness;
beforeAll(async () => {
  h = await engineHarness();
});
afterAll(() => h.close());

const listed = () => h.store.db.select().from(suppressions).where(eq(suppressions.accountId, h.accountId));

describe("hard bounces during delivery", () => {
  it("suppresses only the address answered 550 5.1.1, and the next message to it is suppressed", async () => {
    const mx = await startMailServer({ script: { rcpt: (a) => (a.toLowerCase().startsWith("gone@") ? { code: 550, text: "5.1.1 No such user" } : undefined) } });
    h.publish({ "hard.example": { MX: [{ preference: 10, exchange: "mx.hard.example" }] }, "mx.hard.example": { A: ["127.0.0.1"] } });
    const w = await h.worker({ smtpPort: mx.port });
    try {
      const first = await h.send({ to: ["ok@hard.example", "Gone@hard.example"] });
      const rows = await h.settle(first.id);
      const gone = rows.find((r) => r.email === "Gone@hard.example")!;
      expect(gone.status).toBe("bounced");

      const list = await listed();
      expect(list).toHaveLength(1);
      expect(list[0]).toMatchObject({
        emailKey: "gone@hard.example",
        email: "Gone@hard.example",
        reason: "hard_bounce",
        sourceMessageId: first.id,
        sourceRecipientId: gone.id,
      });
      expect(list[0]!.detail).toMatch(/^550 5\.1\.1 .*No such user/);

      const second = await h.send({ to: ["gone@HARD.example"] });
      expect(second.recipients.map((r) => (r as { status?: string }).status)).toEqual(["suppressed"]);
      const ev = await h.store.db.select().from(events).where(eq(events.messageId, second.id));
      expect(ev.map((e) => e.type)).toEqual(["email.suppressed"]);
      // A message that reaches the receiver afterwards proves the worker has looked at the queue since.
      const third = await h.send({ to: ["ok@hard.example"] });
      await h.settle(third.id);
      expect(mx.received.flatMap((m) => m.to)).toEqual(["ok@hard.example", "ok@hard.example"]);
      expect((await h.settle(second.id, ["suppressed"]))[0]!.attempts).toBe(0);
    } finally {
      await w.stop();
      await mx.close();
    }
  });

  it("never suppresses the recipients of a transaction refused as a whole (MAIL FROM or after DATA), whatever its code", async () => {
    // A 550 to MAIL FROM without an enhanced code, and a 550 5.1.1 after DATA: both are about the
    // sender or the message, not a mailbox (useSend #337: one bounce suppressed every recipient).
    const refusesSender = await startMailServer({
      options: { onMailFrom: (_a, _s, cb) => cb(Object.assign(new Error("Sender blocked"), { responseCode: 550 })) },
    });
    const refusesData = await startMailServer({ host: "127.0.0.9", port: refusesSender.port, script: { data: () => ({ code: 550, text: "5.1.1 Rejected" }) } });
    h.publish({
      "mailfrom.example": { MX: [{ preference: 10, exchange: "mx.mailfrom.example" }] }, "mx.mailfrom.example": { A: ["127.0.0.1"] },
      "afterdata.example": { MX: [{ preference: 10, exchange: "mx.afterdata.example" }] }, "mx.afterdata.example": { A: ["127.0.0.9"] },
    });
    const w = await h.worker({ smtpPort: refusesSender.port });
    try {
      for (const domain of ["mailfrom.example", "afterdata.example"]) {
        const m = await h.send({ to: [`a@${domain}`, `b@${domain}`] });
        const rows = await h.settle(m.id);
        expect(rows.map((r) => [r.status, r.lastCode])).toEqual([["bounced", 550], ["bounced", 550]]);
        const ev = await h.store.db.select().from(events).where(eq(events.messageId, m.id));
        expect(ev.map((e) => (e.data as { bounce?: unknown }).bounce)).toEqual([{ kind: "soft", source: "smtp" }, { kind: "soft", source: "smtp" }]);
      }
      expect((await listed()).filter((s) => /@(mailfrom|afterdata)\.example$/.test(s.emailKey))).toEqual([]);
    } finally {
      await w.stop();
      await refusesSender.close();
      await refusesData.close();
    }
  });

  it("keeps a recipient's own RCPT refusal when the DATA command is then refused for the others", async () => {
    // A raw server: 550 5.1.1 to one RCPT, 250 to the other, then 554 to the DATA command itself.
    const srv = await scriptedServer(async (p) => {
      await p.send("220 mx.mixed.example ESMTP\r\n");
      await p.line(); // EHLO
      await p.send("250-mx.mixed.example\r\n250 PIPELINING\r\n");
      for (let i = 0; i < 4; i++) await p.line(); // MAIL, RCPT, RCPT, DATA (one batch)
      await p.send("250 2.1.0 ok\r\n550 5.1.1 No such user\r\n250 2.1.5 ok\r\n554 5.7.1 No data for you\r\n");
      await p.line(); // QUIT, or the close
      await p.send("221 bye\r\n").catch(() => {});
    });
    h.publish({ "mixed.example": { MX: [{ preference: 10, exchange: "mx.mixed.example" }] }, "mx.mixed.example": { A: ["127.0.0.1"] } });
    const w = await h.worker({ smtpPort: srv.port });
    try {
      const m = await h.send({ to: ["unknown@mixed.example", "known@mixed.example"] });
      const rows = await h.settle(m.id);
      expect(Object.fromEntries(rows.map((r) => [r.email, [r.status, r.lastCode, r.lastEnhanced]]))).toEqual({
        "unknown@mixed.example": ["bounced", 550, "5.1.1"],
        "known@mixed.example": ["bounced", 554, "5.7.1"],
      });
      expect((await listed()).filter((s) => s.emailKey.endsWith("@mixed.example")).map((s) => s.emailKey)).toEqual(["unknown@mixed.example"]);
    } finally {
      await w.stop();
      await srv.close();
    }
  });

  it("does not suppress on a soft (policy) bounce", async () => {
    const mx = await startMailServer({ script: { rcpt: () => ({ code: 550, text: "5.7.1 Message refused by policy" }) } });
    h.publish({ "soft.example": { MX: [{ preference: 10, exchange: "mx.soft.example" }] }, "mx.soft.example": { A: ["127.0.0.1"] } });
    const w = await h.worker({ smtpPort: mx.port });
    try {
      const m = await h.send({ to: "user@soft.example" });
      expect((await h.settle(m.id))[0]!.status).toBe("bounced");
      expect((await listed()).map((s) => s.emailKey)).not.toContain("user@soft.example");
    } finally {
      await w.stop();
      await mx.close();
    }
  });
});
