/**
 * Email address parsing for Postline.
 *
 * Parses one RFC 5322 `mailbox` (§3.4) with the RFC 6532 UTF-8 extensions, and
 * holds it to what we are willing to send to over SMTP (RFC 5321): hostname
 * domains only, SMTP length limits, no comments, groups, lists or obsolete
 * syntax. Anything dangerous (line breaks, NUL, control characters) is refused,
 * never stripped, so a parsed value can be put into a header or an SMTP command.
 */
import { domainToASCII, domainToUnicode } from "node:url";

/** One parsed mailbox: an optional display name and an address split into local part and domain. */
export interface Mailbox {
  /** Display name, decoded (quotes removed, quoted-pairs unescaped), or null when absent/empty. Never contains CR, LF or NUL. */
  name: string | null;
  /** Local part exactly as the user meant it, without surrounding quotes (quoted-pairs unescaped). */
  local: string;
  /** True when the local part needs quoting in SMTP/RFC 5322 (not a dot-atom). */
  localQuoted: boolean;
  /** Domain in Unicode form (NFC), lower-cased. */
  domain: string;
  /** Domain in ASCII (punycode A-labels), lower-cased — the routing domain used for MX lookups. */
  asciiDomain: string;
  /** `local@domain` as it should appear in RCPT TO / an addr-spec: local part re-quoted if localQuoted, Unicode domain. */
  address: string;
  /** Same but with asciiDomain. */
  asciiAddress: string;
  /** True when the local part has non-ASCII characters (needs SMTPUTF8, RFC 6531). */
  utf8Local: boolean;
}

/** Outcome of a parse: the mailbox, or a short human-readable reason for refusing the input. */
export type ParseResult = { ok: true; mailbox: Mailbox } | { ok: false; error: string };

/** Thrown inside the parser and turned into `{ ok: false }` by {@link attempt}. */
class AddressError extends Error {}

function fail(message: string): never {
  throw new AddressError(message);
}

// RFC 5322 §3.2.3 atext, plus every non-ASCII character: RFC 6532 §3.2 adds
// UTF8-non-ascii to atext (and to qtext). C1 controls are refused before this is used.
const ATEXT = "[A-Za-z0-9!#$%&'*+\\-/=?^_`{|}~\\u0080-\\u{10FFFF}]";
const ATEXT_CHAR = new RegExp(`^${ATEXT}$`, "u");
/** RFC 5322 §3.2.3 dot-atom-text: no leading, trailing or doubled dots. */
const DOT_ATOM = new RegExp(`^${ATEXT}+(?:\\.${ATEXT}+)*$`, "u");
/** A display name that can be written unquoted: atoms separated by single spaces (§3.2.5 phrase). */
const PLAIN_PHRASE = new RegExp(`^${ATEXT}+(?: ${ATEXT}+)*$`, "u");

/** Parses one RFC 5322 `mailbox` (name-addr or addr-spec), with RFC 6532 UTF-8 allowed. */
export function parseMailbox(input: string): ParseResult {
  return attempt(() => {
    const s = prepare(input);
    const marks = scan(s);
    const lt = marks.filter((m) => m.ch === "<");
    const gt = marks.filter((m) => m.ch === ">");
    if (lt.length === 0 && gt.length === 0) return parseAddr(s, null);
    // name-addr = [display-name] angle-addr (RFC 5322 §3.4): exactly one <…>, and it comes last.
    const open = lt[0]?.at ?? -1;
    const close = gt[0]?.at ?? -1;
    if (lt.length !== 1 || gt.length !== 1 || close < open) fail("unbalanced angle brackets");
    if (close !== s.length - 1) fail("unexpected text after '>'");
    const name = parsePhrase(s.slice(0, open));
    return parseAddr(s.slice(open + 1, close).trim(), name);
  });
}

/** Parses a bare addr-spec only (no display name, no angle brackets). */
export function parseAddrSpec(input: string): ParseResult {
  return attempt(() => parseAddr(prepare(input), null));
}

/**
 * Formats a mailbox for an RFC 5322 header in plain (unencoded) form: `"Name" <local@domain>` with the
 * name quoted only if needed, or bare address when name is null. (Encoded-words are another module's job.)
 * Throws a RangeError if a hand-built mailbox would put a control character (e.g. CR/LF) into the header.
 */
export function formatMailbox(m: Mailbox, opts?: { ascii?: boolean }): string {
  const address = opts?.ascii ? m.asciiAddress : m.address;
  let out = address;
  if (m.name) {
    const phrase = PLAIN_PHRASE.test(m.name) ? m.name : quote(m.name);
    out = `${phrase} <${address}>`;
  }
  if (/[\u0000-\u001F\u007F-\u009F]/.test(out)) throw new RangeError("mailbox contains a control character");
  return out;
}

function attempt(parse: () => Mailbox): ParseResult {
  try {
    return { ok: true, mailbox: parse() };
  } catch (e) {
    if (e instanceof AddressError) return { ok: false, error: e.message };
    throw e;
  }
}

/** Refuses what may never appear anywhere in the input, then trims surrounding whitespace. */
function prepare(input: string): string {
  if (/[\r\n]/.test(input)) fail("address contains a line break");
  if (input.includes("\u0000")) fail("address contains a NUL character");
  // Tab is whitespace (RFC 5234 WSP) between tokens; it is refused inside quoted strings by readQuoted.
  if (/[\u0001-\u0008\u000B-\u001F\u007F-\u009F]/.test(input)) fail("address contains a control character");
  if (/\p{Cs}/u.test(input)) fail("address is not valid Unicode"); // lone surrogates have no UTF-8 form
  const s = input.trim();
  if (s === "") fail("address is empty");
  return s;
}

/**
 * Walks the input once, skipping quoted strings, and returns where `<`, `>` and `@` occur outside them.
 * Refuses comments (RFC 5322 §3.2.2), address lists and groups (§3.4), and backslashes outside quotes.
 */
function scan(s: string): { ch: string; at: number }[] {
  const marks: { ch: string; at: number }[] = [];
  let quoted = false;
  let literal = false; // inside a [domain-literal]; refused later, but its ':' must not look like a group
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    if (quoted) {
      if (ch === "\\") i++; // quoted-pair: the next character is literal
      else if (ch === '"') quoted = false;
    } else if (literal) literal = ch !== "]";
    else if (ch === "[") literal = true;
    else if (ch === '"') quoted = true;
    else if (ch === "(" || ch === ")") fail("comments are not supported");
    else if (ch === ",") fail("only one address is allowed");
    else if (ch === ":" || ch === ";") fail("group syntax is not supported"); // also obs-route's ':'
    else if (ch === "\\") fail("a backslash is only allowed inside quotes");
    else if (ch === "<" || ch === ">" || ch === "@") marks.push({ ch, at: i });
  }
  if (quoted) fail("unbalanced quotes");
  if (literal) fail("unbalanced square brackets");
  return marks;
}

/** Decodes the quoted-string starting at `start` (RFC 5322 §3.2.4) and returns its value and the index after it. */
function readQuoted(s: string, start: number): { value: string; end: number } {
  let value = "";
  for (let i = start + 1; i < s.length; i++) {
    let ch = s[i] ?? "";
    if (ch === '"') return { value, end: i + 1 };
    if (ch === "\\") ch = s[++i] ?? fail("unbalanced quotes");
    // RFC 5321 §4.1.2 qtextSMTP / quoted-pairSMTP allow no controls, not even HTAB.
    if (ch === "\t") fail("quoted strings must not contain control characters");
    value += ch;
  }
  fail("unbalanced quotes");
}

/** Decodes a display name: RFC 5322 §3.2.5 phrase = 1*word, word = atom / quoted-string; whitespace between words becomes one space. */
function parsePhrase(text: string): string | null {
  let name = "";
  let gap = false;
  for (let i = 0; i < text.length; ) {
    const ch = String.fromCodePoint(text.codePointAt(i) ?? 0);
    if (ch === " " || ch === "\t") {
      gap = true;
      i++;
      continue;
    }
    if (gap && name !== "") name += " ";
    gap = false;
    if (ch === '"') {
      const q = readQuoted(text, i);
      name += q.value;
      i = q.end;
    } else {
      // An unquoted '.' ("J. Smith") is obs-phrase; RFC 5322 §4 says parsers must accept it.
      if (!ATEXT_CHAR.test(ch) && ch !== ".") fail(`display name contains '${ch}'; put it in quotes`);
      name += ch;
      i += ch.length;
    }
  }
  name = name.trim();
  return name === "" ? null : name;
}

/** Parses an addr-spec (RFC 5322 §3.4.1) and builds the mailbox. The domain is whatever follows the one unquoted `@`. */
function parseAddr(spec: string, name: string | null): Mailbox {
  if (spec === "") fail("address is empty");
  const marks = scan(spec);
  if (marks.some((m) => m.ch !== "@")) fail("angle brackets are only allowed around the whole address");
  if (marks.length === 0) fail("address is missing '@'");
  if (marks.length > 1) fail("address has more than one '@' outside quotes");
  const at = marks[0]?.at ?? 0;
  const local = parseLocal(spec.slice(0, at));
  const { domain, asciiDomain } = parseDomain(spec.slice(at + 1));

  // Quote only when needed: RFC 5321 §4.1.2 says senders SHOULD NOT quote a local part that is a dot-atom.
  const localQuoted = !DOT_ATOM.test(local);
  const written = localQuoted ? quote(local) : local;
  const asciiAddress = `${written}@${asciiDomain}`;
  // RFC 5321 §4.5.3.1.3: a path is at most 256 octets including "<" and ">", leaving 254 for the address.
  if (Buffer.byteLength(asciiAddress, "utf8") > 254) fail("address is longer than 254 octets");
  const utf8Local = /[^\u0000-\u007F]/.test(local);
  return { name, local, localQuoted, domain, asciiDomain, address: `${written}@${domain}`, asciiAddress, utf8Local };
}

/** Local part: a dot-atom or a single quoted-string (no obs-local-part), at most 64 octets unquoted. */
function parseLocal(raw: string): string {
  if (raw === "") fail("local part must not be empty");
  let local = raw;
  if (raw.startsWith('"')) {
    const q = readQuoted(raw, 0);
    if (q.end !== raw.length) fail("a quoted local part must be quoted as a whole");
    local = q.value;
  } else if (raw.startsWith(".") || raw.endsWith(".")) {
    fail("local part must not start or end with a dot");
  } else if (raw.includes("..")) {
    fail("local part must not contain consecutive dots");
  } else if (!DOT_ATOM.test(raw)) {
    fail(/\s/.test(raw) ? "address contains whitespace" : "local part contains a character that must be quoted");
  }
  if (local === "") fail("local part must not be empty");
  // RFC 5321 §4.5.3.1.1: 64 octets; with RFC 6531 those are UTF-8 octets.
  if (Buffer.byteLength(local, "utf8") > 64) fail("local part is longer than 64 octets");
  return local;
}

/**
 * Domains that parsed, by their raw form: traffic names the same few domains over and over, and
 * IDNA processing (domainToASCII/-Unicode) is the dearest step of an address. Bounded; cleared
 * when full. Failures are not kept: they throw, and are rare.
 */
const parsedDomains = new Map<string, { domain: string; asciiDomain: string }>();
const MAX_PARSED_DOMAINS = 1_000;

/** Domain: a public hostname only — no address literals (RFC 5321 §4.1.3), IPs, single labels or localhost. */
function parseDomain(raw: string): { domain: string; asciiDomain: string } {
  const known = parsedDomains.get(raw);
  if (known) return known;
  const parsed = parseDomainUncached(raw);
  if (parsedDomains.size >= MAX_PARSED_DOMAINS) parsedDomains.clear();
  parsedDomains.set(raw, parsed);
  return parsed;
}

function parseDomainUncached(raw: string): { domain: string; asciiDomain: string } {
  if (raw === "") fail("domain is missing");
  if (raw.startsWith("[")) fail("IP-literal domains are not accepted");
  if (/\s/.test(raw)) fail("address contains whitespace");
  if (/[^A-Za-z0-9.\-\u0080-\u{10FFFF}]/u.test(raw)) fail("domain contains an invalid character");
  if (raw.endsWith(".")) fail("domain must not end with a dot");
  refuseNumeric(raw);
  // UTS #46 / IDNA 2008 (RFC 5891) processing; "" means the name cannot be converted.
  const ascii = domainToASCII(raw).toLowerCase();
  if (ascii === "") fail("domain is not a valid internationalized domain name");
  if (ascii.endsWith(".")) fail("domain must not end with a dot");
  refuseNumeric(ascii); // WHATWG host parsing turns forms like "0x7f.0x1" into dotted quads
  const labels = ascii.split(".");
  const tld = labels[labels.length - 1] ?? "";
  if (tld === "localhost") fail("localhost domains are not accepted"); // RFC 6761 §6.3
  if (labels.length < 2) fail("domain must have at least two labels");
  for (const label of labels) {
    // RFC 1035 §2.3.1 / RFC 1123 §2.1 hostname labels (LDH), 1–63 octets.
    if (label === "") fail("domain contains an empty label");
    if (label.length > 63) fail("domain label is longer than 63 characters");
    if (label.startsWith("-") || label.endsWith("-")) fail("domain label must not start or end with a hyphen");
    if (!/^[a-z0-9-]+$/.test(label)) fail("domain contains an invalid character");
  }
  if (ascii.length > 253) fail("domain is longer than 253 octets"); // RFC 1035 §2.3.4, without the root dot
  return Object.freeze({ asciiDomain: ascii, domain: domainToUnicode(ascii).normalize("NFC").toLowerCase() });
}

/** Refuses dotted quads and all-numeric TLDs (RFC 3696 §2), which would be read as IPv4 addresses. */
function refuseNumeric(domain: string): void {
  if (/^\d+\.\d+\.\d+\.\d+$/.test(domain)) fail("IP address domains are not accepted");
  if (/(?:^|\.)\d+$/.test(domain)) fail("top-level domain must not be all-numeric");
}

/** Writes a quoted-string, escaping `"` and `\` as quoted-pairs (RFC 5322 §3.2.4). */
function quote(s: string): string {
  return `"${s.replace(/["\\]/g, "\\$&")}"`;
}
