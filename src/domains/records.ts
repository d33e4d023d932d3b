/**
 * The DNS records a sending domain publishes, and how a look-up of each is judged. Pure: no
 * database, no sockets; verify.ts does the look-ups and feeds the answers in here.
 *
 * | purpose     | name                            | value                                   | required |
 * |-------------|---------------------------------|-----------------------------------------|----------|
 * | dkim        | `<selector>._domainkey.<name>`  | `v=DKIM1; k=rsa|ed25519; p=<key>`       | yes      |
 * | spf         | `<name>`                        | `v=spf1 a:<HELO_NAME> ~all`             | yes      |
 * | return_path | `_postline.<name>`              | `v=pl1; rp=<RETURN_PATH_DOMAIN>`        | no (only when RETURN_PATH_DOMAIN is set) |
 * | dmarc       | `_dmarc.<name>`                 | `v=DMARC1; p=none; rua=mailto:dmarc-reports@<name>` | no |
 *
 * A domain is `verified` when its required records are.
 */
import type { Lookup } from "../dns/types.js";

export const RECORD_PURPOSES = ["dkim", "spf", "return_path", "dmarc"] as const;
export type RecordPurpose = (typeof RECORD_PURPOSES)[number];

/**
 * One record's state after the last look-up:
 * - `pending`: never checked, or nothing of ours is published there (yet);
 * - `verified`: published as we ask;
 * - `invalid`: something is published there that does not do the job (another DKIM key,
 *   an SPF record without our mechanism, two SPF records…); `detail` says what.
 */
export const RECORD_STATES = ["pending", "verified", "invalid"] as const;
export type RecordStatus = (typeof RECORD_STATES)[number];

export interface RecordState {
  status: RecordStatus;
  /** RFC 3339, or null before the first check. */
  checked_at: string | null;
  /** One short sentence on what was found; null before the first check. */
  detail: string | null;
}

export type RecordChecks = Partial<Record<RecordPurpose, RecordState>>;

export interface ExpectedRecord {
  purpose: RecordPurpose;
  type: "TXT";
  name: string;
  value: string;
  /** Whether the domain's `verified` status depends on it. */
  required: boolean;
}

/** What the records depend on besides the domain itself (from Config). */
export interface RecordSettings {
  heloName: string;
  returnPathDomain?: string | undefined;
}

export interface DomainKeyInfo {
  name: string;
  selector: string;
  /** The DKIM TXT value we generated. */
  dkimRecord: string;
}

export const dkimRecordName = (d: { name: string; selector: string }) => `${d.selector}._domainkey.${d.name}`;

/** The records to publish for a domain, in display order. */
export function expectedRecords(d: DomainKeyInfo, s: RecordSettings): ExpectedRecord[] {
  const records: ExpectedRecord[] = [
    { purpose: "dkim", type: "TXT", name: dkimRecordName(d), value: d.dkimRecord, required: true },
    { purpose: "spf", type: "TXT", name: d.name, value: `v=spf1 a:${s.heloName.toLowerCase()} ~all`, required: true },
  ];
  if (s.returnPathDomain) {
    records.push({ purpose: "return_path", type: "TXT", name: `_postline.${d.name}`, value: `v=pl1; rp=${s.returnPathDomain.toLowerCase()}`, required: false });
  }
  records.push({ purpose: "dmarc", type: "TXT", name: `_dmarc.${d.name}`, value: `v=DMARC1; p=none; rua=mailto:dmarc-reports@${d.name}`, required: false });
  return records;
}

/** A judgement of one look-up; `temporary` means the question could not be answered at all. */
export type Judgement = { status: RecordStatus; detail: string } | { status: "temporary"; detail: string };

/**
 * TXT texts as published: the resolver joins each record's character-strings; some DNS
 * panels also store the zone-file quotes literally (`"v=DKIM1; k=rsa; " "p=MIIB…"`), so
 * quote characters are dropped here (no record we read has a legitimate `"` in it).
 */
const texts = (records: string[]) => records.map((r) => r.replace(/"/g, "").trim());

/** RFC 6376 §3.2 tag=value list; tag names lower-cased, values with folding whitespace kept. */
export function tagList(text: string): Map<string, string> {
  const tags = new Map<string, string>();
  for (const part of text.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim().toLowerCase();
    if (name && !tags.has(name)) tags.set(name, part.slice(eq + 1).trim());
  }
  return tags;
}

/** The judgement when the look-up found no TXT records at all (or could not be answered). */
function absent(lookup: Lookup<string> & { ok: false }, name: string): Judgement {
  if (lookup.kind === "temporary") return { status: "temporary", detail: lookup.reason };
  return { status: "pending", detail: `no TXT record at ${name} (${lookup.kind === "nxdomain" ? "the name does not exist" : "no TXT records"})` };
}

const noSpace = (v: string) => v.replace(/\s+/g, "");

/** The first tag name that occurs twice in a tag-list, or null. */
function duplicateTag(text: string): string | null {
  const seen = new Set<string>();
  for (const part of text.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim().toLowerCase();
    if (!name) continue;
    if (seen.has(name)) return name;
    seen.add(name);
  }
  return null;
}

/** RFC 7208 §5: the mechanisms; any other name is a syntax error (permerror). */
const SPF_MECHANISMS = new Set(["all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"]);
const SPF_MECHANISM = /^([+\-~?]?)([a-z][a-z0-9_.-]*)(?::([^/]+))?(?:\/\d+)?(?:\/\/\d+)?$/i;
const SPF_MODIFIER = /^[a-z][a-z0-9_.-]*=/i;

/**
 * DKIM (RFC 6376 §3.6.1, RFC 8463 §4.2): verified when a key record at the selector carries our
 * `p=` (whitespace and split strings tolerated), with a matching `k=` (default rsa) and an `h=`
 * that, when present, allows sha256. Another key, or a revoked one (empty `p=`), is `invalid`.
 */
export function judgeDkim(lookup: Lookup<string>, expected: ExpectedRecord): Judgement {
  if (!lookup.ok) return absent(lookup, expected.name);
  const ours = tagList(expected.value);
  const ourKey = noSpace(ours.get("p") ?? "");
  const ourType = ours.get("k") ?? "rsa";
  const keys = texts(lookup.records)
    .map(tagList)
    .filter((t) => t.has("p") && (!t.has("v") || t.get("v") === "DKIM1"));
  if (keys.length === 0) return { status: "invalid", detail: `the TXT record at ${expected.name} is not a DKIM key record (v=DKIM1; … p=…)` };
  // RFC 6376 §3.6.2.2: with several key records a verifier may take any one; keep only ours.
  if (keys.length > 1) return { status: "invalid", detail: `${keys.length} DKIM key records at ${expected.name}; verifiers may use any one of them — keep only the value shown` };
  const repeated = texts(lookup.records).map(duplicateTag).find((d) => d !== null);
  // RFC 6376 §3.2: a tag that occurs twice makes the whole tag-list invalid.
  if (repeated) return { status: "invalid", detail: `the record at ${expected.name} has the tag ${repeated}= twice, which makes it invalid (RFC 6376 §3.2)` };
  for (const t of keys) {
    if (noSpace(t.get("p")!) !== ourKey) continue;
    const type = (t.get("k") ?? "rsa").toLowerCase();
    if (type !== ourType) return { status: "invalid", detail: `the record declares k=${type}; the key is ${ourType}` };
    const hashes = t.get("h");
    if (hashes !== undefined && !hashes.split(":").some((h) => h.trim().toLowerCase() === "sha256")) {
      return { status: "invalid", detail: `the record's h=${hashes} does not allow sha256` };
    }
    return { status: "verified", detail: "the published key matches" };
  }
  if (keys.every((t) => noSpace(t.get("p")!) === "")) return { status: "invalid", detail: "the published key is revoked (empty p=)" };
  return { status: "invalid", detail: `a different key is published at ${expected.name}; publish the value shown` };
}

const sameHost = (a: string, b: string) => a.toLowerCase().replace(/\.$/, "") === b.toLowerCase().replace(/\.$/, "");

/**
 * SPF (RFC 7208): exactly one `v=spf1` record at the domain (§4.5: two are a permerror), and it
 * authorises us before any `all` term is reached (§4.6.2): a pass-qualified (`+` or none)
 * `a:<HELO_NAME>` (a CIDR length allowed), or `include:<RETURN_PATH_DOMAIN>` when that is set.
 */
export function judgeSpf(lookup: Lookup<string>, expected: ExpectedRecord, s: RecordSettings): Judgement {
  if (!lookup.ok) return absent(lookup, expected.name);
  const spf = texts(lookup.records).filter((t) => /^v=spf1(\s|$)/i.test(t));
  if (spf.length === 0) return { status: "pending", detail: `no SPF record (v=spf1) at ${expected.name}` };
  if (spf.length > 1) return { status: "invalid", detail: `${spf.length} SPF records at ${expected.name}; RFC 7208 §4.5 allows only one — merge them` };
  // RFC 7208 §4.6: terms are separated by spaces, and a term that does not parse makes the whole
  // record a permerror for receivers, wherever it stands: every term is checked first.
  const terms = spf[0]!.split(" ").slice(1).filter((t) => t !== "");
  const bad = terms.find((t) => !SPF_MODIFIER.test(t) && !SPF_MECHANISMS.has(SPF_MECHANISM.exec(t)?.[2]?.toLowerCase() ?? ""));
  if (bad !== undefined) return { status: "invalid", detail: `the SPF record's term ${JSON.stringify(bad)} is not valid SPF, so receivers reject the whole record (RFC 7208 §4.6)` };
  for (const term of terms) {
    const m = SPF_MECHANISM.exec(term);
    if (!m) continue; // a modifier
    const [, qualifier, mechanism, target] = m;
    const kind = mechanism!.toLowerCase();
    if (kind === "all") break;
    if (qualifier !== "" && qualifier !== "+") continue;
    if (kind === "a" && target !== undefined && sameHost(target, s.heloName)) return { status: "verified", detail: `authorises a:${s.heloName}` };
    if (kind === "include" && s.returnPathDomain && target !== undefined && sameHost(target, s.returnPathDomain)) {
      return { status: "verified", detail: `authorises include:${s.returnPathDomain}` };
    }
  }
  const how = s.returnPathDomain ? `a:${s.heloName} or include:${s.returnPathDomain}` : `a:${s.heloName}`;
  return { status: "invalid", detail: `the SPF record does not authorise ${how} before its "all" term; add it` };
}

/** Return path: a `v=pl1` record at `_postline.<name>` naming our RETURN_PATH_DOMAIN in `rp=`. */
export function judgeReturnPath(lookup: Lookup<string>, expected: ExpectedRecord, s: RecordSettings): Judgement {
  if (!lookup.ok) return absent(lookup, expected.name);
  const ours = texts(lookup.records)
    .map(tagList)
    .filter((t) => t.get("v") === "pl1");
  if (ours.length === 0) return { status: "pending", detail: `no v=pl1 record at ${expected.name}` };
  if (ours.some((t) => sameHost(t.get("rp") ?? "", s.returnPathDomain ?? ""))) return { status: "verified", detail: `names rp=${s.returnPathDomain}` };
  return { status: "invalid", detail: `the record names rp=${ours[0]!.get("rp") ?? ""}, not ${s.returnPathDomain}` };
}

/** DMARC (RFC 7489 §6.6.3): exactly one record starting `v=DMARC1`; any policy counts (informational). */
export function judgeDmarc(lookup: Lookup<string>, expected: ExpectedRecord): Judgement {
  if (!lookup.ok) return absent(lookup, expected.name);
  const dmarc = texts(lookup.records).filter((t) => /^v\s*=\s*DMARC1\s*(;|$)/.test(t));
  if (dmarc.length === 0) return { status: "pending", detail: `no DMARC record (v=DMARC1) at ${expected.name}` };
  if (dmarc.length > 1) return { status: "invalid", detail: `${dmarc.length} DMARC records at ${expected.name}; receivers ignore them all (RFC 7489 §6.6.3)` };
  return { status: "verified", detail: `policy p=${tagList(dmarc[0]!).get("p") ?? "(none given)"}` };
}

/** The domain's overall status: verified when every required record is. */
export function overallStatus(records: ExpectedRecord[], checks: RecordChecks): "pending" | "verified" {
  return records.every((r) => !r.required || checks[r.purpose]?.status === "verified") ? "verified" : "pending";
}
