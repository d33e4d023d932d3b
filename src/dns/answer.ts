/**
 * Turns one decoded reply into a look-up outcome. Pure: no sockets, no clock, so every rule
 * below has a table-driven test.
 */
import { isIPv4, isIPv6 } from "node:net";
import type { Answer } from "dns-packet";
import type { Lookup, MxRecord, QueryType } from "./types.js";
import type { Question, Reply } from "./transport.js";

/** What each query type yields. */
export interface RecordOf {
  MX: MxRecord;
  A: string;
  AAAA: string;
  TXT: string;
}

/** A reply read: the outcome, and for NXDOMAIN/NODATA the negative-caching time the SOA gives. */
export interface Reading<T> {
  lookup: Lookup<T>;
  /** RFC 2308 §5: min(SOA TTL, SOA MINIMUM) from the authority section, or null when absent. */
  negativeTtl: number | null;
}

/** Longest CNAME chain we follow; real chains are one or two links. */
export const MAX_CNAME_CHAIN = 8;

/** Lower-case, without a trailing dot; the root stays ".". */
export function normalizeName(name: string): string {
  if (name === "." || name === "") return ".";
  return name.toLowerCase().replace(/\.$/, "");
}

/** RFC 2181 §8: a TTL with the top bit set is treated as zero. */
function ttlOf(answer: Answer): number {
  const ttl = "ttl" in answer ? answer.ttl ?? 0 : 0;
  return ttl >= 0 && ttl <= 0x7fffffff ? ttl : 0;
}

const extractors: { [K in QueryType]: (answer: Answer) => RecordOf[K] | undefined } = {
  MX: (a) =>
    a.type === "MX" && Number.isInteger(a.data.preference)
      ? { preference: a.data.preference!, exchange: normalizeName(a.data.exchange) }
      : undefined,
  A: (a) => (a.type === "A" && isIPv4(a.data) ? a.data : undefined),
  AAAA: (a) => (a.type === "AAAA" && isIPv6(a.data) ? a.data.toLowerCase() : undefined),
  // RFC 7208 §3.3 / RFC 6376 §3.6.2.2: the character-strings of one record are concatenated.
  TXT: (a) => {
    if (a.type !== "TXT") return undefined;
    const chunks = Array.isArray(a.data) ? a.data : [a.data];
    return chunks.map((c) => (typeof c === "string" ? c : c.toString("utf8"))).join("");
  },
};

function negativeTtl(reply: Reply): number | null {
  for (const rr of reply.authorities ?? []) {
    if (rr.type === "SOA") return Math.min(ttlOf(rr), rr.data.minimum ?? 0);
  }
  return null;
}

/**
 * Reads the reply to `question` from the server called `from`.
 * RFC 1034 §3.6.2 / RFC 2181 §10.1: CNAMEs in the answer section are followed from the asked name;
 * records for other owner names are ignored. RFC 6604 §3: the RCODE speaks for the end of the chain.
 */
export function readReply<K extends QueryType>(reply: Reply, question: Question & { type: K }, from: string): Reading<RecordOf[K]> {
  const { name, type } = question;
  const rcode = reply.rcode ?? "NOERROR";
  if (rcode === "NXDOMAIN") {
    return { lookup: { ok: false, kind: "nxdomain", reason: `${name} does not exist (NXDOMAIN from ${from})` }, negativeTtl: negativeTtl(reply) };
  }
  if (rcode !== "NOERROR") {
    return { lookup: { ok: false, kind: "temporary", reason: `${rcode} from ${from} for ${type} ${name}` }, negativeTtl: null };
  }
  const answers = reply.answers ?? [];
  let owner = name;
  let ttl = Infinity;
  const seen = new Set([owner]);
  for (let links = 0; ; links++) {
    const rrset = answers.filter((a) => a.type === type && normalizeName(a.name) === owner);
    if (rrset.length > 0) {
      const records = rrset.map(extractors[type]).filter((r): r is RecordOf[K] => r !== undefined);
      if (records.length === 0) {
        return { lookup: { ok: false, kind: "temporary", reason: `malformed ${type} records for ${owner} from ${from}` }, negativeTtl: null };
      }
      ttl = Math.min(ttl, ...rrset.map(ttlOf));
      return { lookup: { ok: true, records, ttl }, negativeTtl: null };
    }
    const cname = answers.find((a) => a.type === "CNAME" && normalizeName(a.name) === owner);
    if (cname === undefined || cname.type !== "CNAME") break;
    if (links === MAX_CNAME_CHAIN) {
      return { lookup: { ok: false, kind: "temporary", reason: `CNAME chain from ${name} is longer than ${MAX_CNAME_CHAIN}` }, negativeTtl: null };
    }
    ttl = Math.min(ttl, ttlOf(cname));
    owner = normalizeName(cname.data);
    if (seen.has(owner)) {
      return { lookup: { ok: false, kind: "temporary", reason: `CNAME loop at ${owner} for ${name}` }, negativeTtl: null };
    }
    seen.add(owner);
  }
  const via = owner === name ? "" : ` (via CNAME ${owner})`;
  return { lookup: { ok: false, kind: "nodata", reason: `${name} has no ${type} records${via}` }, negativeTtl: negativeTtl(reply) };
}
