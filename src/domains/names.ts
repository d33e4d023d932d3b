/**
 * Sending-domain names: what a caller may register and the one form we store and compare —
 * lower-case ASCII, IDNs as punycode (RFC 5890 A-labels), no trailing dot.
 */
import net from "node:net";
import { domainToASCII } from "node:url";

/** Names that can never carry public DNS records (RFC 6761 §6.3–6.4, RFC 6762 for .local). */
const SPECIAL_USE = ["localhost", "invalid", "local"];

/** The normalised name, or why it cannot be a sending domain. */
export type NameCheck = { ok: true; name: string } | { ok: false; reason: string };

export function normalizeDomainName(input: string): NameCheck {
  const raw = input.trim().replace(/\.$/, "");
  if (raw === "") return { ok: false, reason: "must not be empty" };
  if (raw.includes("@")) return { ok: false, reason: "must be a domain name, not an email address" };
  if (/^\[.*\]$/.test(raw) || net.isIP(raw)) return { ok: false, reason: "must be a domain name, not an IP address" };
  // UTS #46 mapping (lower-casing, full-width forms) and punycode, as browsers do; "" when invalid.
  const ascii = domainToASCII(raw);
  if (ascii === "") return { ok: false, reason: "is not a valid domain name" };
  if (net.isIP(ascii)) return { ok: false, reason: "must be a domain name, not an IP address" };
  if (ascii.length > 253) return { ok: false, reason: "must be at most 253 characters (as ASCII)" };
  const labels = ascii.split(".");
  const tld = labels[labels.length - 1]!;
  if (SPECIAL_USE.includes(tld)) return { ok: false, reason: `${labels.length > 1 ? "." : ""}${tld} names cannot have public DNS records` };
  if (labels.length < 2) return { ok: false, reason: "needs at least two labels, like example.com" };
  // RFC 1035 §2.3.1 / RFC 5891 §4.2.3.1: letters, digits, inner hyphens; 1–63 octets.
  if (!labels.every((l) => /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(l))) {
    return { ok: false, reason: "is not a valid domain name (labels of letters, digits and inner hyphens)" };
  }
  // RFC 3696 §2: a top-level label is never all-numeric (that would be an IPv4 literal).
  if (/^[0-9]+$/.test(tld)) return { ok: false, reason: "must be a domain name, not an IP address" };
  return { ok: true, name: ascii };
}
