/**
 * MIME parameters: plain tokens and quoted strings when they fit, RFC 2231 extended values with
 * continuations otherwise (never splitting a character), an ASCII fallback, media types.
 */
import { describe, expect, it } from "vitest";
import { mediaTypeOf } from "../../src/mime/media-types.js";
import { asciiFallback, paramHeader, paramTokens } from "../../src/mime/params.js";

describe("paramTokens", () => {
  it.each([
    ["a token as it is", "a.pdf", ["filename=a.pdf"]],
    ["a value with spaces quoted", "my file.pdf", ['filename="my file.pdf"']],
    ["non-ASCII as fallback plus RFC 2231", "résumé.pdf", ['filename="resume.pdf"', "filename*=utf-8''r%C3%A9sum%C3%A9.pdf"]],
    ["a quote as fallback plus RFC 2231", 'a"b.txt', ['filename="a_b.txt"', "filename*=utf-8''a%22b.txt"]],
  ])("writes %s", (_, value, expected) => {
    expect(paramTokens("filename", value)).toEqual(expected);
  });

  it("splits a long value into numbered sections of whole characters, each ≤ 76", () => {
    const value = `${"日本語".repeat(20)}.pdf`;
    const [fallback, ...sections] = paramTokens("filename", value);
    expect(fallback).toBe('filename="attachment.pdf"');
    sections.forEach((s, i) => {
      expect(s.length).toBeLessThanOrEqual(76);
      expect(s.startsWith(i === 0 ? "filename*0*=utf-8''" : `filename*${i}*=`)).toBe(true);
      const encoded = s.slice(s.indexOf("=") + 1).replace(/^utf-8''/, "");
      expect(Buffer.from(decodeURIComponent(encoded)).toString()).toBe(decodeURIComponent(encoded)); // whole characters
    });
    const joined = sections.map((s) => s.slice(s.indexOf("=") + 1).replace(/^utf-8''/, "")).join("");
    expect(decodeURIComponent(joined)).toBe(value);
  });

  it("folds a header between parameters", () => {
    const header = paramHeader("Content-Disposition", "attachment", [["filename", `${"ü".repeat(40)}.txt`]]);
    for (const line of header.split("\r\n")) expect(line.length).toBeLessThanOrEqual(78);
    expect(header).toMatch(/^Content-Disposition: attachment;\r\n filename="u{40}\.txt";\r\n filename\*0\*=utf-8''/);
  });
});

describe("asciiFallback", () => {
  it.each([
    ["accents dropped", "Crème brûlée.pdf", "Creme brulee.pdf"],
    ["a name with nothing ASCII", "日本語.pdf", "attachment.pdf"],
    ["a long name cut, extension kept", `${"a".repeat(100)}.xlsx`, `${"a".repeat(55)}.xlsx`],
    ["backslash replaced", "a\\b", "a_b"],
  ])("gives %s", (_, value, expected) => {
    expect(asciiFallback(value)).toBe(expected);
  });
});

describe("mediaTypeOf", () => {
  it.each([
    ["the caller's type", "x.bin", "image/PNG", "image/png"],
    ["a guess from the extension", "Report.PDF", undefined, "application/pdf"],
    ["octet-stream for the unknown", "data.xyz", undefined, "application/octet-stream"],
    ["a guess when the declared type is malformed", "a.png", "image/png; x=1", "image/png"],
  ])("gives %s", (_, filename, declared, expected) => {
    expect(mediaTypeOf(filename, declared)).toBe(expected);
  });
});
