/**
 * MTA-STS (RFC 8461), the edge: discovers a recipient domain's policy and caches it.
 *
 *   TXT _mta-sts.<domain>  → exactly one valid `v=STSv1; id=…` record (§3.1), else no policy
 *   same id as a fresh cached policy → the cached policy, no HTTPS
 *   else GET https://mta-sts.<domain>/.well-known/mta-sts.txt (§3.3): resolved with our
 *   resolver, every address through the destination guard, connected to the IP literal with
 *   SNI and certificate checks against mta-sts.<domain>; 200 + text/plain only, no redirects,
 *   ≤ 64 KB, one deadline for the whole fetch.
 *
 * Failures never throw and never delay mail for long: §3.3/§5.1 say that without a live policy
 * a cached unexpired one still applies, and without either the sender delivers as though the
 * domain had no MTA-STS. So there is no "temporary" outcome: it is a policy or it is none.
 */
import https from "node:https";
import tls from "node:tls";
import { allowedAddresses } from "../dns/allowed-addresses.js";
import type { Resolver } from "../dns/types.js";
import { normaliseHost, parsePolicy, pickStsRecord, type StsPolicy } from "./mta-sts-policy.js";

export { applyPolicy, mxMatches, parsePolicy, parseStsTxt, pickStsRecord } from "./mta-sts-policy.js";
export type { PolicyDecision, StsMode, StsPolicy } from "./mta-sts-policy.js";

export type StsResult =
  /** No policy applies: deliver as without MTA-STS. `reason` is for logs. */
  | { kind: "none"; reason: string }
  /**
   * The policy to apply. `source` says whether it was just fetched or came from the cache;
   * `warning` says why a live policy could not be confirmed when the cached one was used.
   */
  | { kind: "policy"; policy: StsPolicy; id: string; source: "fetched" | "cached"; warning?: string };

export interface MtaStsDeps {
  resolver: Resolver;
  /** DELIVERY_ALLOW_NETWORKS: the policy host goes through the same guard as MX hosts. */
  allowNetworks: readonly string[];
  /** Default 443; tests use another. */
  httpsPort?: number;
  /** Extra trusted roots added to Node's bundled ones (tests). */
  ca?: string | Buffer;
  /**
   * For the whole fetch (all addresses). Default 10000 ms. §3.3 suggests up to a minute; we
   * wait less because the fetch holds up a delivery job, and a slow policy host only means the
   * cached policy (or none) this time, and another try after failureTtlMs.
   */
  timeoutMs?: number;
  /** Clock in milliseconds for max_age. Default Date.now. */
  now?: () => number;
  /** A failed fetch for the same domain and id is not retried for this long. Default 5 min. */
  failureTtlMs?: number;
  /** Most domains remembered (policies and failures each). Default 10000. */
  maxCached?: number;
}

export interface MtaStsFetcher {
  /** Never throws; `domain` is the ASCII (punycode) recipient domain. */
  policyFor(domain: string): Promise<StsResult>;
}

export const POLICY_PATH = "/.well-known/mta-sts.txt";
/** A policy body larger than this is refused (§3.3 suggests a 64 KB limit). */
export const MAX_POLICY_BYTES = 64 * 1024;

interface Cached {
  id: string;
  policy: StsPolicy;
  expiresAt: number;
}
type Fetched = { ok: true; policy: StsPolicy } | { ok: false; reason: string };

/** Creates a fetcher with its own policy cache; make one per process and keep it. */
export function createMtaStsFetcher(deps: MtaStsDeps): MtaStsFetcher {
  const now = deps.now ?? Date.now;
  const port = deps.httpsPort ?? 443;
  const timeoutMs = deps.timeoutMs ?? 10_000;
  const failureTtlMs = deps.failureTtlMs ?? 5 * 60_000;
  const maxCached = Math.max(1, deps.maxCached ?? 10_000);
  // `ca` alone would replace Node's roots; an extra root must add to them.
  const trust = deps.ca === undefined ? undefined : [...tls.rootCertificates, deps.ca];
  const policies = new Map<string, Cached>();
  const failures = new Map<string, { id: string; until: number; reason: string }>();
  const inFlight = new Map<string, Promise<Fetched>>();

  function remember<V>(map: Map<string, V>, key: string, value: V): void {
    map.delete(key);
    map.set(key, value);
    // Maps iterate in insertion order: the first key is the least recently stored.
    if (map.size > maxCached) map.delete(map.keys().next().value!);
  }

  const cachedResult = (c: Cached, warning?: string): StsResult => ({
    kind: "policy",
    policy: c.policy,
    id: c.id,
    source: "cached",
    ...(warning === undefined ? {} : { warning }),
  });

  async function fetchPolicy(domain: string): Promise<Fetched> {
    const host = `mta-sts.${domain}`;
    const deadline = performance.now() + timeoutMs;
    // Destination guard: check every address, connect only to the literals that passed.
    const dest = await allowedAddresses(deps.resolver, host, deps.allowNetworks);
    if (!dest.ok) return { ok: false, reason: dest.reason };
    const allowed = dest.ips;
    const errors: string[] = [];
    for (const ip of allowed) {
      const left = Math.floor(deadline - performance.now());
      if (left <= 0) break;
      const got = await httpsGet({ ip, host, port, trust, timeoutMs: left, deadlineMs: timeoutMs });
      if (!got.ok) {
        errors.push(`[${ip}] ${got.reason}`);
        continue;
      }
      const parsed = parsePolicy(got.body);
      if (parsed.ok) return parsed;
      errors.push(`[${ip}] invalid policy: ${parsed.reason}`);
    }
    if (errors.length < allowed.length) errors.push(`no time left for the other addresses (${timeoutMs} ms deadline)`);
    return { ok: false, reason: `https://${host}${POLICY_PATH}: ${errors.join("; ")}` };
  }

  /** Concurrent jobs to one domain share one fetch. */
  function fetchShared(domain: string, id: string): Promise<Fetched> {
    const key = `${domain} ${id}`;
    let pending = inFlight.get(key);
    if (pending === undefined) {
      pending = fetchPolicy(domain)
        .catch((err: unknown): Fetched => ({ ok: false, reason: `fetch failed: ${String(err)}` }))
        .finally(() => inFlight.delete(key));
      inFlight.set(key, pending);
    }
    return pending;
  }

  async function policyFor(rawDomain: string): Promise<StsResult> {
    const domain = normaliseHost(rawDomain.trim());
    if (domain === null) return { kind: "none", reason: `${JSON.stringify(rawDomain)} is not a domain name` };
    let cached = policies.get(domain);
    if (cached !== undefined && cached.expiresAt <= now()) {
      policies.delete(domain);
      cached = undefined;
    }

    const txt = await deps.resolver.txt(`_mta-sts.${domain}`);
    const record = txt.ok ? pickStsRecord(txt.records) : { ok: false as const, reason: txt.reason };
    if (!record.ok) {
      // §3.3: with no live policy indicator an unexpired cached policy still applies (a missing
      // TXT record may be an attacker's doing; a domain leaves MTA-STS with mode none, §8.3).
      if (cached) return cachedResult(cached, `no valid _mta-sts.${domain} TXT record (${record.reason}); using the cached policy`);
      return { kind: "none", reason: `${domain} publishes no MTA-STS policy: ${record.reason}` };
    }
    // §3.1: the id says whether the cached policy is still the current one.
    if (cached && cached.id === record.id) return cachedResult(cached);

    let reason: string;
    const failed = failures.get(domain);
    if (failed && failed.id === record.id && failed.until > now()) {
      reason = `${failed.reason} (not retried yet)`;
    } else {
      const fetched = await fetchShared(domain, record.id);
      if (fetched.ok) {
        failures.delete(domain);
        remember(policies, domain, { id: record.id, policy: fetched.policy, expiresAt: now() + fetched.policy.maxAge * 1000 });
        return { kind: "policy", policy: fetched.policy, id: record.id, source: "fetched" };
      }
      reason = fetched.reason;
      remember(failures, domain, { id: record.id, until: now() + failureTtlMs, reason });
    }
    // §3.3/§5.1: a failed fetch falls back to the unexpired cached policy, else to no policy.
    if (cached) return cachedResult(cached, `policy ${record.id} could not be fetched (${reason}); using cached policy ${cached.id}`);
    return { kind: "none", reason: `MTA-STS policy ${record.id} of ${domain} could not be fetched: ${reason}` };
  }

  return { policyFor };
}

interface GetTarget {
  ip: string;
  host: string;
  port: number;
  trust: (string | Buffer)[] | undefined;
  /** What is left of the deadline for this address. */
  timeoutMs: number;
  /** The whole fetch's deadline, for the message. */
  deadlineMs: number;
}

/** One GET of the policy file from one address; every failure is a value. */
function httpsGet(t: GetTarget): Promise<{ ok: true; body: string } | { ok: false; reason: string }> {
  return new Promise((resolve) => {
    let settled = false;
    const finish = (r: { ok: true; body: string } | { ok: false; reason: string }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve(r);
    };
    const fail = (reason: string) => finish({ ok: false, reason });
    const req = https.request({
      host: t.ip, // the literal the guard checked; Node does not resolve IP literals
      port: t.port,
      method: "GET",
      path: POLICY_PATH,
      headers: { host: t.port === 443 ? t.host : `${t.host}:${t.port}`, accept: "text/plain", "user-agent": "Postline (MTA-STS)" },
      agent: false, // a fresh connection each time: no pooling, no HTTP caching (§3.3)
      servername: t.host, // SNI (RFC 6066 §3)
      // §3.3: the policy host MUST present a valid certificate for mta-sts.<domain>.
      rejectUnauthorized: true,
      checkServerIdentity: (_ip, cert) => tls.checkServerIdentity(t.host, cert),
      ...(t.trust ? { ca: t.trust } : {}),
    });
    const timer = setTimeout(() => fail(`no complete answer before the ${t.deadlineMs} ms deadline`), t.timeoutMs);
    req.on("error", (err) => fail(err.message));
    req.on("response", (res) => {
      const status = res.statusCode ?? 0;
      // §3.3: "HTTP 3xx redirects MUST NOT be followed".
      if (status >= 300 && status < 400) return fail(`HTTP ${status} redirect not followed (RFC 8461 §3.3)`);
      if (status !== 200) return fail(`HTTP ${status}, not 200`);
      const type = res.headers["content-type"] ?? "";
      if ((type.split(";")[0] ?? "").trim().toLowerCase() !== "text/plain") {
        return fail(`Content-Type ${JSON.stringify(type.slice(0, 100))} is not text/plain`);
      }
      if (Number(res.headers["content-length"] ?? 0) > MAX_POLICY_BYTES) return fail(`body larger than ${MAX_POLICY_BYTES} bytes`);
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_POLICY_BYTES) return fail(`body larger than ${MAX_POLICY_BYTES} bytes`);
        chunks.push(chunk);
      });
      res.on("error", (err) => fail(err.message));
      res.on("close", () => res.complete || fail("connection closed before the body ended"));
      res.on("end", () => {
        try {
          finish({ ok: true, body: new TextDecoder("utf-8", { fatal: true }).decode(Buffer.concat(chunks)) });
        } catch {
          fail("body is not UTF-8");
        }
      });
    });
    req.end();
  });
}
