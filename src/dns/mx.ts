/**
 * Where to deliver mail for a domain (RFC 5321 §5.1, RFC 7505). The caller still runs every
 * address through the destination guard (guard.ts) and connects to those literals only.
 */
import { orderAddresses, orderMxHosts } from "./mx-order.js";
import type { Resolver } from "./types.js";

export interface DestinationHost {
  /** MX host name, or the domain itself for an implicit MX. */
  name: string;
  preference: number;
  /** IPv6 and IPv4 alternating, IPv6 first, each family shuffled; the order to try them in. */
  addresses: string[];
  /** True when there were no MX records and this is the domain's own A/AAAA (RFC 5321 §5.1). */
  implicit: boolean;
}

export type Destinations =
  /**
   * In the order to try them; `skipped` are MX hosts left out because no address was found.
   * `ttl`: the smallest TTL (seconds) of the MX and address records the hosts came from.
   */
  | { kind: "hosts"; hosts: DestinationHost[]; skipped: { name: string; reason: string; temporary: boolean }[]; ttl: number }
  /** RFC 7505: the domain accepts no mail; fail with 5.1.10, no delivery attempted. */
  | { kind: "null-mx"; reason: string }
  /** The domain does not exist: permanent. */
  | { kind: "nxdomain"; reason: string }
  /** Hosts exist but none has an address; `temporary` unless every look-up said nxdomain/nodata. */
  | { kind: "no-addresses"; temporary: boolean; reason: string }
  /** SERVFAIL, timeout …: defer. */
  | { kind: "temporary"; reason: string };

export interface DestinationOptions {
  /** [0, 1), for shuffling equal preferences and addresses. Default Math.random. */
  random?: () => number;
  /** Most MX hosts to return (Postfix tries 5 addresses; we keep 5 hosts). Default 5. */
  maxHosts?: number;
}

interface HostAddresses {
  addresses: string[];
  /** The smallest TTL of the look-ups that gave addresses (Infinity when none did). */
  ttl: number;
  /** Why no address was found (empty when some were). */
  reasons: string[];
  /** A look-up failed temporarily, so "no addresses" may not be the final word. */
  temporary: boolean;
}

/** A and AAAA of one host, both asked at once; a host with one family is fine. */
async function addressesOf(resolver: Resolver, host: string, random: () => number): Promise<HostAddresses> {
  const [six, four] = await Promise.all([resolver.aaaa(host), resolver.a(host)]);
  const addresses = orderAddresses(six.ok ? six.records : [], four.ok ? four.records : [], random);
  const failures = [six, four].flatMap((l) => (l.ok ? [] : [l]));
  return {
    addresses,
    ttl: Math.min(six.ok ? six.ttl : Infinity, four.ok ? four.ttl : Infinity),
    reasons: addresses.length > 0 ? [] : failures.map((f) => f.reason),
    temporary: failures.some((f) => f.kind === "temporary"),
  };
}

/** Resolves `domain` (ASCII, punycode already) to the hosts and addresses to try, best first. */
export async function resolveDestinations(resolver: Resolver, domain: string, opts: DestinationOptions = {}): Promise<Destinations> {
  const random = opts.random ?? Math.random;
  const maxHosts = Math.max(1, opts.maxHosts ?? 5);
  const name = domain.trim().toLowerCase().replace(/\.$/, "");

  const mx = await resolver.mx(name);
  if (!mx.ok && mx.kind === "nxdomain") return { kind: "nxdomain", reason: mx.reason };
  if (!mx.ok && mx.kind === "temporary") return { kind: "temporary", reason: mx.reason };
  if (!mx.ok) {
    // RFC 5321 §5.1: no MX records → the domain itself is the implicit MX, at preference 0.
    const own = await addressesOf(resolver, name, random);
    if (own.addresses.length > 0) {
      return { kind: "hosts", hosts: [{ name, preference: 0, addresses: own.addresses, implicit: true }], skipped: [], ttl: own.ttl };
    }
    return { kind: "no-addresses", temporary: own.temporary, reason: `${name} has no MX records and no address: ${own.reasons.join("; ")}` };
  }

  // RFC 7505 §3: "0 ." alone says the domain receives no mail.
  if (mx.records.every((r) => r.exchange === ".")) {
    return { kind: "null-mx", reason: `${name} accepts no mail (null MX, RFC 7505)` };
  }

  // MX records exist, so the domain's own A/AAAA are never used (RFC 5321 §5.1). Hosts are
  // resolved a batch at a time until enough have addresses.
  const ordered = orderMxHosts(mx.records, random);
  const hosts: DestinationHost[] = [];
  let ttl = mx.ttl;
  const skipped: { name: string; reason: string; temporary: boolean }[] = [];
  for (let start = 0; start < ordered.length && hosts.length < maxHosts; start += maxHosts) {
    const batch = ordered.slice(start, start + maxHosts);
    const found = await Promise.all(batch.map((r) => addressesOf(resolver, r.exchange, random)));
    batch.forEach((record, i) => {
      const result = found[i]!;
      if (result.addresses.length > 0) {
        ttl = Math.min(ttl, result.ttl);
        hosts.push({ name: record.exchange, preference: record.preference, addresses: result.addresses, implicit: false });
      } else {
        skipped.push({ name: record.exchange, reason: result.reasons.join("; "), temporary: result.temporary });
      }
    });
  }
  if (hosts.length > 0) return { kind: "hosts", hosts: hosts.slice(0, maxHosts), skipped, ttl };
  return {
    kind: "no-addresses",
    temporary: skipped.some((s) => s.temporary),
    reason: `no MX host of ${name} has an address: ${skipped.map((s) => `${s.name}: ${s.reason}`).join("; ")}`,
  };
}
