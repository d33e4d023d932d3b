import { describe, expect, it } from "vitest";
import type { FeedbackReport } from "../../src/inbound/arf.js";
import type { Dsn, DsnRecipient } from "../../src/inbound/dsn.js";
import { decideArf, decideDsn, decidePlain, effectiveStatus, type Candidate } from "../../src/inbound/match.js";

const one: Candidate[] = [{ id: "rcpt_a", emailKey: "a@x.test" }];
const two: Candidate[] = [...one, { id: "rcpt_b", emailKey: "b@x.test" }];
const block = (o: Partial<DsnRecipient>): DsnRecipient => ({
  finalRecipient: null, originalRecipient: null, action: "failed", status: "5.1.1", diagnostic: "550 5.1.1 gone", diagnosticType: "smtp",
  smtpCode: 550, diagnosticStatus: "5.1.1", remoteMta: null, lastAttemptDate: null, willRetryUntil: null, ...o,
});
const dsn = (...recipients: DsnRecipient[]): Dsn => ({ wellFormed: true, global: false, reportingMta: "mx.x.test", arrivalDate: null, originalEnvelopeId: null, recipients, returnedMessageId: null });
const arf = (o: Partial<FeedbackReport>): FeedbackReport => ({
  wellFormed: true, feedbackType: "abuse", feedbackTypeRaw: "abuse", userAgent: null, version: "1", originalMailFrom: null, originalRcptTo: [],
  arrivalDate: null, reportingMta: null, sourceIp: null, returnedMessageId: null, returnedReturnPath: null, ...o,
});
const targets = (d: { changes: { recipientId: string; to: string | null }[] }) => d.changes.map((c) => [c.recipientId, c.to]);

describe("matching a report to recipients", () => {
  it.each([
    ["Final-Recipient, case-insensitively", dsn(block({ finalRecipient: "B@X.TEST" })), two, [["rcpt_b", "bounced"]]],
    ["Original-Recipient when Final-Recipient is an alias", dsn(block({ finalRecipient: "alias@y.test", originalRecipient: "a@x.test" })), two, [["rcpt_a", "bounced"]]],
    ["nothing for an address that is no candidate", dsn(block({ finalRecipient: "other@x.test" })), one, []],
    ["the single candidate when no address is named", dsn(block({})), one, [["rcpt_a", "bounced"]]],
    ["nothing when no address is named and there are two candidates", dsn(block({})), two, []],
    ["a delayed block as an event only", dsn(block({ finalRecipient: "a@x.test", action: "delayed", status: "4.4.1" })), two, [["rcpt_a", null]]],
    ["nothing for delivered/relayed actions", dsn(block({ finalRecipient: "a@x.test", action: "relayed", status: "2.0.0" })), two, []],
  ])("DSN: %s", (_name, report, candidates, expected) => {
    expect(targets(decideDsn(report, candidates))).toEqual(expected);
  });

  it("matches a recipient at an internationalised domain whether the report names it in A-labels (as RCPT TO carried it) or Unicode", () => {
    const idn: Candidate[] = [{ id: "rcpt_i", emailKey: "info@müller.example" }, { id: "rcpt_j", emailKey: "jörg@müller.example" }];
    expect(targets(decideDsn(dsn(block({ finalRecipient: "INFO@xn--mller-kva.example" })), idn))).toEqual([["rcpt_i", "bounced"]]);
    expect(targets(decideDsn(dsn(block({ finalRecipient: "jörg@MÜLLER.example" })), idn))).toEqual([["rcpt_j", "bounced"]]);
    expect(targets(decideArf(arf({ originalRcptTo: ["info@xn--mller-kva.example"] }), idn))).toEqual([["rcpt_i", "complained"]]);
    expect(targets(decidePlain({ code: 550, enhanced: "5.1.1", text: "gone", addresses: ["info@xn--mller-kva.example"] }, idn))).toEqual([["rcpt_i", "bounced"]]);
  });

  it("DSN: hard bounces suppress, soft ones (5.2.2, 4.x.x failures, no status) do not", () => {
    const d = decideDsn(dsn(
      block({ finalRecipient: "a@x.test", status: "5.1.1" }),
      block({ finalRecipient: "b@x.test", status: "5.2.2" }),
    ), two);
    expect(d.changes.map((c) => [c.data.bounce, c.suppression?.reason ?? null])).toEqual([[{ kind: "hard", source: "dsn" }, "hard_bounce"], [{ kind: "soft", source: "dsn" }, null]]);
    expect(decideDsn(dsn(block({ status: "4.4.7" })), one).changes[0]!.data.bounce).toEqual({ kind: "soft", source: "dsn" });
    expect(decideDsn(dsn(block({ status: null, diagnostic: "550 gone", diagnosticStatus: null })), one).changes[0]!.suppression).toBeUndefined();
  });

  it("DSN: a bare 5.0.0 Status takes the specific code from the server's reply in Diagnostic-Code (Exim)", () => {
    const exim = decideDsn(dsn(block({ status: "5.0.0", diagnostic: "550 5.1.1 <a@x.test>: User unknown", diagnosticStatus: "5.1.1" })), one);
    expect(exim.changes[0]).toMatchObject({ reply: { code: 550, enhanced: "5.1.1" }, data: { bounce: { kind: "hard", source: "dsn" } }, suppression: { reason: "hard_bounce" } });
    // No Status at all: the reply's code decides too.
    expect(decideDsn(dsn(block({ status: null, diagnosticStatus: "5.1.1" })), one).changes[0]!.suppression?.reason).toBe("hard_bounce");
    // A specific Status is never overridden, nor one of another class.
    expect(decideDsn(dsn(block({ status: "5.2.2", diagnosticStatus: "5.1.1" })), one).changes[0]!.suppression).toBeUndefined();
    expect(decideDsn(dsn(block({ status: "4.0.0", diagnostic: "550 5.1.1 gone", diagnosticStatus: "5.1.1" })), one).changes[0]!.data.bounce).toEqual({ kind: "soft", source: "dsn" });
    expect(effectiveStatus("5.0.0", null)).toBe("5.0.0");
  });

  it.each([
    ["Original-Rcpt-To", arf({ originalRcptTo: ["b@x.test"] }), two, [["rcpt_b", "complained"]]],
    ["the single candidate without Original-Rcpt-To", arf({}), one, [["rcpt_a", "complained"]]],
    ["nothing without Original-Rcpt-To and two candidates", arf({}), two, []],
    ["nothing for not-spam", arf({ feedbackType: "not-spam", feedbackTypeRaw: "not-spam" }), one, []],
    ["nothing for an unregistered type", arf({ feedbackType: null, feedbackTypeRaw: "opt-out" }), one, []],
  ])("ARF: %s", (_name, report, candidates, expected) => {
    expect(targets(decideArf(report, candidates))).toEqual(expected);
  });

  it.each([
    ["the one candidate named", ["b@x.test", "postmaster@mx.y.test"], two, [["rcpt_b", "bounced"]]],
    ["nothing when two candidates are named", ["a@x.test", "b@x.test"], two, []],
    ["nothing when only others are named", ["someone@else.test"], one, []],
    ["the single candidate when no address is named", [], one, [["rcpt_a", "bounced"]]],
    ["nothing when no address is named and there are two candidates", [], two, []],
  ])("plain bounce: %s", (_name, addresses, candidates, expected) => {
    expect(targets(decidePlain({ code: 550, enhanced: "5.1.1", text: "550 5.1.1 gone", addresses }, candidates))).toEqual(expected);
  });
});
