import { describe, expect, it } from "vitest";
import { normalizeDomainName } from "../../src/domains/names.js";

describe("normalizeDomainName", () => {
  it.each([
    ["Example.COM", "example.com"],
    ["example.com.", "example.com"],
    ["  mail.example.co.uk ", "mail.example.co.uk"],
    ["bücher.de", "xn--bcher-kva.de"],
    ["ＥＸＡＭＰＬＥ.com", "example.com"],
    ["例え.テスト", "xn--r8jz45g.xn--zckzah"],
    ["xn--bcher-kva.de", "xn--bcher-kva.de"],
  ])("accepts %j as %j", (input, name) => {
    expect(normalizeDomainName(input)).toEqual({ ok: true, name });
  });

  it.each([
    ["", /empty/],
    ["com", /two labels/],
    ["localhost", /localhost/],
    ["mail.localhost", /localhost/],
    ["printer.local", /local/],
    ["127.0.0.1", /IP address/],
    ["1.2.3", /IP address/],
    ["[::1]", /IP address/],
    ["::1", /IP address/],
    ["example.123", /./],
    ["alice@example.com", /email address/],
    ["a..b", /valid/],
    ["-a.com", /valid/],
    ["a_b.com", /valid/],
    ["*.example.com", /valid/],
    ["a b.com", /valid/],
    [`${"a".repeat(64)}.com`, /valid/],
    [`${"abcdefghi.".repeat(26)}com`, /253/],
  ])("refuses %j", (input, reason) => {
    const r = normalizeDomainName(input);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(reason);
  });
});
