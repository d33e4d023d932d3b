/**
 * Transfer encodings (RFC 2045 §6): the choice per text, quoted-printable rules (§6.7) and
 * base64 lines (§6.8), each checked against expected output or an independent decoder.
 */
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { encodeBase64, encodeQuotedPrintable, encodeText, isSevenBit, toCrlf } from "../../src/mime/transfer-encoding.js";

/** RFC 2045 §6.7 decoding: soft breaks vanish, =XX becomes the octet. */
function decodeQp(encoded: Buffer): Buffer {
  const text = encoded.toString("latin1").replace(/=\r\n/g, "");
  return Buffer.from(text.replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))), "latin1");
}

describe("toCrlf", () => {
  it.each([
    ["LF", "a\nb", "a\r\nb"],
    ["CR", "a\rb", "a\r\nb"],
    ["CRLF untouched", "a\r\nb", "a\r\nb"],
    ["LF CR as two line ends", "a\n\rb", "a\r\n\r\nb"],
    ["no line end", "ab", "ab"],
    ["trailing bare CR", "a\r", "a\r\n"],
  ])("normalises %s", (_, input, expected) => {
    expect(toCrlf(input)).toBe(expected);
  });
});

describe("encodeText", () => {
  it.each([
    ["short ASCII lines", "Hello\nworld", "7bit"],
    ["a 998-octet line", "a".repeat(998), "7bit"],
    ["a 999-octet line", "a".repeat(999), "quoted-printable"],
    ["mostly ASCII with accents", "Café au lait, s'il vous plaît, with a croissant.", "quoted-printable"],
    ["Japanese", "来週の会議は中止です。詳細は本文をご覧ください。", "base64"],
    ["ASCII with a NUL", "a\u0000b", "quoted-printable"],
  ])("chooses the encoding for %s", (_, text, encoding) => {
    const out = encodeText(text);
    expect(out.encoding).toBe(encoding);
    const decoded = out.encoding === "base64" ? Buffer.from(out.body.toString(), "base64") : out.encoding === "quoted-printable" ? decodeQp(out.body) : out.body;
    expect(decoded.toString("utf8")).toBe(toCrlf(text));
  });
});

describe("encodeQuotedPrintable", () => {
  it.each([
    ["an equals sign", "a=b", "a=3Db"],
    ["a space before CRLF", "end \r\nnext", "end=20\r\nnext"],
    ["a tab at the very end", "end\t", "end=09"],
    ["a space in the middle", "a b", "a b"],
    ["a lone dot line", "a\r\n.\r\nb", "a\r\n=2E\r\nb"],
    ["a leading From", "From me\r\nFrom", "=46rom me\r\nFrom"],
    ["a bare LF that escaped normalisation", "a\nb", "a=0Ab"],
    ["UTF-8", "é", "=C3=A9"],
  ])("escapes %s", (_, input, expected) => {
    expect(encodeQuotedPrintable(Buffer.from(input)).toString()).toBe(expected);
  });

  it.each([
    ["a 5000-character line", "x".repeat(5000)],
    ["a line of escapes", "é".repeat(500)],
    ["mixed text with spaces at soft-break positions", `${"word ".repeat(400)}\r\n${"ü ".repeat(300)}`],
    ["dots at soft-break positions", ".".repeat(1000)],
  ])("keeps lines ≤ 76 and round-trips %s", (_, input) => {
    const out = encodeQuotedPrintable(Buffer.from(input));
    for (const line of out.toString().split("\r\n")) {
      expect(line.length).toBeLessThanOrEqual(76);
      expect(line).not.toMatch(/[ \t]$/);
      expect(line).toMatch(/^[\x21-\x7e \t]*$/);
    }
    expect(decodeQp(out).toString()).toBe(input);
  });
});

describe("encodeBase64", () => {
  it.each([0, 1, 2, 3, 56, 57, 58, 114, 5000, 20 * 1024])("folds %i octets into 76-character lines", (n) => {
    const src = randomBytes(n);
    const expected = (src.toString("base64").match(/.{1,76}/g) ?? []).join("\r\n");
    expect(encodeBase64(src).toString()).toBe(expected);
  });
});

describe("isSevenBit", () => {
  it.each([
    ["CRLF text", "a\r\nb", true],
    ["a bare LF", "a\nb", false],
    ["a bare CR", "a\rb", false],
    ["NUL", "a\u0000b", false],
    ["8-bit", "é", false],
    ["a 999-octet line", "a".repeat(999), false],
  ])("says %s is %s", (_, text, expected) => {
    expect(isSevenBit(Buffer.from(text))).toBe(expected);
  });
});
