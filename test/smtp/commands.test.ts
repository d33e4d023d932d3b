import { describe, expect, it } from "vitest";
import { addressProblem, heloNameProblem, mailLine, parseExtensions, sizeLimit, wireAddress } from "../../src/smtp/commands.js";

describe("command building", () => {
  const addresses: [string, boolean][] = [
    ["user@example.com", true],
    ["jörg@exämple.de", true],
    ['"a@x"@example.com', true], // quoted local part: the routing domain is example.com
    ['"john > smith"@example.com', true],
    ['"quoted \\" escape"@example.com', true],
    ["user@[192.0.2.1]", true],
    ["user@example.com> NOTIFY=NEVER", false],
    ['"…> ORCPT=rfc822;x@y"@example.com\r\nRSET', false],
    ["user@example.com\r\nRCPT TO:<evil@x>", false],
    ["us\ner@example.com", false],
    ["user@exa\0mple.com", false],
    ["<user@example.com>", false],
    ["user name@example.com", false],
    ["user@example.com ", false],
    ['"unterminated@example.com', false],
    ['"q"x@example.com', false],
    ["no-at-sign", false],
    ["@example.com", false],
    ["user@", false],
    ["a@b@c", false],
  ];
  for (const [address, ok] of addresses) {
    it(`${ok ? "accepts" : "refuses"} ${JSON.stringify(address)} as a path`, () => {
      expect(addressProblem(address, false) === null).toBe(ok);
    });
  }

  it("accepts the null reverse-path only where allowed", () => {
    expect(addressProblem("", true)).toBeNull();
    expect(addressProblem("", false)).not.toBeNull();
  });

  it("refuses HELO names that could end or extend the command", () => {
    expect(heloNameProblem("mta.example.com")).toBeNull();
    expect(heloNameProblem("[192.0.2.1]")).toBeNull();
    for (const bad of ["", "a b", "a\r\nMAIL FROM:<x>", "a\0", "<a>", "é.example", "x".repeat(256)]) {
      expect(heloNameProblem(bad), JSON.stringify(bad)).not.toBeNull();
    }
  });

  it("builds MAIL FROM with the parameters the transaction needs", () => {
    expect(mailLine("", { size: null, eightBit: false, smtputf8: false })).toBe("MAIL FROM:<>");
    expect(mailLine("a@b", { size: 42, eightBit: true, smtputf8: true })).toBe("MAIL FROM:<a@b> SIZE=42 BODY=8BITMIME SMTPUTF8");
  });

  it("parses EHLO keywords case-insensitively with their parameters", () => {
    const ext = parseExtensions({ code: 250, enhanced: null, lines: ["mx.test hi", "size 0", "Auth=LOGIN", "AUTH PLAIN", "X-WEIRD a b", ""], text: "" });
    expect(Object.fromEntries(ext)).toEqual({ SIZE: "0", AUTH: "LOGIN PLAIN", "X-WEIRD": "a b" });
    expect(sizeLimit(ext)).toBe(0);
    expect(sizeLimit(new Map([["SIZE", "35882577"]]))).toBe(35882577);
    expect(sizeLimit(new Map())).toBeNull();
  });
});

describe("wireAddress (the envelope form of an address)", () => {
  it.each([
    ["info@müller.example", "info@xn--mller-kva.example"], // ASCII local part: A-labels, no SMTPUTF8 needed
    ["jörg@müller.example", "jörg@müller.example"], // a UTF-8 local part needs SMTPUTF8 anyway
    ["plain@example.com", "plain@example.com"],
    ['"a@b"@bücher.example', '"a@b"@xn--bcher-kva.example'], // the domain is what follows the last "@"
    ["no-at-sign", "no-at-sign"],
  ])("%s → %s", (address, expected) => {
    expect(wireAddress(address)).toBe(expected);
  });
});
