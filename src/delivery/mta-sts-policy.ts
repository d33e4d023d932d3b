/**
 * MTA-STS (RFC 8461), the pure part: the `_mta-sts` TXT record (§3.1), the policy file (§3.2),
 * MX pattern matching (§4.1) and what a policy means for the hosts a job may try (§5).
 * No I/O here; mta-sts.ts does the DNS and HTTPS.
 */

export type StsMode = "enforce" | "testing" | "none";

export interface StsPolicy {
  version: "STSv1";
  mode: StsMode;
  /** MX patterns, lower-case, without a trailing dot: `mx.example.com` or `*.example.net`. */
  mx: string[];
  /** Seconds the policy may be cached (§3.2: at most 31557600, one year). */
  maxAge: number;
}

export type ParsedPolicy = { ok: true; policy: StsPolicy } | { ok: false; reason: string };
export type ParsedStsTxt = { ok: true; id: string } | { ok: false; reason: string };

/** §3.2: max_age is at most 31557600 seconds. */
export const MAX_MAX_AGE = 31_557_600;

const MODES: readonly StsMode[] = ["enforce", "testing", "none"];
// §3.2 ABNF: sts-policy-ext-name = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".");
// sts-policy-field-delim = ":" *WSP; each field may be followed by *WSP.
const FIELD = /^([A-Za-z0-9][A-Za-z0-9_.-]{0,31}):[ \t]*(.*?)[ \t]*$/;
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** Remote text in a reason: quoted, control characters escaped, at most 64 characters. */
const show = (text: string) => JSON.stringify(text.length > 64 ? `${text.slice(0, 64)}…` : text);

/** A host name in LDH form (RFC 5321 `Domain`), lower-case; one trailing dot tolerated; else null. */
export function normaliseHost(name: string): string | null {
  const host = name.toLowerCase().replace(/\.$/, "");
  if (host.length === 0 || host.length > 253) return null;
  return host.split(".").every((l) => LABEL.test(l)) ? host : null;
}

/**
 * Parses a policy file body (§3.2). Lines end in CRLF or LF (ABNF `sts-policy-term`); blank
 * lines are skipped; field names are case-sensitive; unknown fields are ignored (extensions).
 * `version`, `mode` and `max_age` are required exactly once (the ABNF says "required once", so
 * a repeated one makes the policy invalid rather than guessing which to trust); `mx` is
 * required at least once except in mode `none`.
 */
export function parsePolicy(text: string): ParsedPolicy {
  const bad = (reason: string): ParsedPolicy => ({ ok: false, reason });
  const single = new Map<string, string>();
  const mx: string[] = [];
  const lines = text.split(/\r?\n/);
  for (const [index, line] of lines.entries()) {
    if (line.trim() === "") continue;
    if (line.includes("\r")) return bad(`line ${index + 1} has a bare CR`);
    const m = FIELD.exec(line);
    if (!m) return bad(`line ${index + 1} is not "key: value"`);
    const key = m[1]!;
    const value = m[2]!;
    if (key === "mx") {
      const pattern = value.startsWith("*.") ? normaliseHost(value.slice(2)) : normaliseHost(value);
      if (pattern === null) return bad(`mx ${show(value)} is not a host name or a "*." pattern`);
      mx.push(value.startsWith("*.") ? `*.${pattern}` : pattern);
    } else if (key === "version" || key === "mode" || key === "max_age") {
      if (single.has(key)) return bad(`${key} appears more than once`);
      single.set(key, value);
    }
    // Anything else is an extension field: ignored (§3.2).
  }
  const version = single.get("version");
  const mode = single.get("mode");
  const maxAge = single.get("max_age");
  if (version === undefined) return bad("version is missing");
  if (version !== "STSv1") return bad(`version ${show(version)} is not STSv1`);
  if (mode === undefined) return bad("mode is missing");
  if (!(MODES as readonly string[]).includes(mode)) return bad(`mode ${show(mode)} is not enforce, testing or none`);
  if (maxAge === undefined) return bad("max_age is missing");
  // §3.2 ABNF: sts-policy-max-age-value = 1*10(DIGIT), at most 31557600.
  if (!/^\d{1,10}$/.test(maxAge)) return bad(`max_age ${show(maxAge)} is not a number of seconds`);
  if (Number(maxAge) > MAX_MAX_AGE) return bad(`max_age ${maxAge} exceeds ${MAX_MAX_AGE}`);
  if (mx.length === 0 && mode !== "none") return bad(`mode ${mode} needs at least one mx`);
  return { ok: true, policy: { version: "STSv1", mode: mode as StsMode, mx, maxAge: Number(maxAge) } };
}

// §3.1 ABNF: sts-field-delim = *WSP ";" *WSP; sts-id = "id=" 1*32(ALPHA / DIGIT);
// sts-ext-name = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".");
// sts-ext-value = 1*(%x21-3A / %x3C / %x3E-7E).
const TXT_ID = /^id=([A-Za-z0-9]{1,32})$/;
const TXT_EXTENSION = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}=[\x21-\x3a\x3c\x3e-\x7e]+$/;

/** Parses one `_mta-sts.<domain>` TXT record (§3.1): `v=STSv1; id=20160831085700Z;`. */
export function parseStsTxt(txt: string): ParsedStsTxt {
  const fields = txt.replace(/[ \t]+$/, "").split(/[ \t]*;[ \t]*/);
  if (fields[0] !== "v=STSv1") return { ok: false, reason: `${show(txt)} does not start with v=STSv1` };
  if (fields.length > 1 && fields[fields.length - 1] === "") fields.pop(); // a trailing ";" is allowed
  let id: string | null = null;
  for (const field of fields.slice(1)) {
    const m = TXT_ID.exec(field);
    if (m) {
      if (id !== null) return { ok: false, reason: "id appears more than once" };
      id = m[1]!;
    } else if (!TXT_EXTENSION.test(field)) {
      return { ok: false, reason: `${show(field)} is not a valid field` };
    }
  }
  if (id === null) return { ok: false, reason: "no valid id= field (1-32 letters and digits)" };
  return { ok: true, id };
}

/**
 * Picks the policy indicator from all TXT records at `_mta-sts.<domain>` (§3.1): records that
 * do not begin with "v=STSv1;" are discarded; anything but exactly one left, or an invalid
 * one, means the domain has no available policy.
 */
export function pickStsRecord(records: readonly string[]): ParsedStsTxt {
  const sts = records.filter((r) => /^v=STSv1[ \t]*;/.test(r));
  if (sts.length === 0) return { ok: false, reason: "no TXT record starting with v=STSv1" };
  if (sts.length > 1) return { ok: false, reason: `${sts.length} TXT records start with v=STSv1, exactly one is allowed` };
  return parseStsTxt(sts[0]!);
}

/**
 * §4.1: an MX host matches a pattern exactly or, for `*.example.com`, when only its left-most
 * label differs (`mx.example.com`, not `example.com` nor `a.b.example.com`). Case-insensitive.
 */
export function mxMatches(pattern: string, host: string): boolean {
  const p = pattern.toLowerCase().replace(/\.$/, "");
  const h = host.toLowerCase().replace(/\.$/, "");
  if (h === "" || p === "") return false;
  if (!p.startsWith("*.")) return p === h;
  const suffix = p.slice(1); // ".example.com"
  if (suffix.length < 2 || !h.endsWith(suffix)) return false;
  const first = h.slice(0, h.length - suffix.length);
  return first.length > 0 && !first.includes(".");
}

export type PolicyDecision<C> =
  /** `warning`: in testing mode, MX hosts the policy would have refused (for logs/TLSRPT). */
  | { candidates: C[]; tls: "required" | "opportunistic"; warning?: string }
  /** Enforce mode left nothing to try: a deferral, never a bounce (§5.1: re-check the policy first). */
  | { refuse: string };

/**
 * What a policy means for the addresses a job would try (§5). `enforce`: only MX hosts that
 * match a pattern, over TLS with a certificate verified against the MX name (§4.2), never a
 * plain-text fallback. `testing` and `none`: deliver as without MTA-STS (opportunistic TLS).
 */
export function applyPolicy<C extends { mx: string }>(policy: StsPolicy, candidates: readonly C[]): PolicyDecision<C> {
  const matches = (c: C) => policy.mx.some((p) => mxMatches(p, c.mx));
  const outside = [...new Set(candidates.filter((c) => !matches(c)).map((c) => c.mx))];
  const patterns = policy.mx.length > 0 ? policy.mx.join(", ") : "(none)";
  if (policy.mode === "enforce") {
    const kept = candidates.filter(matches);
    if (kept.length === 0) {
      const hosts = outside.length > 0 ? outside.join(", ") : "(none)";
      return { refuse: `MTA-STS policy (enforce) allows MX ${patterns}, but none of the MX hosts matches: ${hosts}` };
    }
    return { candidates: kept, tls: "required" };
  }
  const all = [...candidates];
  if (policy.mode === "testing" && outside.length > 0) {
    return { candidates: all, tls: "opportunistic", warning: `MTA-STS policy (testing) would refuse MX ${outside.join(", ")} (allowed: ${patterns})` };
  }
  return { candidates: all, tls: "opportunistic" };
}
