/**
 * The composer's case table, shared by test/mime/compose.test.ts (read back with mailparser)
 * and test/dkim/sign.test.ts (verified with mailauth). Each case says what it exercises; the
 * optional expectations are checked against the raw bytes on top of the generic oracle checks.
 */
import { randomBytes } from "node:crypto";
import { parseMailbox, type Mailbox } from "../../src/mime/address.js";
import type { ComposeInput } from "../../src/mime/compose.js";

export function mailbox(s: string): Mailbox {
  const r = parseMailbox(s);
  if (!r.ok) throw new Error(`${s}: ${r.error}`);
  return r.mailbox;
}

export interface ComposeCase {
  name: string;
  input: ComposeInput;
  /** MIME tree as `type:encoding` leaves and `multipart/x(…)` nodes. */
  structure?: string;
  /** Patterns the raw message must contain / must not contain. */
  raw?: RegExp[];
  notRaw?: RegExp[];
  /** Headers are RFC 6532 UTF-8 (otherwise the whole message must be ASCII). */
  utf8?: boolean;
  /** Header lines that may pass 78 octets (unbreakable raw tokens); 998 always holds. */
  longHeaderLines?: boolean;
  /** The text/plain the reader sees when it differs from input.text (html-only messages). */
  text?: string;
}

const base = {
  from: mailbox("Alice <alice@example.com>"),
  to: [mailbox("bob@example.org")],
  cc: [],
  replyTo: [],
  attachments: [],
  headers: [] as [string, string][],
  date: new Date("2026-11-23T12:00:00Z"),
  messageId: "<case.0001@example.com>",
};

const png = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==",
  "base64",
);
const fiveMegabytes = randomBytes(5 * 1024 * 1024);
const longLine = "lorem-ipsum-".repeat(417).slice(0, 5000);
const longHtmlLine = `<p>${"<span>wide</span>".repeat(118)}</p>`.slice(0, 2000);

export const cases: ComposeCase[] = [
  {
    name: "an ASCII text message is a single text/plain part in 7bit",
    input: { ...base, subject: "Hello", text: "Hi Bob,\n\nsee you soon.\n-- \nAlice" },
    structure: "text/plain:7bit",
    raw: [/^Content-Type: text\/plain; charset=utf-8\r$/m],
  },
  {
    name: "a Japanese subject and body travel as encoded-words and base64",
    input: { ...base, subject: "お知らせ：来週の会議は中止になりました（詳細は本文をご覧ください）", text: "こんにちは。\n来週の会議は中止です。" },
    structure: "text/plain:base64",
    raw: [/^Subject: =\?utf-8\?B\?/m],
  },
  {
    name: "an emoji subject keeps every surrogate pair whole",
    input: { ...base, subject: "🎉🎊 Party time 🥳 — don't miss it! 🍰🍾🎈🎁🎂🎆🎇✨🎃🎄🎋🎍🎎🎏🎐🎑🧧🎀🎗🎟🎫", text: "See you at the party on Saturday 🎉" },
    structure: "text/plain:quoted-printable",
  },
  {
    name: "display names with quotes, commas and non-ASCII round-trip exactly",
    input: {
      ...base,
      from: mailbox('"Smith, John \\"JJ\\"" <john@example.com>'),
      to: [mailbox('"Doe, Jane" <jane@example.org>'), mailbox("Zoë Ångström <zoe@example.net>"), mailbox("bare@example.org")],
      cc: [mailbox("\"O'Brien (Sales)\" <sales@example.com>"), mailbox("Иван Петров <ivan@example.ru>")],
      replyTo: [mailbox('"Help, Desk" <help@example.com>')],
      subject: "Names",
      text: "names",
    },
    raw: [/^From: "Smith, John \\"JJ\\"" <john@example\.com>\r$/m, /^Reply-To: "Help, Desk" <help@example\.com>\r$/m],
  },
  {
    name: "a 5000-character unbroken text line and 2000-character html lines become quoted-printable",
    input: { ...base, subject: "Long lines", text: `${longLine}\n${longLine}\nend`, html: `${longHtmlLine}\n${longHtmlLine}` },
    structure: "multipart/alternative(text/plain:quoted-printable,text/html:quoted-printable)",
  },
  {
    name: "a 5 MB attachment comes back byte for byte",
    input: { ...base, subject: "Big file", text: "attached", attachments: [{ filename: "data.bin", content: fiveMegabytes, contentType: "application/octet-stream" }] },
    structure: "multipart/mixed(text/plain:7bit,application/octet-stream:base64)",
  },
  {
    name: "an inline image with a content id sits in multipart/related next to the html",
    input: {
      ...base,
      subject: "Logo",
      text: "Our logo",
      html: '<p>Our logo: <img src="cid:logo@postline" alt="logo"></p>',
      attachments: [
        { filename: "logo.png", content: png, contentType: "image/png", contentId: "logo@postline" },
        { filename: "terms.pdf", content: Buffer.from("%PDF-1.4 fake"), contentType: "application/pdf" },
      ],
    },
    structure:
      "multipart/mixed(multipart/alternative(text/plain:7bit,multipart/related(text/html:7bit,image/png:base64)),application/pdf:base64)",
    raw: [/^Content-ID: <logo@postline>\r$/m, /^Content-Disposition: inline; filename=logo\.png\r$/m],
  },
  {
    name: "a body starting with From and lines of a single dot or a leading dot survive unchanged",
    input: { ...base, subject: "Dots", text: "From the desk of Alice\n.\n.hidden line\n..two dots\nFrom here on" },
    structure: "text/plain:7bit",
  },
  {
    name: "the same dots and From lines survive quoted-printable",
    input: { ...base, subject: "Dots QP", text: "From Zürich\n.\n.hidden Café line\nFrom here on" },
    structure: "text/plain:quoted-printable",
    raw: [/^=46rom Z=C3=BCrich\r$/m, /^=2E\r$/m],
  },
  {
    name: "non-ASCII filenames use RFC 2231 with an ASCII fallback",
    input: {
      ...base,
      subject: "Files",
      text: "files",
      attachments: [
        { filename: "résumé.pdf", content: Buffer.from("resume"), contentType: "application/pdf" },
        { filename: "日本語のとても長いファイル名の添付ファイルをテストするためのドキュメント（最終版）.docx", content: Buffer.from("docx") },
        { filename: 'quote"and\\slash.txt', content: Buffer.from("q\nr\n"), contentType: "text/plain" },
      ],
    },
    raw: [/filename="resume\.pdf"/, /filename\*=utf-8''r%C3%A9sum%C3%A9\.pdf/, /filename\*1\*=/],
  },
  {
    name: "a UTF-8 local part switches to raw UTF-8 headers (SMTPUTF8, RFC 6532)",
    input: {
      ...base,
      from: mailbox("Jürgen Müller <jürgen@münchen.example>"),
      to: [mailbox("用户 <用户@例子.广告>"), mailbox("plain@example.org")],
      subject: "Grüße aus München — 東京",
      text: "Grüße",
    },
    utf8: true,
    raw: [/^From: Jürgen Müller <jürgen@münchen\.example>\r$/m, /^Subject: Grüße aus München — 東京\r$/m, /^To: 用户 <用户@例子\.广告>,/m],
    notRaw: [/=\?utf-8\?/i, /xn--/],
  },
  {
    name: "an IDN domain becomes punycode in the headers of an ASCII message",
    input: { ...base, from: mailbox("Bäcker <info@bäckerei.example>"), to: [mailbox("kunde@müller.de")], subject: "Brot", text: "Brot" },
    raw: [/^From: =\?utf-8\?Q\?B=C3=A4cker\?= <info@xn--bckerei-5wa\.example>\r$/m, /^To: kunde@xn--mller-kva\.de\r$/m],
  },
  {
    name: "an html-only message gets a generated text alternative",
    input: { ...base, subject: "News", html: '<html><head><style>p{}</style></head><body><h1>News</h1><p>Read <a href="https://example.com/x">this</a>.</p><ul><li>one</li><li>two</li></ul></body></html>' },
    structure: "multipart/alternative(text/plain:7bit,text/html:7bit)",
    text: "News\n\nRead this (https://example.com/x).\n\n- one\n- two",
  },
  {
    name: "caller headers are written, encoded when non-ASCII",
    input: { ...base, subject: "Headers", text: "h", headers: [["X-Campaign", "42"], ["X-Note", "café crème"], ["X-Long", Array.from({ length: 40 }, (_, i) => `word${i}`).join(" ")]] },
    raw: [/^X-Campaign: 42\r$/m, /^X-Note: =\?utf-8\?B\?Y2Fmw6kgY3LDqG1l\?=\r$/m],
  },
  {
    name: "bare CR and bare LF in the text become CRLF",
    input: { ...base, subject: "Line ends", text: "one\rtwo\nthree\r\nfour\n\rfive" },
    structure: "text/plain:7bit",
    text: "one\ntwo\nthree\nfour\n\nfive",
  },
  {
    name: "fifty recipients fold between addresses",
    input: { ...base, subject: "Many", text: "many", to: Array.from({ length: 50 }, (_, i) => mailbox(`Person ${i} <person${i}@example.org>`)) },
  },
  {
    name: "a 990-character subject without spaces is encoded so its lines stay short",
    input: { ...base, subject: "x".repeat(990), text: "long subject" },
  },
  {
    name: "text that looks like an encoded-word is encoded so it reads back literally",
    input: { ...base, subject: "Literal =?utf-8?B?SGk=?= text", text: "=?utf-8?B?SGk=?=" },
  },
  {
    name: "a NUL in the text is escaped, never sent raw",
    input: { ...base, subject: "NUL", text: "a\u0000b" },
    structure: "text/plain:quoted-printable",
    raw: [/^a=00b/m],
  },
  {
    name: "a Bcc-only message says undisclosed recipients and never writes Bcc",
    input: { ...base, to: [], subject: "Secret", text: "bcc" },
    raw: [/^To: undisclosed-recipients:;\r$/m],
  },
];
