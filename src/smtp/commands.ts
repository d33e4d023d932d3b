/**
 * Command-line building and the checks that keep caller data from smuggling commands or
 * parameters (CVE-2021-23400, GHSA-mm7p-fcc7-pg87): addresses and the HELO name are refused,
 * never "cleaned", when they hold CR, LF, NUL, other controls, or `<`, `>` or white space outside
 * a quoted local part. Pure.
 */
import { domainToASCII } from "node:url";
import type { Reply } from "./reply.js";

/** RFC 5321 §4.5.3.1.4: a command line is at most 512 octets, CRLF included. */
export const MAX_COMMAND_LINE = 512;

/**
 * Why `address` cannot go between `<` and `>` in MAIL FROM / RCPT TO, or null if it can.
 * `""` is the null reverse-path (bounces, RFC 5321 §4.5.5) and only valid when `allowEmpty`.
 */
export function addressProblem(address: string, allowEmpty: boolean): string | null {
  if (address === "") return allowEmpty ? null : "empty address";
  // Controls are refused everywhere, even inside quotes or escaped: nothing may end the line.
  if (/[\x00-\x1f\x7f]/.test(address)) return "address contains a control character (CR, LF, NUL, …)";
  let domainStart: number;
  if (address.startsWith('"')) {
    let i = 1;
    for (; i < address.length; i++) {
      const c = address[i];
      if (c === "\\") i++;
      else if (c === '"') break;
    }
    if (i >= address.length) return "unterminated quoted local part";
    if (address[i + 1] !== "@") return "quoted local part not followed by @";
    domainStart = i + 2;
  } else {
    const at = address.indexOf("@");
    if (at <= 0) return "address has no local part or no @";
    if (/[<>"\s]/.test(address.slice(0, at))) return "local part contains <, >, a quote or white space";
    domainStart = at + 1;
  }
  const domain = address.slice(domainStart);
  if (domain === "") return "address has no domain";
  if (/[<>"\s@\\]/.test(domain)) return "domain contains <, >, @, a quote, a backslash or white space";
  return null;
}

/** Why `name` cannot follow EHLO/HELO, or null: printable ASCII without `<`, `>`, at most 255. */
export function heloNameProblem(name: string): string | null {
  if (name === "") return "empty HELO name";
  if (name.length > 255) return "HELO name longer than 255 characters";
  if (!/^[\x21-\x7e]+$/.test(name)) return "HELO name contains white space, a control character or non-ASCII";
  if (/[<>]/.test(name)) return "HELO name contains < or >";
  return null;
}

export const isAscii = (s: string): boolean => /^[\x00-\x7f]*$/.test(s);

/** Octets of a command line on the wire, CRLF included. */
export const lineOctets = (line: string): number => Buffer.byteLength(line, "utf8") + 2;

/**
 * EHLO keywords and their parameters (RFC 5321 §4.1.1.1), keywords upper-cased. The old
 * `AUTH=LOGIN PLAIN` form is merged into `AUTH`.
 */
export function parseExtensions(reply: Reply): Map<string, string> {
  const ext = new Map<string, string>();
  for (const line of reply.lines.slice(1)) {
    const m = /^([A-Za-z0-9][A-Za-z0-9-]*)(?:[ =](.*))?$/.exec(line.trim());
    if (!m || !m[1]) continue;
    const keyword = m[1].toUpperCase();
    const params = (m[2] ?? "").trim();
    const before = ext.get(keyword);
    if (before && keyword === "AUTH") {
      const merged = new Set([...before.split(/\s+/), ...params.split(/\s+/)].filter(Boolean));
      ext.set(keyword, [...merged].join(" "));
    } else {
      ext.set(keyword, params);
    }
  }
  return ext;
}

/** RFC 1870: the advertised SIZE limit; 0 means advertised without a fixed limit; null absent. */
export function sizeLimit(ext: ReadonlyMap<string, string>): number | null {
  const v = ext.get("SIZE");
  if (v === undefined) return null;
  const n = /^\d+$/.test(v) ? Number(v) : 0;
  return Number.isSafeInteger(n) ? n : 0;
}

export interface MailParams {
  size: number | null;
  eightBit: boolean;
  smtputf8: boolean;
}

/** `MAIL FROM:<from>` with SIZE (RFC 1870), BODY=8BITMIME (RFC 6152) and SMTPUTF8 (RFC 6531). */
export function mailLine(from: string, p: MailParams): string {
  let line = `MAIL FROM:<${from}>`;
  if (p.size !== null) line += ` SIZE=${p.size}`;
  if (p.eightBit) line += " BODY=8BITMIME";
  if (p.smtputf8) line += " SMTPUTF8";
  return line;
}

export const rcptLine = (to: string): string => `RCPT TO:<${to}>`;

/**
 * `local@domain` for the envelope: with an ASCII local part, the domain in A-labels (punycode),
 * which any server takes; a UTF-8 local part stays as it is (it needs SMTPUTF8 whatever the
 * domain, RFC 6531 §3.2). An address whose domain does not convert is left alone.
 */
export function wireAddress(address: string): string {
  const at = address.lastIndexOf("@");
  if (at < 0 || isAscii(address)) return address;
  const local = address.slice(0, at);
  if (!isAscii(local)) return address;
  const ascii = domainToASCII(address.slice(at + 1));
  return ascii ? `${local}@${ascii}` : address;
}
