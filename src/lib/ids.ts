/**
 * Prefixed, time-ordered ids (`msg_01jd…`): 10 Crockford base32 characters of milliseconds
 * followed by 16 of randomness (80 bits, counting up within a millisecond), as in ULID. Sorting ids sorts by creation time,
 * which gives cursor pagination a stable key without a second column.
 */
import { randomFillSync } from "node:crypto";

const ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz";

export const ID_PREFIXES = {
  account: "acct",
  apiKey: "key",
  message: "msg",
  recipient: "rcpt",
  attempt: "att",
  event: "evt",
  domain: "dom",
  webhook: "wh",
  inbound: "inb",
} as const;
export type IdKind = keyof typeof ID_PREFIXES;

function encodeTime(ms: number): string {
  let out = "";
  for (let i = 0; i < 10; i++) {
    out = ALPHABET[ms % 32] + out;
    ms = Math.floor(ms / 32);
  }
  return out;
}

// Random bytes are drawn from a pool refilled 8 KB at a time: one randomFillSync call per
// 512 ids instead of one randomBytes call each (ids are on the POST /messages hot path).
const pool = Buffer.alloc(8192);
let offset = pool.length;

// Monotonic within a millisecond (as ULID's monotonic factory): the next id of the same
// millisecond is the last one's random part plus one, so ids made in one call (a batch's
// messages, an outcome batch's events) sort in the order they were made, not at random.
let lastMs = -1;
const digits = new Uint8Array(16);

function nextRandom(ms: number): string {
  let carry = ms === lastMs;
  for (let i = 15; carry && i >= 0; i--) {
    digits[i] = (digits[i]! + 1) & 31;
    carry = digits[i] === 0;
  }
  if (ms !== lastMs || carry) {
    // A new millisecond (or, after 2^80 ids in one, an overflow): fresh randomness.
    if (offset + 16 > pool.length) {
      randomFillSync(pool);
      offset = 0;
    }
    for (let i = 0; i < 16; i++) digits[i] = pool[offset + i]! & 31;
    offset += 16;
    lastMs = ms;
  }
  let out = "";
  for (let i = 0; i < 16; i++) out += ALPHABET[digits[i]!];
  return out;
}

/** A new id of the given kind, e.g. `newId("message")` → `msg_01jd2…`. */
export function newId(kind: IdKind, now: number = Date.now()): string {
  return `${ID_PREFIXES[kind]}_${encodeTime(now)}${nextRandom(now)}`;
}

const patterns = new Map<IdKind, RegExp>();

/** The shape of an id of `kind` (also a list's cursor). */
export function idPattern(kind: IdKind): RegExp {
  let p = patterns.get(kind);
  if (!p) patterns.set(kind, (p = new RegExp(`^${ID_PREFIXES[kind]}_[0-9a-hjkmnp-tv-z]{26}$`)));
  return p;
}

/** True when `id` has the shape of an id of `kind` (a cheap check before a database look-up). */
export function isId(kind: IdKind, id: string): boolean {
  return idPattern(kind).test(id);
}

/** What a presented API key can look like (generated keys: `pl_` + 43 characters); ADMIN_API_KEY is held to it too. */
export const API_KEY_FORMAT = /^pl_[A-Za-z0-9_-]{32,128}$/;
