/**
 * The shapes every part of dns/ agrees on. Look-up outcomes are values (CONVENTIONS habit 4):
 * a SERVFAIL or a timeout is an answer the caller must branch on, never an exception
 * (Haraka #3376 crashed on SERVFAIL).
 */

/**
 * The outcome of one look-up.
 * - `ok`: at least one record of the asked type (CNAME chains already followed); `ttl` is the
 *   smallest TTL on the way, in seconds (the remaining time when served from the cache).
 * - `nxdomain`: the name does not exist (RFC 1035 RCODE 3) — permanent.
 * - `nodata`: the name exists but has no record of this type (RFC 2308 §2.2) — permanent.
 * - `temporary`: SERVFAIL, REFUSED, timeouts, malformed answers — try again later.
 */
export type Lookup<T> =
  | { ok: true; records: T[]; ttl: number }
  | { ok: false; kind: "nxdomain" | "nodata" | "temporary"; reason: string };

export interface MxRecord {
  preference: number;
  exchange: string;
}

/** A stub resolver: asks recursive resolvers, never the authoritative servers itself. */
export interface Resolver {
  /** MX records; `exchange` is lower-case without a trailing dot, "." for a null MX (RFC 7505). */
  mx(name: string): Promise<Lookup<MxRecord>>;
  /** IPv4 addresses in dotted-decimal form. */
  a(name: string): Promise<Lookup<string>>;
  /** IPv6 addresses in RFC 5952 compressed form. */
  aaaa(name: string): Promise<Lookup<string>>;
  /** TXT records, the character-strings of each record joined (RFC 7208 §3.3, RFC 6376 §3.6.2.2). */
  txt(name: string): Promise<Lookup<string>>;
}

/** Record types this resolver asks for. */
export type QueryType = "MX" | "A" | "AAAA" | "TXT";

/** One recursive resolver to ask. */
export interface Server {
  host: string;
  port: number;
  family: 4 | 6;
  /** As the user wrote it, for reasons: `127.0.0.1:53`, `[::1]:53`. */
  label: string;
}
