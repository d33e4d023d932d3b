import { randomBytes } from "node:crypto";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inboundMessages, recipients } from "../../src/db/schema.js";
import { startInboundListener } from "../../src/inbound/listener.js";
import { verpAddress } from "../../src/inbound/verp.js";
import { createLogger } from "../../src/lib/logger.js";
import { waitUntil } from "../helpers/smtp-servers.js";
import { DEST, inboundHarness, RETURN_PATH, type Delivered, type InboundHarness } from "./harness.js";
import { postfixDsn } from "./samples.js";
import { connect, smtpSend } from "./smtp-client.js";

const MAX = 10 * 1024 * 1024; // INBOUND_MAX_BYTES' default
let t: InboundHarness;
let m: Delivered;
beforeAll(async () => {
  t = await inboundHarness({ maxBytes: MAX });
  m = await t.deliver([`hostile@${DEST}`]);
});
afterAll(() => t.close());

/** Nothing about the delivered message changed, and the listener still takes a session. */
async function unchanged() {
  expect((await t.recipient(m.recipients[0]!.id)).status).toBe("delivered");
  expect((await t.events(m.id)).map((e) => e.type)).toEqual(["email.delivered"]);
  expect(await t.suppressions(m.accountId)).toEqual([]);
  const probe = await smtpSend(t.listener.port, { rcptTo: [`nobody@${RETURN_PATH}`], data: "" });
  expect(probe.greeting).toMatch(/^220 /);
  expect(probe.rcpt[0]).toMatch(/^550 /);
}
const stored = async () => (await t.inbound()).length;

describe("the inbound listener on hostile input", () => {
  it("offers neither AUTH nor STARTTLS, advertises SIZE, and refuses AUTH", async () => {
    const c = await connect(t.listener.port);
    expect(await c.reply()).toMatch(/^220 /);
    const ehlo = await c.command("EHLO client.test");
    expect(ehlo).toContain(`SIZE ${MAX}`);
    expect(ehlo).not.toMatch(/AUTH|STARTTLS/);
    expect(await c.command("AUTH PLAIN AGFhAGI=")).toMatch(/^5\d\d /);
    expect(await c.command("STARTTLS")).toMatch(/^5\d\d /);
    c.socket.destroy();
  });

  it("refuses mail for another domain with 550 5.7.1 (no relaying)", async () => {
    const before = await stored();
    const x = await smtpSend(t.listener.port, { rcptTo: [`someone@${DEST}`, m.verp.replace(RETURN_PATH, "elsewhere.example")], data: "x" });
    expect(x.rcpt).toEqual([expect.stringMatching(/^550 5\.7\.1 Relaying denied/), expect.stringMatching(/^550 5\.7\.1 /)]);
    expect(x.data).toBeNull();
    expect(await stored()).toBe(before);
    await unchanged();
  });

  it("refuses a forged or tampered token with 550 5.1.1", async () => {
    const before = await stored();
    const forged = verpAddress(randomBytes(32), m.recipients[0]!.id, RETURN_PATH); // right shape, wrong key
    const at = m.verp.indexOf("@");
    const flipped = `${m.verp.slice(0, at - 1)}${m.verp[at - 1] === "a" ? "b" : "a"}${m.verp.slice(at)}`;
    const x = await smtpSend(t.listener.port, { rcptTo: [forged, flipped, `postmaster@${RETURN_PATH}`], data: "x" });
    expect(x.rcpt.every((r) => /^550 5\.1\.1 /.test(r))).toBe(true);
    expect(await stored()).toBe(before);
    await unchanged();
  });

  it("refuses a declared SIZE over the limit at MAIL with 552", async () => {
    const x = await smtpSend(t.listener.port, { rcptTo: [m.verp], mailParams: `SIZE=${50 * 1024 * 1024}`, data: "x" });
    expect(x.mail).toMatch(/^552 /);
    await unchanged();
  });

  it("refuses a 50 MB message with 552 after DATA, stores nothing and keeps answering", async () => {
    const before = await stored();
    const line = `${"x".repeat(998)}\r\n`;
    const body = Buffer.from(`Subject: big\r\n\r\n${line.repeat(Math.ceil((50 * 1024 * 1024) / line.length))}`);
    const x = await smtpSend(t.listener.port, { rcptTo: [m.verp], data: body });
    expect(x.data).toMatch(/^354/);
    expect(x.end).toMatch(/^552 /);
    expect(await stored()).toBe(before);
    await unchanged();
  });

  it("stores a DSN with malformed headers for inspection and changes nothing", async () => {
    const malformed = [
      "From MAILER-DAEMON Tue Dec  1 06:30:02 2026",
      "Subject Undelivered Mail",
      "Content-Type: multipart/report; report-type=delivery-status; boundary=",
      ": no name",
      "\tcontinuation of nothing",
      "",
      "--",
      "Content-Type: message/delivery-status",
      "",
      "Reporting-MTA dns mx.example.net",
      "Final-Recipient: rfc822;",
      "Action: failed",
      `Status: five point one point one <hostile@${DEST}>`,
      "",
    ].join("\r\n");
    const x = await t.report(m.verp, malformed);
    expect(x.end).toMatch(/^250 /);
    const row = (await t.inbound()).find((r) => r.raw.equals(Buffer.from(malformed)))!;
    expect(row).toMatchObject({ kind: "unknown", outcome: "ignored", messageId: m.id });
    await unchanged();
  });

  it("reads a well-formed report whose per-recipient fields are garbage, and acts on none of it", async () => {
    // The container is a proper multipart/report; inside, an Action that is no RFC 3464 value,
    // a Status that is no code, Final-Recipient naming someone else, and a block naming nobody.
    const dsn = postfixDsn({
      to: m.verp, returned: m.returned,
      recipients: [
        { action: "explode", status: "banana", diagnostic: "smtp; 550 5.1.1 <x>" },
        { email: `someone-else@${DEST}`, action: "failed", status: "5.1.1", diagnostic: "smtp; 550 5.1.1 <someone-else>" },
        { email: "not an address at all;;", action: "delayed\u0000", status: "4..4" },
      ],
    });
    const x = await t.report(m.verp, dsn);
    expect(x.end).toMatch(/^250 /);
    const row = (await t.inbound()).find((r) => r.raw.equals(Buffer.from(dsn, "latin1")))!;
    expect(row).toMatchObject({ kind: "dsn", messageId: m.id });
    expect(["ignored", "unmatched"]).toContain(row.outcome);
    await unchanged();
  });

  it("stores binary junk with NUL and bare CR byte for byte as unknown", async () => {
    const junk = Buffer.concat([Buffer.from("Subject: \0junk\r\r\n\r\n"), randomBytes(200_000).map((b) => (b === 0x0a || b === 0x2e ? 0x20 : b)), Buffer.from("\r\n")]);
    const x = await t.report(m.verp, junk);
    expect(x.end).toMatch(/^250 /);
    const id = /inb_[0-9a-z]+/.exec(x.end!)![0];
    const [row] = await t.h.store.db.select().from(inboundMessages).where(eq(inboundMessages.id, id));
    expect(row).toMatchObject({ kind: "unknown", outcome: "ignored", size: junk.length });
    expect(row!.raw.equals(junk)).toBe(true);
    await unchanged();
  });

  it("stores a report for a valid token whose recipient no longer exists as unmatched", async () => {
    const ghost = verpAddress(t.key, "rcpt_01jd2x0c6v8k9m3n4p5q6r7s8t", RETURN_PATH);
    const x = await t.report(ghost, postfixDsn({ to: ghost, returned: m.returned, recipients: [{ email: `hostile@${DEST}`, action: "failed", status: "5.1.1" }] }));
    expect(x.end).toMatch(/^250 /);
    const id = /inb_[0-9a-z]+/.exec(x.end!)![0];
    const [row] = await t.h.store.db.select().from(inboundMessages).where(eq(inboundMessages.id, id));
    expect(row).toMatchObject({ kind: "dsn", outcome: "unmatched", accountId: null, messageId: null });
    expect((await t.h.store.db.select().from(recipients).where(eq(recipients.id, m.recipients[0]!.id)))[0]!.status).toBe("delivered");
    await unchanged();
  });

  it("answers NUL and overlong command lines with errors and keeps the session usable", async () => {
    const c = await connect(t.listener.port);
    await c.reply();
    await c.command("EHLO client.test");
    expect(await c.command("MAIL FROM:<a\0b@x.test>")).toMatch(/^5\d\d /);
    expect(await c.command("MAIL FROM:<>")).toMatch(/^250/);
    expect(await c.command(`RCPT TO:<${m.verp.replace("@", "\0@")}>`)).toMatch(/^5\d\d /);
    expect(await c.command(`RCPT TO:<${"a".repeat(200)}@${RETURN_PATH}>`)).toMatch(/^5\d\d /);
    // A line past smtp-server's 16 KB command limit ends the session with 421.
    expect(await c.command(`RCPT TO:<${"a".repeat(20_000)}@${RETURN_PATH}>`)).toMatch(/^421 /);
    c.socket.destroy();
    await unchanged();
  });

  it("answers a client that disconnects in the middle of DATA and the next one normally", async () => {
    const c = await connect(t.listener.port);
    await c.reply();
    await c.command("EHLO client.test");
    await c.command("MAIL FROM:<>");
    await c.command(`RCPT TO:<${m.verp}>`);
    expect(await c.command("DATA")).toMatch(/^354/);
    c.socket.write("Subject: half\r\n\r\nhalf a mess");
    c.socket.destroy();
    await unchanged();
  });

  it("caps concurrent clients with 421 and closes idle sessions after the socket timeout", async () => {
    const small = await startInboundListener({
      store: t.h.store, logger: createLogger("silent"), host: "127.0.0.1", port: 0, domain: RETURN_PATH, key: t.key,
      maxBytes: MAX, maxClients: 2, socketTimeoutMs: 1_000, closeTimeoutMs: 200,
    });
    try {
      const conns = [await connect(small.port), await connect(small.port)];
      for (const c of conns) expect(await c.reply()).toMatch(/^220 /);
      const third = await connect(small.port);
      expect(await third.reply()).toMatch(/^421 /);
      // Idle past the timeout: the server says goodbye and closes (RFC 5321 §4.5.3.2.7 is its minimum in production).
      await waitUntil(() => conns.every((c) => c.isClosed()), 5_000, "idle sessions closed");
    } finally {
      await small.close();
    }
  });

  // Last: it bounces and suppresses an address of the shared account, which unchanged() checks.
  it("takes a DSN whose long diagnostic has an emoji at the cut: stored once, bounced once, 250 (it was a 451 for ever)", async () => {
    const d = await t.deliver([`emoji@${DEST}`]);
    const prefix = "550 5.1.1 <emoji@dest.example>: Recipient address rejected: ";
    const diag = prefix + "x".repeat(999 - prefix.length) + "\u{1F600} user unknown"; // the 1 000-unit cut falls inside the emoji
    const dsn = postfixDsn({ to: d.verp, returned: d.returned, recipients: [{ email: `emoji@${DEST}`, action: "failed", status: "5.1.1" }] })
      .replace("Status: 5.1.1", `Status: 5.1.1\r\nDiagnostic-Code: smtp; ${diag}\r\nArrival-Date: ${"y".repeat(999)}\u{1F600}`);
    const before = await stored();
    const r = await t.report(d.verp, Buffer.from(dsn, "utf8"));
    expect(r.end).toMatch(/^250 /);
    expect(await stored()).toBe(before + 1);
    expect((await t.recipient(d.recipients[0]!.id)).status).toBe("bounced");
    expect((await t.events(d.id)).map((e) => e.type)).toEqual(["email.delivered", "email.bounced"]);
  });
});
