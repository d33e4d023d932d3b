/**
 * Postline's own stub resolver: asks the configured recursive resolvers (DNS_SERVERS, else the
 * system's) over UDP, falls back to TCP when a reply is truncated, fails over between servers,
 * and caches answers for as long as their TTL allows. Every outcome is a value: SERVFAIL,
 * REFUSED, timeouts and malformed replies are `temporary`, never a throw (Haraka #3376).
 */
import { readReply, type RecordOf } from "./answer.js";
import { TtlCache } from "./cache.js";
import { resolveServers } from "./servers.js";
import { exchangeTcp, exchangeUdp, type Question } from "./transport.js";
import type { Lookup, QueryType, Resolver } from "./types.js";

export type { Lookup, MxRecord, Resolver } from "./types.js";

export interface ResolverOptions {
  /** `ip:port` or `[ipv6]:port` (as config.ts produces them); empty → the system's resolvers. */
  servers: string[];
  /** Per query and server (RES_TIMEOUT-like). Default 5000 ms. */
  timeoutMs?: number;
  /** Rounds over all servers before giving up (RES_ATTEMPTS-like). Default 2. */
  tries?: number;
  /** Clock in milliseconds, for the cache. Default Date.now. */
  now?: () => number;
  /** Cache answers by their TTL. Default true. */
  cache?: boolean;
  /** Where the system's resolvers come from when `servers` is empty. Default node:dns getServers. */
  systemServers?: () => string[];
}

/** Longest we keep a positive answer, whatever its TTL says. */
export const MAX_POSITIVE_TTL = 3600;
/** RFC 2308 §5: negative answers are cached by the SOA; without one, this long. */
export const DEFAULT_NEGATIVE_TTL = 60;
/** Longest we keep NXDOMAIN/NODATA, so a domain that was just fixed recovers quickly. */
export const MAX_NEGATIVE_TTL = 300;

/** RFC 1035 §2.3.4 / RFC 1123 §2.1; underscores for _dmarc, _domainkey, _mta-sts (RFC 8552). */
function isQueryableName(name: string): boolean {
  if (name.length === 0 || name.length > 253) return false;
  return name.split(".").every((label) => /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/.test(label));
}

/** Creates a resolver. Throws only on a server string that does not parse (config.ts validates them). */
export function createResolver(opts: ResolverOptions): Resolver {
  const servers = resolveServers(opts.servers, opts.systemServers);
  const timeoutMs = opts.timeoutMs ?? 5000;
  const tries = Math.max(1, opts.tries ?? 2);
  const cache = opts.cache === false ? null : new TtlCache<Lookup<unknown>>(opts.now ?? Date.now);
  const inFlight = new Map<string, Promise<Lookup<unknown>>>();
  // Fail-over, sticky: start with the server that answered last, move on only when it fails,
  // so a dead server costs one timeout, not one per query.
  let preferred = 0;

  async function ask<K extends QueryType>(question: Question & { type: K }): Promise<Lookup<RecordOf[K]>> {
    const { name, type } = question;
    if (servers.length === 0) {
      return { ok: false, kind: "temporary", reason: `no DNS servers to ask for ${type} ${name}` };
    }
    const failures: string[] = [];
    for (let round = 0; round < tries; round++) {
      for (let step = 0; step < servers.length; step++) {
        const index = (preferred + step) % servers.length;
        const server = servers[index]!;
        let exchange = await exchangeUdp(server, question, timeoutMs);
        // RFC 1035 §4.2.1 / RFC 7766 §5: a truncated UDP reply is asked again over TCP.
        if (exchange.ok && exchange.reply.flag_tc) exchange = await exchangeTcp(server, question, timeoutMs);
        if (!exchange.ok) {
          failures.push(exchange.reason);
          continue;
        }
        const reading = readReply(exchange.reply, question, server.label);
        const { lookup } = reading;
        if (!lookup.ok && lookup.kind === "temporary") {
          failures.push(lookup.reason);
          continue;
        }
        preferred = index;
        if (lookup.ok) {
          cache?.set(`${type} ${name}`, lookup, Math.min(lookup.ttl, MAX_POSITIVE_TTL));
        } else {
          cache?.set(`${type} ${name}`, lookup, Math.min(reading.negativeTtl ?? DEFAULT_NEGATIVE_TTL, MAX_NEGATIVE_TTL));
        }
        return lookup;
      }
    }
    const reasons = [...new Set(failures)].join("; ");
    return { ok: false, kind: "temporary", reason: `${type} lookup for ${name} failed: ${reasons}` };
  }

  function lookup<K extends QueryType>(type: K, rawName: string): Promise<Lookup<RecordOf[K]>> {
    const name = rawName.trim().toLowerCase().replace(/\.$/, "");
    if (!isQueryableName(name)) {
      return Promise.resolve({ ok: false, kind: "nxdomain", reason: `"${rawName}" is not a valid domain name` });
    }
    const key = `${type} ${name}`;
    const hit = cache?.get(key);
    if (hit !== undefined) {
      const value = hit.value as Lookup<RecordOf[K]>;
      return Promise.resolve(value.ok ? { ok: true, records: [...value.records], ttl: hit.remainingSeconds } : value);
    }
    // Concurrent look-ups of the same name share one query.
    let pending = inFlight.get(key) as Promise<Lookup<RecordOf[K]>> | undefined;
    if (pending === undefined) {
      // Belt and braces: whatever a socket or a decoder throws becomes a temporary failure,
      // so one odd reply can never take the worker down (Haraka #3376).
      pending = ask({ name, type })
        .catch((err: unknown): Lookup<RecordOf[K]> => ({ ok: false, kind: "temporary", reason: `${type} lookup for ${name} failed: ${String(err)}` }))
        .finally(() => inFlight.delete(key));
      inFlight.set(key, pending);
    }
    // Each caller gets its own records array: the cached one must not be sorted in place.
    return pending.then((l) => (l.ok ? { ...l, records: [...l.records] } : l));
  }

  return {
    mx: (name) => lookup("MX", name),
    a: (name) => lookup("A", name),
    aaaa: (name) => lookup("AAAA", name),
    txt: (name) => lookup("TXT", name),
  };
}
