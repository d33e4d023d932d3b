/**
 * The composer against an independent reader: every case of the table is composed, checked on
 * the wire (CRLF only, no NUL, line limits, required and forbidden fields, MIME tree) and read
 * back with mailparser, which must return every field, body and attachment exactly.
 */
import { isAscii } from "node:buffer";
import { simpleParser, type AddressObject, type ParsedMail } from "mailparser";
import { describe, expect, it } from "vitest";
import type { Mailbox } from "../../src/mime/address.js";
import { composeMessage, formatDate, type ComposeInput } from "../../src/mime/compose.js";
import { mediaTypeOf } from "../../src/mime/media-types.js";
import { cases, mailbox, type ComposeCase } from "./cases.js";
import { headerLines, mimeStructure } from "./structure.js";

const read = (raw: Buffer) =>
  simpleParser(raw, { keepCidLinks: true, skipHtmlToText: true, skipTextToHtml: true, skipTextLinks: true, skipImageLinks: true });

const lf = (s: string) => s.replace(/\r\n?/g, "\n");

function addresses(field: AddressObject | AddressObject[] | undefined): { name: string; address: string }[] {
  return [field ?? []].flat().flatMap((o) => o.value.map((v) => ({ name: v.name, address: v.address ?? "" })));
}
const expected = (list: Mailbox[] | undefined) => (list ?? []).map((m) => ({ name: m.name ?? "", address: m.address }));

/** Wire rules of SPEC "Composition rules" and ENGINE-NOTES, on the raw bytes. */
function checkWire(raw: Buffer, c: ComposeCase): void {
  expect(raw.indexOf(0), "no NUL").toBe(-1);
  for (let i = raw.indexOf(0x0a); i >= 0; i = raw.indexOf(0x0a, i + 1)) expect(raw[i - 1], `bare LF at ${i}`).toBe(0x0d);
  for (let i = raw.indexOf(0x0d); i >= 0; i = raw.indexOf(0x0d, i + 1)) expect(raw[i + 1], `bare CR at ${i}`).toBe(0x0a);
  expect(raw.subarray(-2).toString(), "ends with CRLF").toBe("\r\n");
  let start = 0;
  for (let i = raw.indexOf("\r\n"); i >= 0; start = i + 2, i = raw.indexOf("\r\n", start)) expect(i - start, `line at ${start}`).toBeLessThanOrEqual(998);

  const head = headerLines(raw);
  if (!c.longHeaderLines) for (const line of head) expect(Buffer.byteLength(line), line).toBeLessThanOrEqual(78);
  const text = raw.toString("utf8");
  const headerText = `${head.join("\r\n")}\r\n`;
  expect(headerText).toMatch(/^Date: [A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000\r$/m);
  expect(headerText).toMatch(/^Message-ID: <[^<>\s]+@[^<>\s]+>\r$/m);
  expect(headerText).toMatch(/^MIME-Version: 1\.0\r$/m);
  expect(headerText).not.toMatch(/^bcc:/im);
  const bodyStart = raw.indexOf("\r\n\r\n") + 4;
  expect(isAscii(raw.subarray(bodyStart)), "the body is 7-bit: no 8BITMIME needed").toBe(true);
  if (!c.utf8) expect(isAscii(raw), "ASCII headers without SMTPUTF8").toBe(true);
  for (const re of c.raw ?? []) expect(text).toMatch(re);
  for (const re of c.notRaw ?? []) expect(text).not.toMatch(re);

  const { tree, leaves } = mimeStructure(raw);
  if (c.structure) expect(tree).toBe(c.structure);
  for (const leaf of leaves) {
    const lines = leaf.body.split("\r\n");
    if (leaf.encoding === "base64") for (const l of lines) expect(l).toMatch(/^[A-Za-z0-9+/]{0,76}={0,2}$/);
    if (leaf.encoding === "quoted-printable") for (const l of lines) expect(l.length).toBeLessThanOrEqual(76);
  }
}

/**
 * mailparser decodes encoded-words in Subject only, so a caller header is read back by handing
 * its folded field to mailparser as a Subject.
 */
async function decodedField(raw: Buffer, name: string): Promise<string | undefined> {
  const field = headerLines(raw)
    .join("\r\n")
    .split(/\r\n(?![ \t])/)
    .find((f) => f.toLowerCase().startsWith(`${name.toLowerCase()}:`));
  if (field === undefined) return undefined;
  return (await simpleParser(Buffer.from(`Subject:${field.slice(name.length + 1)}\r\n\r\n`))).subject;
}

/** mailparser must read back exactly what was put in. */
async function checkReadBack(raw: Buffer, p: ParsedMail, c: ComposeCase): Promise<void> {
  const input: ComposeInput = c.input;
  expect(p.subject).toBe(input.subject);
  expect(addresses(p.from)).toEqual(expected([input.from]));
  if (input.to.length) expect(addresses(p.to)).toEqual(expected(input.to));
  expect(addresses(p.cc)).toEqual(expected(input.cc));
  expect(addresses(p.replyTo)).toEqual(expected(input.replyTo));
  expect(p.bcc).toBeUndefined();
  expect(p.messageId).toBe(input.messageId);
  expect(p.date?.toISOString()).toBe(input.date?.toISOString());
  expect(p.headers.get("mime-version")).toBe("1.0");
  for (const [name, value] of input.headers ?? []) expect(await decodedField(raw, name)).toBe(value);

  const text = c.text ?? input.text;
  // A single-part message ends with the message's own CRLF, which a reader keeps as a newline.
  if (text !== undefined) expect([lf(text), `${lf(text)}\n`]).toContain(p.text);
  if (input.html !== undefined) expect([lf(input.html), `${lf(input.html)}\n`]).toContain(p.html);
  else expect(p.html).toBeFalsy();

  const attachments = input.attachments ?? [];
  expect(p.attachments).toHaveLength(attachments.length);
  for (const a of attachments) {
    const got = p.attachments.find((x) => x.filename === a.filename);
    expect(got, a.filename).toBeDefined();
    expect(got!.content.equals(a.content), `${a.filename} bytes`).toBe(true);
    expect(got!.contentType).toBe(mediaTypeOf(a.filename, a.contentType));
    if (a.contentId) {
      expect(got!.contentId).toBe(`<${a.contentId}>`);
      expect(got!.related).toBe(true);
    }
  }
}

describe("composeMessage", () => {
  it.each(cases)("$name", async (c) => {
    const raw = composeMessage(c.input);
    checkWire(raw, c);
    await checkReadBack(raw, await read(raw), c);
  });

  it("puts the inline image's cid reference and the image in the same related part", async () => {
    const c = cases.find((x) => x.input.attachments?.some((a) => a.contentId))!;
    const p = await read(composeMessage(c.input));
    expect(p.html).toContain('src="cid:logo@postline"');
    expect(p.attachments.find((a) => a.contentId === "<logo@postline>")?.contentDisposition).toBe("inline");
  });

  it.each([
    ["a subject with CRLF", { subject: "Hi\r\nBcc: victim@example.org" }],
    ["a subject with a bare LF", { subject: "Hi\nthere" }],
    ["a subject with NUL", { subject: "Hi\u0000" }],
    ["a display name with CRLF", { from: { ...mailbox("a@example.com"), name: "A\r\nBcc: x@example.org" } }],
    ["a caller header value with CR", { headers: [["X-Test", "a\rb"]] as [string, string][] }],
    ["a caller header that the composer owns", { headers: [["Bcc", "x@example.org"]] as [string, string][] }],
    ["a caller Content-Type header", { headers: [["Content-Type", "text/html"]] as [string, string][] }],
    ["a filename with a line break", { attachments: [{ filename: "a\r\n.pdf", content: Buffer.from("x") }] }],
  ])("refuses %s instead of stripping it", (_, override) => {
    const input: ComposeInput = { from: mailbox("a@example.com"), to: [mailbox("b@example.org")], subject: "s", text: "t", ...override };
    expect(() => composeMessage(input)).toThrow(RangeError);
  });

  it("writes List-Unsubscribe (RFC 2369) with each URI in angle brackets and List-Unsubscribe-Post (RFC 8058)", async () => {
    const url = `https://mail.example.com/unsubscribe/${"x".repeat(300)}`;
    const raw = composeMessage({
      from: mailbox("a@example.com"), to: [mailbox("b@example.org")], subject: "s", text: "t",
      listUnsubscribe: { uris: [url, "mailto:u+token@bounces.example.com"], oneClick: true },
    });
    const lines = headerLines(raw);
    const field = lines.slice(lines.findIndex((l) => l.startsWith("List-Unsubscribe:")));
    expect(field[0]).toBe(`List-Unsubscribe: <${url}>,`); // a URI is one token, never split (the line stays ≤ 998)
    expect(field[1]).toBe(" <mailto:u+token@bounces.example.com>");
    expect(field[2]).toBe("List-Unsubscribe-Post: List-Unsubscribe=One-Click");
    const list = (await read(raw)).headers.get("list") as { unsubscribe: { url: string; mail: string } };
    expect(list.unsubscribe).toEqual({ url, mail: "u+token@bounces.example.com" });
  });

  it("writes no List-Unsubscribe-Post without one-click, and refuses a URI that could break the field", () => {
    const base: ComposeInput = { from: mailbox("a@example.com"), to: [mailbox("b@example.org")], subject: "s", text: "t" };
    const plain = composeMessage({ ...base, listUnsubscribe: { uris: ["mailto:u@example.com"], oneClick: false } }).toString();
    expect(plain).toMatch(/^List-Unsubscribe: <mailto:u@example\.com>\r$/m);
    expect(plain).not.toMatch(/List-Unsubscribe-Post/);
    for (const bad of ["https://x.example/a b", "https://x.example/>, <https://evil.example/", "https://x.example/\r\nBcc: v@example.org"])
      expect(() => composeMessage({ ...base, listUnsubscribe: { uris: [bad], oneClick: true } })).toThrow(RangeError);
    expect(() => composeMessage({ ...base, headers: [["List-Unsubscribe", "<https://evil.example/>"]] })).toThrow(RangeError);
  });

  it("draws a fresh boundary per message", () => {
    const input: ComposeInput = { from: mailbox("a@example.com"), to: [mailbox("b@example.org")], subject: "s", text: "t", html: "<p>t</p>" };
    const boundary = (raw: Buffer) => /boundary="([^"]+)"/.exec(raw.toString())?.[1];
    expect(boundary(composeMessage(input))).not.toBe(boundary(composeMessage(input)));
  });

  it("defaults the date and the message id when the caller leaves them out", () => {
    const raw = composeMessage({ from: mailbox("a@bücher.example"), to: [mailbox("b@example.org")], subject: "s", text: "t" }).toString();
    expect(raw).toMatch(/^Message-ID: <[A-Za-z0-9]{24}@xn--bcher-kva\.example>\r$/m);
    expect(raw).toMatch(/^Date: /m);
  });

  it("writes UTF-8 headers when the caller says the message travels with SMTPUTF8", () => {
    const raw = composeMessage({ from: mailbox("Zoë <a@example.com>"), to: [mailbox("b@example.org")], subject: "Grüße", text: "t", utf8Headers: true });
    expect(raw.toString()).toMatch(/^Subject: Grüße\r$/m);
    expect(raw.toString()).toMatch(/^From: Zoë <a@example\.com>\r$/m);
  });
});

describe("formatDate", () => {
  it("writes each second's own date, also when called with seconds out of order", () => {
    const a = new Date("2026-11-23T12:00:00.100Z");
    const b = new Date("2026-11-23T12:00:00.900Z");
    const c = new Date("2026-11-23T12:00:01.000Z");
    expect(formatDate(a)).toBe("Mon, 23 Nov 2026 12:00:00 +0000");
    expect(formatDate(b)).toBe("Mon, 23 Nov 2026 12:00:00 +0000");
    expect(formatDate(c)).toBe("Mon, 23 Nov 2026 12:00:01 +0000");
    expect(formatDate(a)).toBe("Mon, 23 Nov 2026 12:00:00 +0000");
  });
});
