import { describe, expect, it } from "vitest";
import { enhancedCode, formatReply, ReplyParser, type Reply } from "../../src/smtp/reply.js";

const feedAll = (parts: (string | Buffer)[], parser = new ReplyParser()) => {
  const replies: Reply[] = [];
  let error: string | null = null;
  for (const p of parts) {
    const r = parser.feed(Buffer.isBuffer(p) ? p : Buffer.from(p, "utf8"));
    replies.push(...r.replies);
    error ??= r.error;
  }
  return { replies, error };
};

describe("reply parser", () => {
  const table: { name: string; wire: string; code: number; enhanced: string | null; lines: string[] }[] = [
    { name: "a single line with an enhanced code", wire: "250 2.0.0 Ok: queued as 12345\r\n", code: 250, enhanced: "2.0.0", lines: ["2.0.0 Ok: queued as 12345"] },
    { name: "a Gmail style 5.7.26 rejection", wire: "550-5.7.26 Unauthenticated email\r\n550 5.7.26 is not accepted\r\n", code: 550, enhanced: "5.7.26", lines: ["5.7.26 Unauthenticated email", "5.7.26 is not accepted"] },
    { name: "a null MX 5.1.10", wire: "556 5.1.10 Recipient address has null MX\r\n", code: 556, enhanced: "5.1.10", lines: ["5.1.10 Recipient address has null MX"] },
    { name: "a three digit detail", wire: "451 4.7.650 throttled\r\n", code: 451, enhanced: "4.7.650", lines: ["4.7.650 throttled"] },
    { name: "no enhanced code", wire: "220 mx.test ESMTP ready\r\n", code: 220, enhanced: null, lines: ["mx.test ESMTP ready"] },
    { name: "an enhanced code whose class disagrees with the reply code", wire: "250 5.0.0 odd\r\n", code: 250, enhanced: null, lines: ["5.0.0 odd"] },
    { name: "a four digit part (not an enhanced code)", wire: "550 5.1.1000 x\r\n", code: 550, enhanced: null, lines: ["5.1.1000 x"] },
    { name: "a bare code with no text", wire: "250\r\n", code: 250, enhanced: null, lines: [""] },
    { name: "a 2.x.x after a 354 (3xx has no enhanced class)", wire: "354 2.0.0\r\n", code: 354, enhanced: null, lines: ["2.0.0"] },
    { name: "a multi-line EHLO", wire: "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 8BITMIME\r\n", code: 250, enhanced: null, lines: ["mx.test", "PIPELINING", "SIZE 1000", "8BITMIME"] },
  ];

  for (const row of table) {
    it(`parses ${row.name} whatever the chunk boundaries`, () => {
      const wire = Buffer.from(row.wire);
      // Every split into two chunks, including inside the CRLF pair.
      for (let cut = 0; cut <= wire.length; cut++) {
        const { replies, error } = feedAll([wire.subarray(0, cut), wire.subarray(cut)]);
        expect(error).toBeNull();
        expect(replies).toHaveLength(1);
        expect(replies[0]).toMatchObject({ code: row.code, enhanced: row.enhanced, lines: row.lines, text: row.lines.join("\n") });
      }
      // And one byte at a time.
      const bytes = [...wire].map((b) => Buffer.from([b]));
      expect(feedAll(bytes).replies[0]?.lines).toEqual(row.lines);
    });
  }

  it("emits several replies from one chunk in order", () => {
    const { replies } = feedAll(["250 2.1.0 ok\r\n550 5.1.1 no such user\r\n354 go ahead\r\n"]);
    expect(replies.map((r) => r.code)).toEqual([250, 550, 354]);
    expect(replies[1]?.enhanced).toBe("5.1.1");
  });

  it("accepts bare LF line ends from sloppy servers", () => {
    const { replies, error } = feedAll(["250-mx.test\n250-SIZE 5\n", "250 OK\n"]);
    expect(error).toBeNull();
    expect(replies[0]?.lines).toEqual(["mx.test", "SIZE 5", "OK"]);
  });

  it("holds back an incomplete line until its end arrives", () => {
    const parser = new ReplyParser();
    expect(parser.feed(Buffer.from("250-first\r\n250 sec")).replies).toEqual([]);
    expect(parser.pending).toBe(true);
    expect(parser.feed(Buffer.from("ond\r\n")).replies[0]?.lines).toEqual(["first", "second"]);
    expect(parser.pending).toBe(false);
  });

  it("refuses a line longer than the limit before its end arrives", () => {
    const parser = new ReplyParser();
    const r = parser.feed(Buffer.from("220 " + "x".repeat(5000)));
    expect(r.error).toMatch(/longer than 2048/);
    // Dead from now on, even for good input.
    expect(parser.feed(Buffer.from("250 ok\r\n"))).toEqual({ replies: [], error: r.error });
  });

  it("refuses a complete line longer than the limit", () => {
    expect(feedAll(["250 " + "y".repeat(3000) + "\r\n"]).error).toMatch(/longer than/);
  });

  it("refuses a reply with too many lines", () => {
    const parser = new ReplyParser({ maxLineLength: 100, maxLines: 3 });
    expect(parser.feed(Buffer.from("250-a\r\n250-b\r\n250-c\r\n250-d\r\n")).error).toMatch(/lines/);
  });

  it("refuses garbage and a multi-line reply that changes its code", () => {
    expect(feedAll(["hello there\r\n"]).error).toMatch(/malformed/);
    expect(feedAll(["650 no\r\n"]).error).toMatch(/malformed/);
    expect(feedAll(["25 short\r\n"]).error).toMatch(/malformed/);
    expect(feedAll(["250-a\r\n550 b\r\n"]).error).toMatch(/changed its code/);
  });

  it("replaces NUL in reply text", () => {
    expect(feedAll(["250 a\0b\r\n"]).replies[0]?.text).toBe("a\uFFFDb");
  });

  it("formats a reply back to its wire form", () => {
    const { replies } = feedAll(["550-5.7.26 one\r\n550 5.7.26 two\r\n"]);
    expect(formatReply(replies[0]!)).toBe("550-5.7.26 one\n550 5.7.26 two");
  });

  it("reads an enhanced code only at the start of the text", () => {
    expect(enhancedCode(550, "5.1.1 user unknown")).toBe("5.1.1");
    expect(enhancedCode(550, "user unknown 5.1.1")).toBeNull();
    expect(enhancedCode(421, "4.4.2\tidle")).toBe("4.4.2");
    expect(enhancedCode(550, "5.1.1user")).toBeNull();
  });
});
