/**
 * Relaxed canonicalisation (RFC 6376 §3.4.2, §3.4.4) against the RFC's own example (§3.4.5) and
 * a table of edge cases, and the body hash against a plain SHA-256 of the expected canonical form.
 */
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { bodyHash, canonicalizeBody, canonicalizeHeader } from "../../src/dkim/canonicalize.js";

describe("canonicalizeHeader", () => {
  it.each([
    ["the RFC 6376 §3.4.5 example's first field", "A: X", "a:X"],
    ["the RFC 6376 §3.4.5 example's folded field", "B : Y\t\r\n\tZ  ", "b:Y Z"],
    ["a field with no space after the colon", "Subject:Hi", "subject:Hi"],
    ["runs of spaces and tabs inside the value", "Subject: a \t  b\t\tc", "subject:a b c"],
    ["a fold in the middle of a word list", "To: a@example.com,\r\n b@example.org", "to:a@example.com, b@example.org"],
    ["an empty value", "Subject: ", "subject:"],
    ["UTF-8 octets, read as latin1, untouched", "Subject: Gr\u00c3\u00bc\u00c3\u009fe", "subject:Gr\u00c3\u00bc\u00c3\u009fe"],
  ])("canonicalises %s", (_, field, expected) => {
    expect(canonicalizeHeader(field)).toBe(expected);
  });
});

describe("canonicalizeBody", () => {
  it.each([
    ["the RFC 6376 §3.4.5 example body", " C \r\nD \t E\r\n\r\n\r\n", " C\r\nD E\r\n"],
    ["an empty body as nothing", "", ""],
    ["a body of empty lines as nothing", "\r\n\r\n  \r\n", ""],
    ["a body without a final CRLF by adding one", "abc", "abc\r\n"],
    ["trailing whitespace on every line", "a \r\nb\t\r\nc  \t ", "a\r\nb\r\nc\r\n"],
    ["a tab alone between words", "a\tb", "a b\r\n"],
    ["a long run of mixed whitespace", `a${" \t".repeat(50)}b`, "a b\r\n"],
    ["leading whitespace to one space", "  \t a\r\n", " a\r\n"],
    ["lines of whitespace inside the body to empty lines", "a\r\n \t \r\nb\r\n", "a\r\n\r\nb\r\n"],
    ["single spaces untouched", "one two three\r\nfour five\r\n", "one two three\r\nfour five\r\n"],
  ])("canonicalises %s", (_, body, expected) => {
    expect(canonicalizeBody(Buffer.from(body)).toString()).toBe(expected);
  });

  it("hashes exactly the canonical form", () => {
    const body = Buffer.from("Hello  world \r\n\tindented\r\n\r\n");
    expect(bodyHash(body)).toBe(createHash("sha256").update("Hello world\r\n indented\r\n").digest("base64"));
  });

  it("hashes an empty body as the hash of nothing (RFC 6376 §3.4.4)", () => {
    expect(bodyHash(Buffer.alloc(0))).toBe("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
  });
});
