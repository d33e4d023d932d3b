/**
 * Header encoding and folding: RFC 2047 encoded-words (≤ 75 characters, whole characters only,
 * only where §5 allows), RFC 5322 folding (≤ 78 where tokens allow, never > 998), phrases.
 */
import { describe, expect, it } from "vitest";
import { encodeWords } from "../../src/mime/encoded-words.js";
import { FieldWriter } from "../../src/mime/fold.js";
import { encodePhrase, encodeUnstructured, phraseTokens, writeMailboxes, writeUnstructured } from "../../src/mime/headers.js";
import { mailbox } from "./cases.js";

/** Decodes one encoded-word by the RFC 2047 rules, or returns null when it is not one. */
function decodeWord(word: string): Buffer | null {
  const m = /^=\?utf-8\?([BQ])\?([^?]*)\?=$/.exec(word);
  if (!m) return null;
  if (m[1] === "B") return Buffer.from(m[2]!, "base64");
  return Buffer.from(m[2]!.replace(/_/g, " ").replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))), "latin1");
}

/** A field's value unfolded and decoded (RFC 5322 §2.2.3, RFC 2047 §6.2: whitespace between two encoded-words is dropped). */
function decodeField(field: string): string {
  const word = /=\?utf-8\?[BQ]\?[^?]*\?=/.source;
  return field
    .replace(/\r\n/g, "")
    .replace(/^[^:]*: /, "")
    .replace(new RegExp(`(${word})(?:[ \\t]+(?=${word}))?`, "g"), (w: string, enc: string) => decodeWord(enc)!.toString("utf8"));
}

const samples = [
  ["Japanese", "お知らせ：来週の会議は中止になりました（詳細は本文をご覧ください）"],
  ["emoji with surrogate pairs", "🎉🎊🥳🍰🍾🎈🎁🎂🎆🎇✨🎃🎄🎋🎍🎎🎏🎐🎑🧧🎀🎗🎟🎫"],
  ["mostly Latin", "Grüße aus München, schöne Grüße an alle Kolleginnen und Kollegen"],
  ["mixed scripts", "Привет, мир! Hello, world! مرحبا بالعالم 你好，世界"],
  ["ASCII specials", 'a_b=c?d "quoted" (paren) <angle>'],
] as const;

describe("encodeWords", () => {
  it.each(samples)("splits %s into words of whole characters, each ≤ 75 characters", (_, text) => {
    const words = encodeWords(text);
    const bytes: Buffer[] = [];
    for (const w of words) {
      expect(w.length).toBeLessThanOrEqual(75);
      const decoded = decodeWord(w);
      expect(decoded, w).not.toBeNull();
      // Each word alone is valid UTF-8: no sequence is cut (RFC 2047 §5 (3)).
      expect(Buffer.from(decoded!.toString("utf8"), "utf8").equals(decoded!), w).toBe(true);
      bytes.push(decoded!);
    }
    expect(Buffer.concat(bytes).toString("utf8")).toBe(text);
  });

  it.each([20, 30, 45])("sizes the first word to the %i characters left on the line", (room) => {
    const [first] = encodeWords(samples[0][1], room);
    expect(first!.length).toBeLessThanOrEqual(room);
  });

  it("uses Q for mostly-ASCII text and B for the rest", () => {
    expect(encodeWords("Bäcker")).toEqual(["=?utf-8?Q?B=C3=A4cker?="]);
    expect(encodeWords("日本")).toEqual(["=?utf-8?B?5pel5pys?="]);
  });
});

describe("encodeUnstructured", () => {
  it.each([
    ["plain ASCII as it is", "Hello world", "Hello world"],
    ["runs of spaces as they are", "a  b   c", "a  b   c"],
    ["a tab as it is", "a\tb", "a\tb"],
    ["only the non-ASCII word", "Hello 世界 again", "Hello =?utf-8?B?5LiW55WM?= again"],
    ["neighbouring non-ASCII words as one span, the space inside", "Grüße Köln", `=?utf-8?B?${Buffer.from("Grüße Köln").toString("base64")}?=`],
    ["ASCII words between non-ASCII ones raw", "Grüße aus Köln", "=?utf-8?B?R3LDvMOfZQ==?= aus =?utf-8?B?S8O2bG4=?="],
    ["a word that looks like an encoded-word", "see =?utf-8?B?SGk=?=", "see =?utf-8?B?PT91dGYtOD9CP1NHaz0/PQ==?="],
    ["an empty subject as empty", "", ""],
  ])("writes %s", (_, text, expected) => {
    expect(encodeUnstructured(text)).toBe(expected);
  });

  it("keeps UTF-8 raw when the message has UTF-8 headers", () => {
    expect(encodeUnstructured("Grüße 東京", { utf8: true })).toBe("Grüße 東京");
  });

  it.each([["NEL (U+0085)", "\u0085"], ["LINE SEPARATOR (U+2028)", "\u2028"], ["PARAGRAPH SEPARATOR (U+2029)", "\u2029"], ["a C1 control (U+009B)", "\u009b"]])(
    "encodes a word holding %s even in UTF-8 headers (readers may take it for a line break)",
    (_, ch) => {
      const out = encodeUnstructured(`Grüße a${ch}b 東京`, { utf8: true });
      expect(out).not.toContain(ch);
      expect(out).toMatch(/^Grüße =\?utf-8\?[BQ]\?[^?]+\?= 東京$/);
      expect(phraseTokens(`Zoë${ch}`, true).join(" ")).not.toContain(ch);
    },
  );

  it("encodes a subject word longer than a line so every line stays ≤ 78", () => {
    const w = new FieldWriter("Subject");
    writeUnstructured(w, `see ${"https://example.com/".repeat(10)} now`, { maxRaw: 77 });
    for (const line of w.toString().split("\r\n")) expect(line.length).toBeLessThanOrEqual(78);
  });

  it.each([
    ["encoded words, then 981 spaces (a 500 before)", "€".repeat(16) + " ".repeat(981) + "x"],
    ["accented words, then 960 spaces", "é".repeat(26) + " ".repeat(960) + "x"],
    ["look-alike encoded words, then spaces", "=? a ".repeat(5) + " ".repeat(960) + "x"],
    ["two words 996 spaces apart", `a${" ".repeat(996)}b`],
    ["leading, inner and trailing runs", "  lead  €  mid   trail   "],
  ])("writes a run of spaces with its next word: %s (no line > 998, none only whitespace, decoded back exactly)", (_, text) => {
    const w = new FieldWriter("X-Note");
    writeUnstructured(w, text);
    const field = w.toString();
    for (const line of field.split("\r\n")) {
      expect(Buffer.byteLength(line)).toBeLessThanOrEqual(998);
      expect(line).not.toMatch(/^\s*$/);
    }
    expect(decodeField(field)).toBe(text);
  });

  it("keeps a long caller-header token raw on its own line", () => {
    const token = "t".repeat(300);
    const w = new FieldWriter("X-Token");
    writeUnstructured(w, `a ${token}`);
    expect(w.toString()).toBe(`X-Token: a\r\n ${token}`);
  });
});

describe("phraseTokens", () => {
  it.each([
    ["atoms as they are", "John Smith", false, ["John", "Smith"]],
    ["a comma in quotes", "Smith, John", false, ['"Smith, John"']],
    ["quotes and backslashes escaped", 'a"b\\c', false, ['"a\\"b\\\\c"']],
    ["a dot in quotes (no obs-phrase)", "J. Smith", false, ['"J. Smith"']],
    ["non-ASCII as encoded-words", "Zoë", false, ["=?utf-8?Q?Zo=C3=AB?="]],
    ["non-ASCII raw under UTF-8 headers", "Zoë Ångström", true, ["Zoë", "Ångström"]],
    ["non-ASCII with specials quoted under UTF-8 headers", "Müller, Jörg", true, ['"Müller, Jörg"']],
    ["a quoted string too long for a line as encoded-words", `Team, ${"x".repeat(80)}`, false, null],
  ] as const)("writes %s", (_, name, utf8, expected) => {
    const tokens = phraseTokens(name, utf8);
    if (expected) expect(tokens).toEqual(expected);
    else {
      expect(tokens.every((t) => t.startsWith("=?utf-8?") && t.length <= 75)).toBe(true);
      expect(encodePhrase(name)).not.toContain('"');
    }
  });
});

describe("FieldWriter", () => {
  it("folds before the token that would pass 78 octets", () => {
    const w = new FieldWriter("X");
    for (let i = 0; i < 30; i++) w.add(`word${i}`);
    const lines = w.toString().split("\r\n");
    expect(lines.length).toBeGreaterThan(1);
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(78);
    expect(w.toString().replace(/\r\n/g, "")).toBe(`X: ${Array.from({ length: 30 }, (_, i) => `word${i}`).join(" ")}`);
  });

  it("never leaves a line of only whitespace", () => {
    const w = new FieldWriter("Subject");
    w.add("x".repeat(68));
    w.add("");
    w.add("");
    expect(w.toString().split("\r\n").some((l) => /^\s*$/.test(l))).toBe(false);
  });

  it("moves a token too long for the name's line to the next one, and refuses one that fits no line", () => {
    const w = new FieldWriter("X-Long");
    w.add("y".repeat(995));
    expect(w.toString()).toBe(`X-Long:\r\n ${"y".repeat(995)}`);
    expect(() => new FieldWriter("X").add("z".repeat(998))).toThrow(RangeError);
  });
});

describe("writeMailboxes", () => {
  it("folds between addresses and keeps each mailbox whole on a line", () => {
    const w = new FieldWriter("To");
    const list = Array.from({ length: 12 }, (_, i) => mailbox(`Person Number ${i} <person.number.${i}@example.org>`));
    writeMailboxes(w, list);
    for (const line of w.toString().split("\r\n")) {
      expect(line.length).toBeLessThanOrEqual(78);
      expect(line).toMatch(/^(To:)? Person Number \d+ <person\.number\.\d+@example\.org>,?$/);
    }
  });

  it("sizes an encoded display name's first word to the room after the field name, so that line stays ≤ 78 too", () => {
    const name = "Zoë Ångström-Øresund, Kundendienst für Grüße und Schöne Sachen";
    for (const field of ["Reply-To", "To", "Disposition-Notification-To"]) {
      const w = new FieldWriter(field);
      writeMailboxes(w, [mailbox(`${JSON.stringify(name)} <help@example.com>`), mailbox(`${JSON.stringify(name)} <other@example.com>`)]);
      for (const line of w.toString().split("\r\n")) expect([field, line, line.length <= 78]).toEqual([field, line, true]);
    }
  });

  it("refuses a UTF-8 local part in ASCII headers", () => {
    expect(() => writeMailboxes(new FieldWriter("To"), [mailbox("jürgen@example.com")])).toThrow(RangeError);
  });
});
