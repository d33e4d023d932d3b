/**
 * Resolve a host name for an outgoing connection and keep only the addresses the destination
 * guard allows (ENGINE-NOTES "Destination guard"): callers then connect to one of these IP
 * literals and never resolve again, so DNS rebinding has no second answer to exploit. Used by
 * the MTA-STS policy fetch and the webhook client.
 */
import { isIP } from "node:net";
import { checkDestination } from "./guard.js";
import type { Resolver } from "./types.js";

export type AllowedAddresses =
  /** `ips`: IPv4 first, every one passed checkDestination; `refused`: why the others did not. */
  | { ok: true; ips: string[]; refused: string[] }
  | { ok: false; reason: string };

/** A's and AAAA's of `host` (or `host` itself when it is an IP literal) that the guard allows. */
export async function allowedAddresses(resolver: Resolver, host: string, allowNetworks: readonly string[]): Promise<AllowedAddresses> {
  let ips: string[];
  if (isIP(host) !== 0) ips = [host];
  else {
    const [v4, v6] = await Promise.all([resolver.a(host), resolver.aaaa(host)]);
    ips = [...(v4.ok ? v4.records : []), ...(v6.ok ? v6.records : [])];
    if (ips.length === 0) {
      const why = [v4, v6].flatMap((l) => (l.ok ? [] : [l.reason])).join("; ");
      return { ok: false, reason: `${host} has no address: ${why}` };
    }
  }
  const allowed: string[] = [];
  const refused: string[] = [];
  for (const ip of ips) {
    const verdict = checkDestination(ip, allowNetworks);
    if (verdict.ok) allowed.push(ip);
    else refused.push(verdict.reason);
  }
  if (allowed.length === 0) return { ok: false, reason: `refused to connect to ${host}: ${refused.join("; ")}` };
  return { ok: true, ips: allowed, refused };
}
