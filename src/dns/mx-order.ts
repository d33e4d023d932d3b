/**
 * The pure half of RFC 5321 §5.1: in which order to try MX hosts and their addresses.
 * Randomness is an argument (`random` returns [0, 1) like Math.random) so tests can seed it.
 */
import type { MxRecord } from "./types.js";

/** Fisher–Yates on a copy. */
export function shuffle<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.min(i, Math.floor(random() * (i + 1)));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/**
 * RFC 5321 §5.1: lowest preference first; hosts of equal preference in random order, to spread
 * the load. A host listed twice keeps its best preference. The null-MX target "." is dropped here
 * (the caller handles a lone null MX first, RFC 7505 §3).
 */
export function orderMxHosts(records: readonly MxRecord[], random: () => number): MxRecord[] {
  const best = new Map<string, number>();
  for (const { exchange, preference } of records) {
    if (exchange === "." || exchange === "") continue;
    const known = best.get(exchange);
    if (known === undefined || preference < known) best.set(exchange, preference);
  }
  const byPreference = new Map<number, string[]>();
  for (const [exchange, preference] of best) {
    const group = byPreference.get(preference) ?? [];
    group.push(exchange);
    byPreference.set(preference, group);
  }
  return [...byPreference.keys()]
    .sort((a, b) => a - b)
    .flatMap((preference) => shuffle(byPreference.get(preference)!, random).map((exchange) => ({ preference, exchange })));
}

/**
 * The order to try one host's addresses in: each family shuffled (as Postfix's
 * smtp_randomize_addresses), then alternated starting with IPv6 (RFC 8305 §4), so a broken
 * IPv6 path costs one attempt before IPv4 gets its turn (Haraka #3314).
 */
export function orderAddresses(ipv6: readonly string[], ipv4: readonly string[], random: () => number): string[] {
  const six = shuffle([...new Set(ipv6)], random);
  const four = shuffle([...new Set(ipv4)], random);
  const out: string[] = [];
  for (let i = 0; i < Math.max(six.length, four.length); i++) {
    if (i < six.length) out.push(six[i]!);
    if (i < four.length) out.push(four[i]!);
  }
  return out;
}
