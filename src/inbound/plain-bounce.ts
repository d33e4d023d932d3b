/**
 * Non-standard bounces: the plain-text notices some MTAs still send instead of an RFC 3464
 * report (qmail-send, older Exim, Sendmail, Exchange NDRs, hosted filters). Classified
 * conservatively: "sure" only when the notice's own text (before the returned copy of the
 * message) carries a bounce marker and permanent SMTP codes that agree with each other —
 * a reply code with its enhanced status, `550 5.1.1` (RFC 3463), or qmail's `(#5.1.1)`.
 * Everything else is unsure, which the caller stores as unknown and acts on never.
 *
 * Pure: imports nothing of the application.
 */
import { clip } from "./clip.js";
import { field } from "./headers.js";
import { bodyText, mediaType, walk, type MimeEntity } from "./mime.js";

export interface PlainBounce {
  /** The reply code, null for qmail's local `(#5.x.x)` form. */
  code: number | null;
  enhanced: string;
  /** The line the code was found in (trimmed, capped). */
  text: string;
  /** Addresses named in X-Failed-Recipients, else in the notice (lower-cased, de-duplicated): the candidates for the recipient. */
  addresses: string[];
}

export type PlainBounceResult = { sure: true; bounce: PlainBounce } | { sure: false; reason: string };

/** Only the first 256 KB of the notice are read: diagnostics come first. */
const MAX_TEXT = 256 * 1024;

/** Where the notice ends and the returned message begins (qmail, Exim, Sendmail, Exchange, generic). */
const COPY_MARKERS = [
  /^--- Below this line is a copy of the message/im,
  /^-+ This is a copy of the (?:message|body)/im,
  /^[ \t]*-+ ?(?:Original|Returned|Unsent) message/im,
  /^[ \t]*Original message headers:/im,
  /^(?:Return-Path|Received|DKIM-Signature|Message-ID):/im,
];

/** Phrases of delivery-failure notices; one must appear in the Subject, From or the notice. */
const BOUNCE_MARKERS =
  /mailer-daemon|postmaster|mail delivery|delivery (?:status notification|has failed|failure|to the following)|could not be delivered|undeliver(?:able|ed)|failure notice|permanent(?:ly)? (?:error|failure|fatal)|wasn't able to deliver|was not delivered|returned mail|did not reach|cannot be reached|failed permanently|address(?:es)? failed/i;

const REPLY = /(?<![\d.])([245])\d\d[ -]#?([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])/g;
const QMAIL_LOCAL = /\(#([45])\.(\d{1,3})\.(\d{1,3})\)/g;

/** Classifies a message that has no report part. */
export function classifyPlainBounce(root: MimeEntity): PlainBounceResult {
  const part = walk(root).find((e) => mediaType(e) === "text/plain");
  if (!part) return { sure: false, reason: "no text/plain part" };
  const notice = cutAtCopy(clip(bodyText(part), MAX_TEXT));
  const header = `${field(root.headers, "subject") ?? ""}\n${field(root.headers, "from") ?? ""}`;
  if (!BOUNCE_MARKERS.test(header) && !BOUNCE_MARKERS.test(notice)) return { sure: false, reason: "no delivery-failure wording" };

  const found: { code: number | null; enhanced: string; at: number }[] = [];
  for (const m of notice.matchAll(REPLY)) {
    if (m[1] !== m[2]) continue; // RFC 3463 §2: the class must agree with the reply code
    found.push({ code: Number(m[0].slice(0, 3)), enhanced: `${m[2]}.${Number(m[3])}.${Number(m[4])}`, at: m.index });
  }
  if (found.length === 0) {
    for (const m of notice.matchAll(QMAIL_LOCAL)) found.push({ code: null, enhanced: `${m[1]}.${Number(m[2])}.${Number(m[3])}`, at: m.index });
  }
  if (found.length === 0) return { sure: false, reason: "no SMTP status codes" };
  const enhanced = new Set(found.map((f) => f.enhanced));
  if (enhanced.size > 1) return { sure: false, reason: "several different status codes" };
  const first = found[0]!;
  if (!first.enhanced.startsWith("5")) return { sure: false, reason: "temporary status codes only" };
  const code = found.find((f) => f.code !== null)?.code ?? null;
  // Exim names the failed addresses in X-Failed-Recipients; that list is more precise than the text.
  const failed = field(root.headers, "x-failed-recipients");
  const addresses = failed ? addressesIn(failed) : addressesIn(notice);
  return { sure: true, bounce: { code, enhanced: first.enhanced, text: lineAt(notice, first.at), addresses } };
}

function cutAtCopy(text: string): string {
  let end = text.length;
  for (const marker of COPY_MARKERS) {
    const m = marker.exec(text);
    if (m && m.index < end) end = m.index;
  }
  return text.slice(0, end);
}

function lineAt(text: string, at: number): string {
  const start = text.lastIndexOf("\n", at) + 1;
  const end = text.indexOf("\n", at);
  return clip(text.slice(start, end < 0 ? undefined : end).replace(/\s+/g, " ").trim(), 500);
}

const LOCAL = /[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]/;
const DOMAIN = /[A-Za-z0-9.-]/;

/**
 * Addresses in the text, found from each "@" outwards with bounded steps (a regex with an
 * unanchored `+` before "@" would be quadratic on hostile input).
 */
export function addressesIn(text: string, max = 50): string[] {
  const out = new Set<string>();
  for (let at = text.indexOf("@"); at >= 0 && out.size < max; at = text.indexOf("@", at + 1)) {
    let s = at;
    while (s > 0 && at - s < 64 && LOCAL.test(text[s - 1]!)) s--;
    let e = at + 1;
    while (e < text.length && e - at < 255 && DOMAIN.test(text[e]!)) e++;
    const local = text.slice(s, at).replace(/^\.+|\.+$/g, "");
    const domain = text.slice(at + 1, e).replace(/^[.-]+|[.-]+$/g, "").toLowerCase();
    if (local && /^[a-z0-9-]+(?:\.[a-z0-9-]+)+$/.test(domain)) out.add(`${local.toLowerCase()}@${domain}`);
  }
  return [...out];
}
