import { describe, it, expect } from "vitest";
import { domainToASCII } from "node:url";
import { formatMailbox, parseAddrSpec, parseMailbox, type Mailbox, type ParseResult } from "../../src/mime/address.js";

function ok(result: ParseResult): Mailbox {
  if (!result.ok) throw new Error(`expected success, got: ${result.error}`);
  return result.mailbox;
}

function error(result: ParseResult): string {
  if (result.ok) throw new Error(`expected failure, got: ${JSON.stringify(result.mailbox)}`);
  return result.error;
}

// 63 + 1 + 63 + 1 + 57 + 4 = 189 octets, so 64 + "@" + 189 = 254 octets in all.
const domain189 = `${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(57)}.com`;
const domain190 = `${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(58)}.com`;
const local64 = "a".repeat(64);

describe("parseMailbox accepts", () => {
  const cases: { label: string; input: string; expected: Partial<Mailbox> }[] = [
    {
      label: "a plain addr-spec",
      input: "bob@example.org",
      expected: { name: null, local: "bob", localQuoted: false, domain: "example.org", address: "bob@example.org" },
    },
    {
      label: "a plain addr-spec with surrounding whitespace trimmed",
      input: "  bob@example.org\t",
      expected: { name: null, address: "bob@example.org" },
    },
    {
      label: "an unquoted '.' in the display name (obs-phrase, RFC 5322 §4)",
      input: "J. Smith <j@example.com>",
      expected: { name: "J. Smith", address: "j@example.com" },
    },
    {
      label: "an atom display name",
      input: "Alice <alice@example.com>",
      expected: { name: "Alice", local: "alice", address: "alice@example.com" },
    },
    {
      label: "a display name of several atoms with the whitespace between them folded",
      input: "Alice \t Liddell-Smith <alice@example.com>",
      expected: { name: "Alice Liddell-Smith" },
    },
    {
      label: "a quoted display name containing a comma",
      input: '"Doe, John" <j@example.com>',
      expected: { name: "Doe, John", address: "j@example.com" },
    },
    {
      label: "a quoted display name with escaped quotes",
      input: '"A \\"B\\" C" <abc@example.com>',
      expected: { name: 'A "B" C' },
    },
    {
      label: "a quoted display name with an escaped backslash",
      input: '"back\\\\slash" <b@example.com>',
      expected: { name: "back\\slash" },
    },
    {
      label: "a bare angle-addr with no display name",
      input: "<bob@example.org>",
      expected: { name: null, address: "bob@example.org" },
    },
    {
      label: "an empty quoted display name as no name",
      input: '"" <bob@example.org>',
      expected: { name: null },
    },
    {
      label: "a Japanese display name written as UTF-8 atoms",
      input: "山田 太郎 <taro@example.jp>",
      expected: { name: "山田 太郎", address: "taro@example.jp" },
    },
    {
      label: "a Japanese display name in a quoted string",
      input: '"山田, 太郎" <taro@example.jp>',
      expected: { name: "山田, 太郎" },
    },
    {
      label: "a UTF-8 local part and IDN domain, flagging SMTPUTF8",
      input: "用户@例子.广告",
      expected: {
        local: "用户",
        utf8Local: true,
        localQuoted: false,
        domain: "例子.广告",
        asciiDomain: domainToASCII("例子.广告"),
        address: "用户@例子.广告",
        asciiAddress: `用户@${domainToASCII("例子.广告")}`,
      },
    },
    {
      label: "an IDN domain converted to punycode for routing",
      input: "info@bücher.example",
      expected: {
        domain: "bücher.example",
        asciiDomain: "xn--bcher-kva.example",
        utf8Local: false,
        asciiAddress: "info@xn--bcher-kva.example",
      },
    },
    {
      label: "an A-label domain, giving its Unicode form as well",
      input: "info@XN--BCHER-KVA.example",
      expected: { domain: "bücher.example", asciiDomain: "xn--bcher-kva.example" },
    },
    {
      label: "an upper-case domain, lower-casing it but keeping the local part's case",
      input: "Bob.Smith@EXAMPLE.ORG",
      expected: { local: "Bob.Smith", domain: "example.org", asciiDomain: "example.org", address: "Bob.Smith@example.org" },
    },
    {
      label: "a quoted local part with a space, keeping it quoted",
      input: '"john doe"@example.com',
      expected: { local: "john doe", localQuoted: true, address: '"john doe"@example.com' },
    },
    {
      label: "a needlessly quoted local part, writing it unquoted",
      input: '"bob"@example.com',
      expected: { local: "bob", localQuoted: false, address: "bob@example.com" },
    },
    {
      label: "a quoted local part containing '@', routing to the domain after the last unquoted '@'",
      input: '"a@x"@y.example',
      expected: { local: "a@x", localQuoted: true, domain: "y.example", asciiDomain: "y.example", address: '"a@x"@y.example' },
    },
    {
      label: "an ORCPT-smuggling quoted local part, keeping '>' and spaces inside the quotes",
      input: '<"x> ORCPT=rfc822;a"@example.com>',
      expected: {
        local: "x> ORCPT=rfc822;a",
        localQuoted: true,
        domain: "example.com",
        address: '"x> ORCPT=rfc822;a"@example.com',
        asciiAddress: '"x> ORCPT=rfc822;a"@example.com',
      },
    },
    {
      label: "a quoted local part with quoted-pairs, re-escaping them in the address",
      input: '"a\\"b\\\\c"@example.com',
      expected: { local: 'a"b\\c', localQuoted: true, address: '"a\\"b\\\\c"@example.com' },
    },
    {
      label: "a local part of exactly 64 octets",
      input: `${local64}@example.com`,
      expected: { local: local64 },
    },
    {
      label: "a quoted local part of 64 octets once unquoted",
      input: `"a b${"c".repeat(61)}"@example.com`,
      expected: { localQuoted: true },
    },
    {
      label: "a local part of 32 two-octet characters (64 octets)",
      input: `${"é".repeat(32)}@example.com`,
      expected: { utf8Local: true },
    },
    {
      label: "an address of exactly 254 octets",
      input: `${local64}@${domain189}`,
      expected: { asciiAddress: `${local64}@${domain189}` },
    },
    {
      label: "atext specials in a dot-atom local part",
      input: "a.b+tag!#$%&'*/=?^_`{|}~-@example.com",
      expected: { localQuoted: false, local: "a.b+tag!#$%&'*/=?^_`{|}~-" },
    },
  ];

  it.each(cases)("$label", ({ input, expected }) => {
    expect(ok(parseMailbox(input))).toMatchObject(expected);
  });

  it("checks that the 254-octet fixture really is 254 octets long", () => {
    expect(`${local64}@${domain189}`.length).toBe(254);
    expect(`${local64}@${domain190}`.length).toBe(255);
  });
});

describe("parseMailbox refuses", () => {
  const cases: { label: string; input: string; error: string }[] = [
    { label: "an empty string", input: "", error: "address is empty" },
    { label: "a whitespace-only string", input: "   ", error: "address is empty" },
    { label: "a CR in the display name", input: "Ali\rce <a@example.com>", error: "address contains a line break" },
    { label: "a LF in the display name", input: "Alice\n <a@example.com>", error: "address contains a line break" },
    { label: "a CRLF inside a quoted display name", input: '"A\r\nBcc: x@evil.example" <a@example.com>', error: "address contains a line break" },
    { label: "a NUL in the display name", input: "Ali\u0000ce <a@example.com>", error: "address contains a NUL character" },
    { label: "a CR in the local part", input: "a\rb@example.com", error: "address contains a line break" },
    { label: "a LF in a quoted local part", input: '"a\nb"@example.com', error: "address contains a line break" },
    { label: "a NUL in the local part", input: "a\u0000b@example.com", error: "address contains a NUL character" },
    { label: "a CR in the domain", input: "bob@exam\rple.com", error: "address contains a line break" },
    { label: "a trailing LF, instead of trimming it", input: "bob@example.com\n", error: "address contains a line break" },
    { label: "a NUL in the domain", input: "bob@example.com\u0000", error: "address contains a NUL character" },
    { label: "a C0 control character", input: "bob\u0007@example.com", error: "address contains a control character" },
    { label: "a leading vertical tab, instead of trimming it", input: "\u000Bbob@example.com", error: "address contains a control character" },
    { label: "DEL", input: "bob\u007F@example.com", error: "address contains a control character" },
    { label: "a C1 control character", input: "bob\u0085@example.com", error: "address contains a control character" },
    { label: "a tab inside a quoted local part", input: '"a\tb"@example.com', error: "quoted strings must not contain control characters" },
    { label: "an IPv4 literal domain", input: "bob@[1.2.3.4]", error: "IP-literal domains are not accepted" },
    { label: "an IPv6 literal domain", input: "bob@[IPv6:::1]", error: "IP-literal domains are not accepted" },
    { label: "an IPv6 literal domain in angle brackets", input: "Bob <bob@[IPv6:2001:db8::1]>", error: "IP-literal domains are not accepted" },
    { label: "an unterminated domain literal", input: "bob@[1.2.3.4", error: "unbalanced square brackets" },
    { label: "a dotted-quad domain", input: "bob@1.2.3.4", error: "IP address domains are not accepted" },
    { label: "a hex IPv4 domain that host parsing would expand", input: "bob@0x7f.0x1", error: "IP address domains are not accepted" },
    { label: "localhost", input: "bob@localhost", error: "localhost domains are not accepted" },
    { label: "a subdomain of localhost", input: "bob@foo.localhost", error: "localhost domains are not accepted" },
    { label: "a single-label domain", input: "bob@com", error: "domain must have at least two labels" },
    { label: "an all-numeric top-level domain", input: "bob@example.123", error: "top-level domain must not be all-numeric" },
    { label: "a missing local part", input: "@example.com", error: "local part must not be empty" },
    { label: "an empty quoted local part", input: '""@example.com', error: "local part must not be empty" },
    { label: "a missing domain", input: "bob@", error: "domain is missing" },
    { label: "a missing '@'", input: "bob.example.com", error: "address is missing '@'" },
    { label: "two unquoted '@'", input: "a@b@example.com", error: "address has more than one '@' outside quotes" },
    { label: "consecutive dots in the local part", input: "a..b@example.com", error: "local part must not contain consecutive dots" },
    { label: "a leading dot in the local part", input: ".a@example.com", error: "local part must not start or end with a dot" },
    { label: "a trailing dot in the local part", input: "a.@example.com", error: "local part must not start or end with a dot" },
    { label: "a local part of 65 octets", input: `${"a".repeat(65)}@example.com`, error: "local part is longer than 64 octets" },
    { label: "a local part of 33 two-octet characters (66 octets)", input: `${"é".repeat(33)}@example.com`, error: "local part is longer than 64 octets" },
    { label: "an address of 255 octets", input: `${local64}@${domain190}`, error: "address is longer than 254 octets" },
    { label: "a domain longer than 253 octets", input: `a@${Array(4).fill("x".repeat(63)).join(".")}`, error: "domain is longer than 253 octets" },
    { label: "a domain label of 64 characters", input: `bob@${"a".repeat(64)}.com`, error: "domain label is longer than 63 characters" },
    { label: "a domain label starting with a hyphen", input: "bob@-foo.com", error: "domain label must not start or end with a hyphen" },
    { label: "a domain label ending with a hyphen", input: "bob@foo-.com", error: "domain label must not start or end with a hyphen" },
    { label: "an empty domain label", input: "bob@foo..com", error: "domain contains an empty label" },
    { label: "a trailing dot on the domain", input: "bob@example.com.", error: "domain must not end with a dot" },
    { label: "an underscore in the domain", input: "bob@foo_bar.com", error: "domain contains an invalid character" },
    { label: "an invalid punycode label", input: "bob@xn--zz.com", error: "domain is not a valid internationalized domain name" },
    { label: "two addresses separated by a comma", input: "a@example.com, b@example.com", error: "only one address is allowed" },
    { label: "two name-addrs separated by a comma", input: "A <a@example.com>, B <b@example.com>", error: "only one address is allowed" },
    { label: "an unterminated quoted display name", input: '"Alice <a@example.com>', error: "unbalanced quotes" },
    { label: "an unterminated quoted local part", input: '"alice@example.com', error: "unbalanced quotes" },
    { label: "an unclosed angle bracket", input: "Alice <a@example.com", error: "unbalanced angle brackets" },
    { label: "a stray closing angle bracket", input: "a@example.com>", error: "unbalanced angle brackets" },
    { label: "nested angle brackets", input: "<<a@example.com>>", error: "unbalanced angle brackets" },
    { label: "a comment after the address", input: "bob@example.com (Bob)", error: "comments are not supported" },
    { label: "a comment in the display name", input: "Bob (work) <bob@example.com>", error: "comments are not supported" },
    { label: "text after the closing angle bracket", input: "Alice <a@example.com> extra", error: "unexpected text after '>'" },
    { label: "an unquoted '@' in the display name", input: "a@example.com <a@example.com>", error: "display name contains '@'; put it in quotes" },
    { label: "group syntax", input: "Team: a@example.com;", error: "group syntax is not supported" },
    { label: "an obsolete source route", input: "<@relay.example:bob@example.com>", error: "group syntax is not supported" },
    { label: "whitespace inside the addr-spec", input: "bob @example.com", error: "address contains whitespace" },
    { label: "a backslash outside quotes", input: "a\\b@example.com", error: "a backslash is only allowed inside quotes" },
    { label: "a partly quoted local part (obs-local-part)", input: 'a."b"@example.com', error: "local part contains a character that must be quoted" },
    { label: "an empty angle-addr", input: "Alice <>", error: "address is empty" },
    { label: "a lone surrogate", input: "a\uD800b@example.com", error: "address is not valid Unicode" },
  ];

  it.each(cases)("$label with '$error'", ({ input, error: expected }) => {
    expect(error(parseMailbox(input))).toBe(expected);
  });
});

describe("parseAddrSpec", () => {
  it("accepts a bare addr-spec and gives it no display name", () => {
    expect(ok(parseAddrSpec(" bob@example.org "))).toMatchObject({ name: null, address: "bob@example.org" });
  });

  it.each([
    { input: "Alice <alice@example.com>", error: "angle brackets are only allowed around the whole address" },
    { input: "<alice@example.com>", error: "angle brackets are only allowed around the whole address" },
    { input: "alice@example.com\r\n", error: "address contains a line break" },
  ])("refuses '$input' because a bare addr-spec has no name-addr form or line breaks", ({ input, error: expected }) => {
    expect(error(parseAddrSpec(input))).toBe(expected);
  });
});

describe("formatMailbox", () => {
  const alice = ok(parseMailbox("alice@example.com"));

  it.each([
    { name: null, expected: "alice@example.com" },
    { name: "Alice", expected: "Alice <alice@example.com>" },
    { name: "Alice Liddell", expected: "Alice Liddell <alice@example.com>" },
    { name: "Doe, John", expected: '"Doe, John" <alice@example.com>' },
    { name: 'A "B" C', expected: '"A \\"B\\" C" <alice@example.com>' },
    { name: "back\\slash", expected: '"back\\\\slash" <alice@example.com>' },
    { name: "J. Smith", expected: '"J. Smith" <alice@example.com>' },
    { name: "山田 太郎", expected: "山田 太郎 <alice@example.com>" },
  ])("writes name $name as $expected, quoting only when needed", ({ name, expected }) => {
    expect(formatMailbox({ ...alice, name })).toBe(expected);
  });

  it.each([
    "Alice",
    "Doe, John",
    'A "B" C',
    "back\\slash",
    "J. Smith",
    "a <b@c.example>",
    "(not a comment)",
    "x@y.example",
    "山田 太郎",
    "two  spaces",
    "=?utf-8?q?encoded?=",
  ])("round-trips the display name %j through parseMailbox", (name) => {
    for (const input of ["alice@example.com", '"x> ORCPT=rfc822;a"@example.com', "用户@例子.广告"]) {
      const m = { ...ok(parseMailbox(input)), name };
      const again = ok(parseMailbox(formatMailbox(m)));
      expect(again.name).toBe(name);
      expect(again.address).toBe(m.address);
      expect(again.asciiAddress).toBe(m.asciiAddress);
    }
  });

  it("writes the ASCII domain when asked for the ascii form", () => {
    const m = ok(parseMailbox("Info <info@bücher.example>"));
    expect(formatMailbox(m)).toBe("Info <info@bücher.example>");
    expect(formatMailbox(m, { ascii: true })).toBe("Info <info@xn--bcher-kva.example>");
  });

  it("keeps a quoted local part quoted so it survives a round trip", () => {
    const m = ok(parseMailbox('"Doe, John" <"john doe"@example.com>'));
    expect(formatMailbox(m)).toBe('"Doe, John" <"john doe"@example.com>');
  });

  it("refuses to write a hand-built name containing CRLF into a header", () => {
    expect(() => formatMailbox({ ...alice, name: "Eve\r\nBcc: x@evil.example" })).toThrow(RangeError);
  });
});

describe("repeated domains", () => {
  it("give the same mailbox fields the second time, whatever the case of the domain", () => {
    const first = parseMailbox("Bob <bob@Bücher.Example>");
    const second = parseMailbox("Bob <bob@Bücher.Example>");
    const lower = parseMailbox("bob@bücher.example");
    expect(first).toEqual(second);
    for (const r of [first, second, lower]) {
      if (!r.ok) throw new Error(r.error);
      expect(r.mailbox.asciiDomain).toBe("xn--bcher-kva.example");
      expect(r.mailbox.domain).toBe("bücher.example");
    }
  });

  it("refuse a bad domain every time, also after good ones were parsed", () => {
    expect(parseMailbox("a@example.com").ok).toBe(true);
    for (let i = 0; i < 2; i++) expect(parseMailbox("a@localhost").ok).toBe(false);
  });
});
