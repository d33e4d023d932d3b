/**
 * The destination address guard (SSRF): before connecting to an MX address we check it is a
 * public unicast address. Callers resolve once, check every address, and then connect to that
 * same IP literal, so DNS rebinding has no second resolution to exploit.
 * `DELIVERY_ALLOW_NETWORKS` is the only way around the guard (e.g. a test MX on 127.0.0.1).
 */
import { isIP } from "node:net";
import ipaddr from "ipaddr.js";

type Address = ipaddr.IPv4 | ipaddr.IPv6;
export type Cidr = [Address, number];

export type GuardResult = { ok: true } | { ok: false; reason: string };

/** [CIDR, what such an address is]. Narrower ranges first when they overlap. */
const REFUSED_V4: readonly (readonly [string, string])[] = [
  ["0.0.0.0/8", 'a "this network" address'], // RFC 1122 §3.2.1.3
  ["10.0.0.0/8", "a private address"], // RFC 1918
  ["100.64.0.0/10", "a shared (carrier-grade NAT) address"], // RFC 6598
  ["127.0.0.0/8", "a loopback address"], // RFC 1122 §3.2.1.3
  ["169.254.0.0/16", "a link-local address"], // RFC 3927
  ["172.16.0.0/12", "a private address"], // RFC 1918
  ["192.0.0.0/24", "an IETF protocol assignments address"], // RFC 6890
  ["192.0.2.0/24", "a documentation address"], // RFC 5737 TEST-NET-1
  ["192.168.0.0/16", "a private address"], // RFC 1918
  ["198.18.0.0/15", "a benchmarking address"], // RFC 2544
  ["198.51.100.0/24", "a documentation address"], // RFC 5737 TEST-NET-2
  ["203.0.113.0/24", "a documentation address"], // RFC 5737 TEST-NET-3
  ["224.0.0.0/4", "a multicast address"], // RFC 5771
  ["255.255.255.255/32", "the limited broadcast address"], // RFC 919
  ["240.0.0.0/4", "a reserved address"], // RFC 1112 §4
];

const REFUSED_V6: readonly (readonly [string, string])[] = [
  ["::/128", "the unspecified address"], // RFC 4291 §2.5.2
  ["::1/128", "a loopback address"], // RFC 4291 §2.5.3
  ["::/96", "an IPv4-compatible address (deprecated)"], // RFC 4291 §2.5.5.1
  ["64:ff9b:1::/48", "a local-use NAT64 address"], // RFC 8215
  ["fec0::/10", "a site-local address (deprecated)"], // RFC 3879
  ["fc00::/7", "a unique local address"], // RFC 4193
  ["fe80::/10", "a link-local address"], // RFC 4291 §2.5.6
  ["ff00::/8", "a multicast address"], // RFC 4291 §2.7
  ["2001:db8::/32", "a documentation address"], // RFC 3849
];

const table = (rows: readonly (readonly [string, string])[]) =>
  rows.map(([cidr, what]) => ({ cidr, range: ipaddr.parseCIDR(cidr) as Cidr, what }));
const V4 = table(REFUSED_V4);
const V6 = table(REFUSED_V6);
const NAT64 = ipaddr.parseCIDR("64:ff9b::/96"); // RFC 6052 §2.1 well-known prefix
const TRANSLATED = ipaddr.parseCIDR("::ffff:0:0:0/96"); // RFC 2765 §2.1 IPv4-translated
const SIX_TO_FOUR = ipaddr.parseCIDR("2002::/16"); // RFC 3056 §2: 2002:V4ADDR::/48

const parsedCidrs = new Map<string, Cidr | null>();

/** Parses CIDRs such as `127.0.0.0/8` or `fd00::/8` (a bare address is a /32 or /128). */
export function parseCidrs(list: readonly string[]): { ok: true; cidrs: Cidr[] } | { ok: false; reason: string } {
  const cidrs: Cidr[] = [];
  for (const text of list) {
    const cidr = parseCidr(text);
    if (cidr === null) return { ok: false, reason: `"${text}" is not a CIDR like 127.0.0.0/8` };
    cidrs.push(cidr);
  }
  return { ok: true, cidrs };
}

function parseCidr(text: string): Cidr | null {
  const known = parsedCidrs.get(text);
  if (known !== undefined) return known;
  const [ip = "", bits, extra] = text.trim().split("/");
  let cidr: Cidr | null = null;
  if (isIP(ip) !== 0 && extra === undefined) {
    const max = isIP(ip) === 4 ? 32 : 128;
    const n = bits === undefined ? max : /^\d{1,3}$/.test(bits) ? Number(bits) : NaN;
    if (n >= 0 && n <= max) cidr = [ipaddr.parse(ip), n];
  }
  parsedCidrs.set(text, cidr);
  return cidr;
}

function inside(address: Address, cidr: Cidr): boolean {
  return address.kind() === cidr[0].kind() && address.match(cidr);
}

/**
 * IPv4-mapped (RFC 4291 §2.5.5.2), NAT64 (RFC 6052), IPv4-translated (RFC 2765) and 6to4
 * (RFC 3056) addresses reach the IPv4 address inside them.
 */
function embeddedIPv4(address: Address): ipaddr.IPv4 | null {
  if (address.kind() !== "ipv6") return null;
  const v6 = address as ipaddr.IPv6;
  if (v6.isIPv4MappedAddress()) return v6.toIPv4Address();
  if (v6.match(SIX_TO_FOUR)) {
    const p1 = v6.parts[1] ?? 0;
    const p2 = v6.parts[2] ?? 0;
    return new ipaddr.IPv4([p1 >> 8, p1 & 0xff, p2 >> 8, p2 & 0xff]);
  }
  if (v6.match(NAT64) || v6.match(TRANSLATED)) {
    const p6 = v6.parts[6] ?? 0;
    const p7 = v6.parts[7] ?? 0;
    return new ipaddr.IPv4([p6 >> 8, p6 & 0xff, p7 >> 8, p7 & 0xff]);
  }
  return null;
}

/**
 * True when `ip` (or the IPv4 address an IPv6 one embeds) is inside one of `allow`: an
 * explicit operator choice, which e.g. lets webhooks use plain http to an internal network.
 */
export function inAllowedNetworks(ip: string, allow: readonly string[]): boolean {
  if (isIP(ip) === 0 || ip.includes("%")) return false;
  const address = ipaddr.parse(ip);
  const inner = embeddedIPv4(address);
  const candidates = inner === null ? [address] : [address, inner];
  const allowed = allow.map(parseCidr).filter((c): c is Cidr => c !== null);
  return candidates.some((a) => allowed.some((c) => inside(a, c)));
}

/**
 * Says whether we may connect to `ip`. Refused: the special-purpose ranges above, and IPv6
 * addresses that embed such an IPv4 address — unless the address (or the IPv4 inside it) is
 * in one of `allow` (DELIVERY_ALLOW_NETWORKS). Anything that is not a plain IP literal is refused.
 */
export function checkDestination(ip: string, allow: readonly string[]): GuardResult {
  if (isIP(ip) === 0) return { ok: false, reason: `"${ip}" is not an IP address` };
  // DNS never yields a zone index; one here would pick an interface for us.
  if (ip.includes("%")) return { ok: false, reason: `${ip} has a zone index` };
  if (inAllowedNetworks(ip, allow)) return { ok: true };
  const address = ipaddr.parse(ip);
  const inner = embeddedIPv4(address);

  const suffix = "not in DELIVERY_ALLOW_NETWORKS";
  if (inner !== null) {
    const hit = V4.find((r) => inside(inner, r.range));
    if (hit) return { ok: false, reason: `${ip} embeds ${inner.toString()}, ${hit.what} (${hit.cidr}, ${suffix})` };
    return { ok: true };
  }
  const hit = (address.kind() === "ipv4" ? V4 : V6).find((r) => inside(address, r.range));
  if (hit) return { ok: false, reason: `${ip} is ${hit.what} (${hit.cidr}, ${suffix})` };
  return { ok: true };
}
