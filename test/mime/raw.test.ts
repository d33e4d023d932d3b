import { describe, expect, it } from "vitest";
import { prepareRawMessage } from "../../src/mime/raw.js";

const now = new Date("2026-11-23T12:00:00Z");
const prep = (s: string | Buffer) => prepareRawMessage(Buffer.isBuffer(s) ? s : Buffer.from(s, "utf8"), now);

describe("prepareRawMessage", () => {
  it("normalises bare LF and bare CR to CRLF and adds Message-ID, Date and MIME-Version when missing", () => {
    const r = prep("From: Alice <alice@example.com>\nTo: bob@example.org\nSubject: Hi\n\nline one\rline two\n.\n");
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const text = r.message.bytes.toString();
    expect(text.replace(/\r\n/g, "")).not.toMatch(/[\r\n]/);
    expect(text).toMatch(/\r\nMessage-ID: <[^@]+@example\.com>\r\nDate: Mon, 23 Nov 2026 12:00:00 \+0000\r\nMIME-Version: 1\.0\r\n\r\nline one\r\nline two\r\n\.\r\n$/);
    expect(r.message.subject).toBe("Hi");
    expect(r.message.from.address).toBe("alice@example.com");
  });

  it("keeps an existing Message-ID, Date and MIME-Version, removes Bcc and Resent-Bcc, and keeps 8-bit bytes as they are", () => {
    const raw = Buffer.concat([
      Buffer.from("From: a@example.com\r\nBcc: secret@example.net\r\nResent-Bcc: hidden@example.net\r\nMIME-Version: 1.0\r\nMessage-ID: <keep@example.com>\r\nDate: Sun, 22 Nov 2026 10:00:00 +0000\r\nSubject: caf"),
      Buffer.from([0xc3, 0xa9]),
      Buffer.from("\r\n\r\nbody "),
      Buffer.from([0xff, 0xfe]),
      Buffer.from("\r\n"),
    ]);
    const r = prep(raw);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.message.messageId).toBe("<keep@example.com>");
    expect(r.message.subject).toBe("café");
    expect(r.message.bytes.toString("latin1")).not.toMatch(/^(Resent-)?Bcc:/im);
    expect(r.message.bytes.toString("latin1")).not.toContain("hidden@example.net");
    expect(r.message.bytes.toString().match(/^MIME-Version:/gim)).toHaveLength(1);
    expect(r.message.bytes.includes(Buffer.from([0xff, 0xfe]))).toBe(true);
    expect(r.message.bytes.toString().match(/^Date:/gm)).toHaveLength(1);
  });

  const refused: [string, string | Buffer, RegExp][] = [
    ["a NUL byte", "From: a@example.com\r\n\r\nx\0y\r\n", /NUL/],
    ["a line over 998 octets", `From: a@example.com\r\n\r\n${"x".repeat(999)}\r\n`, /998/],
    ["no From", "To: b@example.org\r\n\r\nhi\r\n", /From/],
    ["two From headers", "From: a@example.com\r\nFrom: c@example.com\r\n\r\nhi\r\n", /exactly one From/],
    ["a From that is no address", "From: nobody\r\n\r\nhi\r\n", /From:/],
    ["a header line that is no field", "From: a@example.com\r\nthis is not a header\r\n\r\nhi\r\n", /not a header field/],
    ["a leading continuation line", " folded\r\nFrom: a@example.com\r\n\r\nhi\r\n", /continuation/],
  ];
  for (const [what, input, error] of refused)
    it(`refuses ${what}`, () => {
      const r = prep(input);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error).toMatch(error);
    });
});
