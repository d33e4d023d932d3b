import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { parseInbound } from "../../src/inbound/parse.js";
import { arfReport, eximBounce, postfixDsn, qmailBounce, returnedHeaders } from "./samples.js";

const VERP = "b+01jd2x0c6v8k9m3n4p5q6r7s8t-abcdefghjkmnpqrs@bounces.postline.test";
const returned = returnedHeaders({ from: VERP, to: ["gone@example.net", "other@example.net"], messageId: "<orig.1@example.com>" });
const raw = (s: string) => Buffer.from(s, "latin1");

describe("RFC 3464 delivery status notifications", () => {
  it("reads a Postfix DSN: per-message fields, the recipient block, the folded diagnostic, the returned Message-ID", () => {
    const r = parseInbound(raw(postfixDsn({
      to: VERP,
      returned,
      recipients: [{ email: "gone@example.net", original: "Gone@Example.net", action: "failed", status: "5.1.1", remoteMta: "mx2.example.net",
        diagnostic: "smtp; 550 5.1.1 <gone@example.net>: Recipient address rejected: User unknown in local recipient table" }],
    })));
    expect(r.kind).toBe("dsn");
    if (r.kind !== "dsn") return;
    expect(r.dsn).toMatchObject({ wellFormed: true, global: false, reportingMta: "mx.example.net", returnedMessageId: "<orig.1@example.com>" });
    expect(r.dsn.arrivalDate).toContain("1 Dec 2026");
    expect(r.dsn.recipients).toEqual([{
      finalRecipient: "gone@example.net",
      originalRecipient: "Gone@Example.net",
      action: "failed",
      status: "5.1.1",
      diagnostic: "550 5.1.1 <gone@example.net>: Recipient address rejected: User unknown in local recipient table",
      diagnosticType: "smtp",
      smtpCode: 550,
      diagnosticStatus: "5.1.1",
      remoteMta: "mx2.example.net",
      lastAttemptDate: null,
      willRetryUntil: null,
    }]);
  });

  it("reads a delayed (4.x.x) DSN with Will-Retry-Until", () => {
    const r = parseInbound(raw(postfixDsn({
      to: VERP, returned, delayed: true,
      recipients: [{ email: "slow@example.net", action: "delayed", status: "4.4.1", willRetryUntil: "Sat, 5 Dec 2026 06:30:01 +0000 (UTC)",
        diagnostic: "X-Postfix; delivery temporarily suspended: connect to mx.example.net[192.0.2.1]:25: Connection timed out" }],
    })));
    expect(r.kind === "dsn" && r.dsn.recipients[0]).toMatchObject({ action: "delayed", status: "4.4.1", smtpCode: null, diagnosticType: "x-postfix", willRetryUntil: "Sat, 5 Dec 2026 06:30:01 +0000 (UTC)" });
  });

  it("reads several recipient blocks, a missing Final-Recipient and malformed Status values as nulls", () => {
    const r = parseInbound(raw(postfixDsn({
      to: VERP, returned,
      recipients: [
        { email: "a@example.net", action: "failed", status: "5.2.2", diagnostic: "smtp; 552 5.2.2 Mailbox full" },
        { action: "FAILED", status: "5.1" },
        { email: "x400:/C=US/", action: "bogus", status: "9.9.9" },
      ],
    })));
    if (r.kind !== "dsn") throw new Error(r.kind);
    expect(r.dsn.recipients.map((x) => [x.finalRecipient, x.action, x.status])).toEqual([
      ["a@example.net", "failed", "5.2.2"],
      [null, "failed", null],
      [null, null, null],
    ]);
  });

  it("reads fields around their comments (RFC 3464 §2.1.1: parenthesised text is not the contents)", () => {
    const r = parseInbound(raw(postfixDsn({
      to: VERP, returned,
      recipients: [
        { email: "c2b@example.net (Bob)", action: "failed (permanent failure)", status: "5.1.1 (user unknown)", remoteMta: "mx.example.net (192.0.2.1)" },
        { email: '"odd(local)"@example.net', action: "(retrying) delayed", status: "(x) 4.4.1" },
      ],
    })));
    if (r.kind !== "dsn") throw new Error(r.kind);
    expect(r.dsn.recipients.map((x) => [x.finalRecipient, x.action, x.status, x.remoteMta])).toEqual([
      ["c2b@example.net", "failed", "5.1.1", "mx.example.net"],
      ['"odd(local)"@example.net', "delayed", "4.4.1", null], // a quoted string keeps its parentheses
    ]);
  });

  it("reads RFC 6533 message/global-delivery-status with a UTF-8 address, base64-encoded, inside multipart/mixed", () => {
    const status = Buffer.from("Reporting-MTA: dns; mx.example.jp\r\n\r\nFinal-Recipient: utf-8; j\\x{00FC}rgen@example.jp\r\nAction: failed\r\nStatus: 5.1.1\r\n").toString("base64");
    const msg = [
      "Content-Type: multipart/mixed; boundary=w",
      "",
      "--w",
      "Content-Type: multipart/report; report-type=delivery-status; boundary=r",
      "",
      "--r",
      "Content-Type: text/plain",
      "",
      "failed",
      "--r",
      "Content-Type: message/global-delivery-status",
      "Content-Transfer-Encoding: base64",
      "",
      status,
      "--r--",
      "--w--",
    ].join("\r\n");
    const r = parseInbound(raw(msg));
    if (r.kind !== "dsn") throw new Error(r.kind);
    expect(r.dsn).toMatchObject({ wellFormed: false, global: true, reportingMta: "mx.example.jp" });
    expect(r.dsn.recipients[0]).toMatchObject({ finalRecipient: "jürgen@example.jp", action: "failed", status: "5.1.1" });
  });
});

describe("RFC 5965 feedback reports", () => {
  it("reads an abuse report from a mailbox provider with the reported message's Message-ID", () => {
    const r = parseInbound(raw(arfReport({ to: VERP, rcpt: "user@example.net", mailFrom: VERP, returned })));
    expect(r).toMatchObject({ kind: "arf", subject: "FW: Test" });
    if (r.kind !== "arf") return;
    expect(r.arf).toEqual({
      wellFormed: true, feedbackType: "abuse", feedbackTypeRaw: "abuse", userAgent: "ExampleMail-Feedback/2.0", version: "1",
      originalMailFrom: VERP, originalRcptTo: ["user@example.net"], arrivalDate: "Tue, 01 Dec 2026 06:30:01 +0000",
      reportingMta: "mta1.feedback.example.net", sourceIp: "192.0.2.10", returnedMessageId: "<orig.1@example.com>", returnedReturnPath: VERP,
    });
  });

  it("keeps an unregistered feedback type as raw text only", () => {
    const r = parseInbound(raw(arfReport({ to: VERP, mailFrom: VERP, returned, feedbackType: "Opt-Out" })));
    expect(r.kind === "arf" && [r.arf.feedbackType, r.arf.feedbackTypeRaw, r.arf.originalRcptTo]).toEqual([null, "opt-out", []]);
  });
});

describe("non-standard bounces", () => {
  it.each([
    ["Exim", eximBounce({ to: VERP, failed: "gone@example.net", returned })],
    ["qmail", qmailBounce({ to: VERP, failed: "gone@example.net", returned })],
  ])("is sure of a %s bounce and names only the failed address, not the returned copy's recipients", (_name, msg) => {
    const r = parseInbound(raw(msg));
    expect(r.kind).toBe("plain-bounce");
    if (r.kind !== "plain-bounce") return;
    expect(r.bounce).toMatchObject({ code: 550, enhanced: "5.1.1", addresses: ["gone@example.net"] });
    expect(r.bounce.text).toContain("550 5.1.1");
  });

  it("reads an Exchange-style NDR and qmail's local (#5.1.1) form", () => {
    const exchange = "Subject: Undeliverable: Test\r\n\r\nDelivery has failed to these recipients or groups:\r\n\r\ngone@example.net\r\nRemote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found'\r\n\r\nOriginal message headers:\r\n\r\nTo: other@example.net\r\n";
    expect(parseInbound(raw(exchange))).toMatchObject({ kind: "plain-bounce", bounce: { code: 550, enhanced: "5.1.10", addresses: ["gone@example.net"] } });
    const local = "Subject: failure notice\r\n\r\nHi. This is the qmail-send program at x.test.\r\n<nobody@x.test>:\r\nSorry, no mailbox here by that name. (#5.1.1)\r\n";
    expect(parseInbound(raw(local))).toMatchObject({ kind: "plain-bounce", bounce: { code: null, enhanced: "5.1.1" } });
  });

  it.each([
    ["a temporary failure only", "Subject: Mail delivery failed\r\n\r\nwarning: 451 4.7.1 greylisted, still trying\r\n", "temporary status codes only"],
    ["codes that disagree", "Subject: Undeliverable\r\n\r\n550 5.1.1 one\r\n552 5.2.2 two\r\n", "several different status codes"],
    ["a class mismatch", "Subject: Undeliverable\r\n\r\n550 4.1.1 odd\r\n", "no SMTP status codes"],
    ["no bounce wording", "Subject: Re: your offer\r\n\r\nI read that 550 5.1.1 means no such user.\r\n", "no delivery-failure wording"],
    ["codes only in the returned copy", "Subject: Undeliverable\r\n\r\nsorry\r\n\r\nReceived: by x\r\nX-Note: 550 5.1.1\r\n", "no SMTP status codes"],
    ["a vacation auto-reply", "Subject: Out of office\r\nAuto-Submitted: auto-replied\r\n\r\nI am away until Monday.\r\n", "no delivery-failure wording"],
  ])("is unsure of %s", (_name, msg, reason) => {
    expect(parseInbound(raw(msg))).toMatchObject({ kind: "unknown", reason });
  });
});

describe("junk", () => {
  it.each([
    ["empty", Buffer.alloc(0)],
    ["binary", randomBytes(64 * 1024)],
    ["NULs and bare CRs", Buffer.from("Subject: x\0y\r\r\rContent-Type: multipart/report\0\r\n\r\n\0\0--\r--")],
    ["multipart/report without a boundary", Buffer.from("Content-Type: multipart/report; report-type=delivery-status\r\n\r\nFinal-Recipient: rfc822; a@b.test\r\nAction: failed\r\n")],
    ["a delivery-status part of junk", Buffer.from("Content-Type: multipart/report; boundary=x\r\n\r\n--x\r\nContent-Type: message/delivery-status\r\n\r\n\xff\xfe garbage ::: \r\n--x--")],
    ["headers without colons", Buffer.from("this is not\r\na header section\r\n\r\nbody")],
  ])("classifies %s as unknown without throwing", (_name, bytes) => {
    expect(parseInbound(bytes).kind).toBe("unknown");
  });

  it("stays fast on hostile repetition", () => {
    const hostile = Buffer.from(`Subject: Undeliverable\r\n\r\n${"a".repeat(200_000)}@${"\n".repeat(200_000)}${"- ".repeat(100_000)}`);
    const started = Date.now();
    parseInbound(hostile);
    expect(Date.now() - started).toBeLessThan(2_000);
  });
});
