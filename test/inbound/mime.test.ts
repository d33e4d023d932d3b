import { describe, expect, it } from "vitest";
import { parseContentType, parseFieldGroups, parseFields } from "../../src/inbound/headers.js";
import { bodyText, decodeBody, decodeQuotedPrintable, MAX_DEPTH, MAX_PARTS, mediaType, parseMime, splitMultipart, walk } from "../../src/inbound/mime.js";

describe("header fields", () => {
  it("unfolds continuation lines and lower-cases names (RFC 5322 §2.2.3)", () => {
    const f = parseFields("Subject: a\r\n  long\r\n\tsubject\r\nX-Empty:\r\nTo: b@x.test");
    expect(f).toEqual([
      { name: "subject", value: "a  long\tsubject" },
      { name: "x-empty", value: "" },
      { name: "to", value: "b@x.test" },
    ]);
  });

  it("skips lines that are no field instead of failing", () => {
    const f = parseFields("  orphan continuation\r\nthis is junk\r\n: no name\r\nbad name: x\r\nGood: yes\nLF-only: too");
    expect(f).toEqual([
      { name: "good", value: "yes" },
      { name: "lf-only", value: "too" },
    ]);
  });

  it("splits field groups at empty lines, whitespace-only lines included", () => {
    const g = parseFieldGroups("\r\nA: 1\r\nB: 2\r\n\r\nC: 3\r\n \r\nD: 4\r\n\r\n\r\n");
    expect(g.map((x) => x.map((f) => f.name))).toEqual([["a", "b"], ["c"], ["d"]]);
  });

  it.each([
    ['multipart/report; report-type=delivery-status;\r\n\tboundary="a/b=c"', "multipart", "report", { "report-type": "delivery-status", boundary: "a/b=c" }],
    ['Text/Plain; Charset="UTF-8"; format=flowed', "text", "plain", { charset: "UTF-8", format: "flowed" }],
    ['multipart/mixed; boundary="q\\"uoted"', "multipart", "mixed", { boundary: 'q"uoted' }],
    ["garbage", "text", "plain", {}],
    [undefined, "text", "plain", {}],
  ])("parses Content-Type %j", (value, type, subtype, params) => {
    const ct = parseContentType(value);
    expect(ct).toMatchObject({ type, subtype });
    expect({ ...ct.params }).toEqual(params);
  });
});

describe("the MIME reader", () => {
  const nested = [
    "Content-Type: multipart/mixed; boundary=outer",
    "",
    "preamble --outer is not a delimiter here",
    "--outer",
    "Content-Type: multipart/alternative; boundary=\"inner\"",
    "",
    "--inner",
    "Content-Type: text/plain; charset=iso-8859-1",
    "Content-Transfer-Encoding: quoted-printable",
    "",
    "caf=E9 =",
    "soft",
    "--inner  ",
    "Content-Type: text/html",
    "Content-Transfer-Encoding: base64",
    "",
    "PGI+aGk8L2I+",
    "--inner--",
    "--outer",
    "",
    "default type part",
    "--outer--",
    "epilogue",
  ].join("\r\n");

  it("splits nested multiparts per RFC 2046 §5.1.1 and decodes the bodies", () => {
    const root = parseMime(Buffer.from(nested, "latin1"));
    expect(walk(root).map(mediaType)).toEqual(["multipart/mixed", "multipart/alternative", "text/plain", "text/html", "text/plain"]);
    const [alt, plain] = root.parts as [NonNullable<(typeof root.parts)[0]>, NonNullable<(typeof root.parts)[0]>];
    expect(bodyText(alt.parts[0]!)).toBe("café soft");
    expect(decodeBody(alt.parts[1]!).toString()).toBe("<b>hi</b>");
    expect(plain.body).toBe("default type part");
  });

  it("keeps the line break before a delimiter out of the part and tolerates a missing close delimiter", () => {
    expect(splitMultipart("--b\r\n\r\none\r\n\r\n--b\r\n\r\ntwo", "b")).toEqual(["\r\none\r\n", "\r\ntwo"]);
    expect(splitMultipart("--b\n\nlf only\n--b--\n", "b")).toEqual(["\nlf only"]);
    expect(splitMultipart("no delimiter at all", "b")).toEqual([]);
    expect(splitMultipart("x--b\r\n--bc\r\n", "b")).toEqual([]);
  });

  it("decodes quoted-printable and leaves broken escapes literal (RFC 2045 §6.7)", () => {
    expect(decodeQuotedPrintable("a=3Db=\r\nc =ZZ =4").toString("latin1")).toBe("a=bc =ZZ =4");
  });

  it("falls back to UTF-8 for an unknown charset", () => {
    const root = parseMime("Content-Type: text/plain; charset=x-unknown-cs\r\n\r\nh\xc3\xa9");
    expect(bodyText(root)).toBe("hé");
  });

  it("bounds work on hostile nesting and part counts", () => {
    let deep = "x";
    for (let i = 0; i < 50; i++) deep = `Content-Type: multipart/mixed; boundary=b${i}\r\n\r\n--b${i}\r\n${deep}\r\n--b${i}--`;
    expect(walk(parseMime(deep)).length).toBeLessThanOrEqual(MAX_DEPTH + 1);
    const many = `Content-Type: multipart/mixed; boundary=z\r\n\r\n${"--z\r\n\r\np\r\n".repeat(10_000)}--z--`;
    const started = Date.now();
    expect(walk(parseMime(many)).length).toBeLessThanOrEqual(MAX_PARTS);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it("reads junk without throwing", () => {
    for (const junk of [Buffer.alloc(0), Buffer.from([0, 0, 0xff, 0x0d, 0x0d]), Buffer.from("\r\n\r\n\r\n"), Buffer.from("Content-Type: multipart/report\r\n\r\n--\r\n")]) {
      expect(() => walk(parseMime(junk))).not.toThrow();
    }
  });
});
