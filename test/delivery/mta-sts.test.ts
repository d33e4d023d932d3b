/**
 * MTA-STS (RFC 8461): the pure parsers and matcher as tables, then the fetcher against a real
 * HTTPS server on 127.0.0.1 with certificates from a CA made at test time, and DNS answers
 * from the in-process responder. The clock is injected; nothing sleeps.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createResolver } from "../../src/dns/resolver.js";
import {
  applyPolicy,
  createMtaStsFetcher,
  MAX_POLICY_BYTES,
  mxMatches,
  parsePolicy,
  parseStsTxt,
  pickStsRecord,
  POLICY_PATH,
  type MtaStsDeps,
  type StsPolicy,
} from "../../src/delivery/mta-sts.js";
import { startDnsServer, type DnsServer, type Zone } from "../helpers/dns-server.js";
import { startHttpsServer, testCertificateAuthority, type HttpsAnswer, type RunningHttpsServer } from "../helpers/https-server.js";
import { testCertificate, type TestCertificate } from "../helpers/smtp-servers.js";

const lf = (...lines: string[]) => lines.join("\n") + "\n";
const crlf = (...lines: string[]) => lines.join("\r\n") + "\r\n";

describe("parsePolicy (RFC 8461 §3.2)", () => {
  const valid: [string, string, StsPolicy][] = [
    ["LF lines", lf("version: STSv1", "mode: enforce", "mx: mx1.example.com", "mx: *.mx.example.net", "max_age: 86400"),
      { version: "STSv1", mode: "enforce", mx: ["mx1.example.com", "*.mx.example.net"], maxAge: 86400 }],
    ["CRLF lines", crlf("version: STSv1", "mode: testing", "mx: mx1.example.com", "max_age: 604800"),
      { version: "STSv1", mode: "testing", mx: ["mx1.example.com"], maxAge: 604800 }],
    ["no final line break, fields in any order", "max_age: 0\nmx: a.example.com\nmode: enforce\nversion: STSv1",
      { version: "STSv1", mode: "enforce", mx: ["a.example.com"], maxAge: 0 }],
    ["no space after the colon, trailing blanks", lf("version:STSv1", "mode:enforce \t", "mx:a.example.com", "max_age:31557600"),
      { version: "STSv1", mode: "enforce", mx: ["a.example.com"], maxAge: 31557600 }],
    ["unknown fields ignored, UTF-8 in them too", lf("version: STSv1", "mode: enforce", "x-vendor.note: hello wörld", "mx: a.example.com", "max_age: 60", "future_key: 1"),
      { version: "STSv1", mode: "enforce", mx: ["a.example.com"], maxAge: 60 }],
    ["mode none needs no mx", lf("version: STSv1", "mode: none", "max_age: 86400"), { version: "STSv1", mode: "none", mx: [], maxAge: 86400 }],
    ["mx lower-cased, one trailing dot dropped", lf("version: STSv1", "mode: enforce", "mx: MX1.Example.COM.", "mx: *.Example.net", "max_age: 1"),
      { version: "STSv1", mode: "enforce", mx: ["mx1.example.com", "*.example.net"], maxAge: 1 }],
    ["blank lines skipped", "version: STSv1\r\n\r\nmode: enforce\r\nmx: a.example.com\r\nmax_age: 5\r\n\r\n",
      { version: "STSv1", mode: "enforce", mx: ["a.example.com"], maxAge: 5 }],
  ];
  for (const [name, text, policy] of valid) {
    it(`accepts a policy with ${name}`, () => {
      expect(parsePolicy(text)).toEqual({ ok: true, policy });
    });
  }

  const base = { version: "version: STSv1", mode: "mode: enforce", mx: "mx: a.example.com", maxAge: "max_age: 86400" };
  const invalid: [string, string, RegExp][] = [
    ["version is missing", lf(base.mode, base.mx, base.maxAge), /version is missing/],
    ["version is not STSv1", lf("version: STSv2", base.mode, base.mx, base.maxAge), /not STSv1/],
    ["field names are case-sensitive", lf("Version: STSv1", base.mode, base.mx, base.maxAge), /version is missing/],
    ["mode is missing", lf(base.version, base.mx, base.maxAge), /mode is missing/],
    ["mode is unknown", lf(base.version, "mode: Enforce", base.mx, base.maxAge), /mode "Enforce"/],
    ["mode appears twice", lf(base.version, base.mode, "mode: none", base.mx, base.maxAge), /mode appears more than once/],
    ["max_age is missing", lf(base.version, base.mode, base.mx), /max_age is missing/],
    ["max_age exceeds 31557600", lf(base.version, base.mode, base.mx, "max_age: 31557601"), /exceeds 31557600/],
    ["max_age is negative", lf(base.version, base.mode, base.mx, "max_age: -1"), /not a number/],
    ["max_age has 11 digits", lf(base.version, base.mode, base.mx, "max_age: 00000086400"), /not a number/],
    ["max_age is not an integer", lf(base.version, base.mode, base.mx, "max_age: 1e5"), /not a number/],
    ["enforce without mx", lf(base.version, base.mode, base.maxAge), /needs at least one mx/],
    ["testing without mx", lf(base.version, "mode: testing", base.maxAge), /needs at least one mx/],
    ["an mx that is no host name", lf(base.version, base.mode, "mx: mail..example.com", base.maxAge), /not a host name/],
    ["a wildcard that is not the whole left-most label", lf(base.version, base.mode, "mx: mx*.example.com", base.maxAge), /not a host name/],
    ["a double wildcard", lf(base.version, base.mode, "mx: *.*.example.com", base.maxAge), /not a host name/],
    ["a line without a colon", lf(base.version, base.mode, "mx a.example.com", base.maxAge), /line 3 is not "key: value"/],
    ["space before the colon", lf(base.version, "mode : enforce", base.mx, base.maxAge), /line 2/],
    ["a bare CR inside a line", lf(base.version, "mode: enforce\rmx: b.example.com", base.mx, base.maxAge), /bare CR/],
    ["an HTML page", "<html><body>mode: enforce</body></html>", /not "key: value"/],
    ["an empty body", "", /version is missing/],
  ];
  for (const [name, text, reason] of invalid) {
    it(`refuses a policy when ${name}`, () => {
      const r = parsePolicy(text);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.reason).toMatch(reason);
    });
  }
});

describe("mxMatches (RFC 8461 §4.1)", () => {
  const table: [string, string, boolean][] = [
    ["mail.example.com", "mail.example.com", true],
    ["mail.example.com", "MAIL.Example.Com", true],
    ["Mail.Example.COM", "mail.example.com.", true],
    ["mail.example.com", "mail2.example.com", false],
    ["mail.example.com", "mail.example.com.evil.test", false],
    ["mail.example.com", "example.com", false],
    ["*.example.com", "mx1.example.com", true],
    ["*.Example.com", "MX1.EXAMPLE.com", true],
    ["*.example.com", "example.com", false], // the wildcard is one whole label, never none
    ["*.example.com", "a.b.example.com", false], // … and never two
    ["*.example.com", "mx1.badexample.com", false],
    ["*.example.com", "mx1.example.net", false],
    ["*.example.com", ".example.com", false],
    ["*", "mx1.example.com", false],
    ["mx.*.example.com", "mx.a.example.com", false],
    ["", "", false],
  ];
  for (const [pattern, host, expected] of table) {
    it(`${JSON.stringify(pattern)} ${expected ? "matches" : "does not match"} ${JSON.stringify(host)}`, () => {
      expect(mxMatches(pattern, host)).toBe(expected);
    });
  }
});

describe("parseStsTxt and pickStsRecord (RFC 8461 §3.1)", () => {
  const valid: [string, string][] = [
    ["v=STSv1; id=20160831085700Z;", "20160831085700Z"],
    ["v=STSv1; id=abc", "abc"],
    ["v=STSv1;id=abc;", "abc"],
    ["v=STSv1 ;\tid=abc ; ext_1=val:ue ", "abc"],
    ["v=STSv1; x.y=1; id=" + "a".repeat(32), "a".repeat(32)],
  ];
  for (const [txt, id] of valid) {
    it(`reads id ${id.slice(0, 12)} from ${JSON.stringify(txt.slice(0, 40))}`, () => {
      expect(parseStsTxt(txt)).toEqual({ ok: true, id });
    });
  }
  const invalid: [string, RegExp][] = [
    ["v=STSv1", /no valid id/],
    ["v=STSv1;", /no valid id/],
    ["v=STSv2; id=abc", /does not start with v=STSv1/],
    [" v=STSv1; id=abc", /does not start with v=STSv1/],
    ["id=abc; v=STSv1", /does not start with v=STSv1/],
    ["v=stsv1; id=abc", /does not start with v=STSv1/],
    ["v=STSv1; id=ab-c", /no valid id/],
    ["v=STSv1; id=" + "a".repeat(33), /no valid id/],
    ["v=STSv1; id=a; id=b", /more than once/],
    ["v=STSv1; id=abc; bad field", /not a valid field/],
    ["v=STSv1;; id=abc", /not a valid field/],
  ];
  for (const [txt, reason] of invalid) {
    it(`refuses the TXT record ${JSON.stringify(txt.slice(0, 40))}`, () => {
      const r = parseStsTxt(txt);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.reason).toMatch(reason);
    });
  }

  it("ignores TXT records that are not v=STSv1 (SPF, site verification) and uses the one that is", () => {
    expect(pickStsRecord(["v=spf1 -all", "v=STSv1; id=one", "google-site-verification=x"])).toEqual({ ok: true, id: "one" });
  });
  it("finds no policy when two records start with v=STSv1", () => {
    expect(pickStsRecord(["v=STSv1; id=one", "v=STSv1; id=two"])).toMatchObject({ ok: false, reason: expect.stringMatching(/exactly one/) });
  });
  it("finds no policy when no record starts with v=STSv1;", () => {
    expect(pickStsRecord(["v=STSv10; id=one", "v=spf1 -all"])).toMatchObject({ ok: false });
    expect(pickStsRecord([])).toMatchObject({ ok: false });
  });
});

describe("applyPolicy", () => {
  const policy = (mode: StsPolicy["mode"], mx: string[]): StsPolicy => ({ version: "STSv1", mode, mx, maxAge: 86400 });
  const c = (mx: string, ip: string) => ({ mx, ip, port: 25 });
  const hosts = [c("mx1.example.com", "203.0.113.1"), c("backup.other.net", "203.0.113.2"), c("mx2.example.com", "203.0.113.3")];

  it("keeps only matching MX hosts, in their order, and requires verified TLS in enforce mode", () => {
    expect(applyPolicy(policy("enforce", ["*.example.com"]), hosts)).toEqual({ candidates: [hosts[0], hosts[2]], tls: "required" });
  });
  it("keeps every address of a matching host in enforce mode", () => {
    const twoAddresses = [c("mx.example.com", "203.0.113.1"), c("mx.example.com", "2001:db8::1")];
    expect(applyPolicy(policy("enforce", ["mx.example.com"]), twoAddresses)).toEqual({ candidates: twoAddresses, tls: "required" });
  });
  it("refuses, naming the hosts and the patterns, when no MX host matches in enforce mode", () => {
    const r = applyPolicy(policy("enforce", ["mail.example.org"]), hosts);
    expect(r).toEqual({ refuse: expect.stringMatching(/enforce.*mail\.example\.org.*mx1\.example\.com, backup\.other\.net, mx2\.example\.com/) });
  });
  it("refuses in enforce mode when there is no candidate at all", () => {
    expect(applyPolicy(policy("enforce", ["mx.example.com"]), [])).toHaveProperty("refuse");
  });
  it("changes nothing in testing mode, but says which hosts enforce would have refused", () => {
    expect(applyPolicy(policy("testing", ["*.example.com"]), hosts)).toEqual({
      candidates: hosts,
      tls: "opportunistic",
      warning: expect.stringMatching(/would refuse MX backup\.other\.net/),
    });
    expect(applyPolicy(policy("testing", ["*.example.com", "*.other.net"]), hosts)).toEqual({ candidates: hosts, tls: "opportunistic" });
  });
  it("changes nothing in mode none", () => {
    expect(applyPolicy(policy("none", []), hosts)).toEqual({ candidates: hosts, tls: "opportunistic" });
  });
});

describe("createMtaStsFetcher against a real HTTPS server", () => {
  const DOMAIN = "sts.example";
  const HOST = "mta-sts.sts.example";
  const POLICY = crlf("version: STSv1", "mode: enforce", "mx: mx1.sts.example", "mx: *.mx.sts.example", "max_age: 86400");
  const TESTING = lf("version: STSv1", "mode: testing", "mx: *.sts.example", "max_age: 86400");
  const ok = (body: string, type = "text/plain; charset=utf-8") => () => ({ status: 200, headers: { "content-type": type }, body });

  let dns: DnsServer;
  let ca: ReturnType<typeof testCertificateAuthority>;
  let good: TestCertificate;
  let wrongName: TestCertificate;
  let selfSigned: TestCertificate;
  let server: RunningHttpsServer;
  let clock: number;

  beforeAll(async () => {
    ca = testCertificateAuthority();
    good = ca.issue([HOST]);
    wrongName = ca.issue(["mta-sts.other.example"]);
    selfSigned = testCertificate([HOST]);
    dns = await startDnsServer({});
  });
  afterAll(async () => {
    await dns.close();
  });
  beforeEach(async () => {
    clock = 1_700_000_000_000;
    server = await startHttpsServer(good, ok(POLICY));
    dns.setZone(zone("1"));
  });
  afterEach(async () => {
    await server.close();
  });

  /** `_mta-sts.sts.example` with `ids` (none: no record), and the policy host on 127.0.0.1. */
  function zone(...ids: string[]): Zone {
    return {
      ...(ids.length > 0 ? { [`_mta-sts.${DOMAIN}`]: { TXT: ids.map((id) => `v=STSv1; id=${id};`) } } : {}),
      [HOST]: { A: ["127.0.0.1"] },
    };
  }

  function fetcher(overrides: Partial<MtaStsDeps> = {}) {
    return createMtaStsFetcher({
      resolver: createResolver({ servers: [dns.address], cache: false, timeoutMs: 1000, tries: 1 }),
      allowNetworks: ["127.0.0.0/8"],
      httpsPort: server.port,
      ca: ca.cert,
      timeoutMs: 3000,
      now: () => clock,
      ...overrides,
    });
  }

  it("fetches the policy from mta-sts.<domain> with SNI and Host naming that host, and caches it while max_age lasts", async () => {
    const sts = fetcher();
    const first = await sts.policyFor(DOMAIN);
    expect(first).toEqual({
      kind: "policy",
      id: "1",
      source: "fetched",
      policy: { version: "STSv1", mode: "enforce", mx: ["mx1.sts.example", "*.mx.sts.example"], maxAge: 86400 },
    });
    expect(server.requests).toEqual([{ method: "GET", url: POLICY_PATH, host: `${HOST}:${server.port}`, servername: HOST }]);

    clock += 86_399_000; // one second before max_age runs out
    const txtBefore = dns.queries.filter((q) => q.type === "TXT").length;
    expect(await sts.policyFor("STS.example.")).toMatchObject({ kind: "policy", id: "1", source: "cached" });
    expect(server.requests).toHaveLength(1);
    // §3.1: the TXT record is still asked every time, to notice a new id.
    expect(dns.queries.filter((q) => q.type === "TXT").length).toBe(txtBefore + 1);
  });

  it("fetches again when the TXT id changes", async () => {
    const sts = fetcher();
    await sts.policyFor(DOMAIN);
    server.answer(ok(TESTING));
    dns.setZone(zone("2"));
    expect(await sts.policyFor(DOMAIN)).toMatchObject({ kind: "policy", id: "2", source: "fetched", policy: { mode: "testing", mx: ["*.sts.example"] } });
    expect(server.requests).toHaveLength(2);
  });

  it("fetches again once max_age has passed, even with the same id", async () => {
    server.answer(ok(lf("version: STSv1", "mode: enforce", "mx: mx1.sts.example", "max_age: 60")));
    const sts = fetcher();
    await sts.policyFor(DOMAIN);
    clock += 60_000;
    expect(await sts.policyFor(DOMAIN)).toMatchObject({ kind: "policy", source: "fetched" });
    expect(server.requests).toHaveLength(2);
  });

  it("makes one request for concurrent look-ups of the same domain", async () => {
    const sts = fetcher();
    const all = await Promise.all([sts.policyFor(DOMAIN), sts.policyFor(DOMAIN), sts.policyFor(DOMAIN)]);
    expect(all.map((r) => r.kind)).toEqual(["policy", "policy", "policy"]);
    expect(server.requests).toHaveLength(1);
  });

  it("finds no policy, and asks for none over HTTPS, when there is no _mta-sts TXT record", async () => {
    dns.setZone(zone());
    expect(await fetcher().policyFor(DOMAIN)).toEqual({ kind: "none", reason: expect.stringMatching(/publishes no MTA-STS policy/) });
    expect(server.connections()).toBe(0);
  });

  it("finds no policy when two TXT records start with v=STSv1, or the only one is invalid", async () => {
    dns.setZone(zone("1", "2"));
    expect(await fetcher().policyFor(DOMAIN)).toMatchObject({ kind: "none", reason: expect.stringMatching(/exactly one/) });
    dns.setZone(zone("not-an-id!"));
    expect(await fetcher().policyFor(DOMAIN)).toMatchObject({ kind: "none" });
    expect(server.connections()).toBe(0);
  });

  it("keeps applying the cached policy when the TXT record disappears or DNS fails (RFC 8461 §3.3)", async () => {
    const sts = fetcher();
    await sts.policyFor(DOMAIN);
    dns.setZone(zone());
    expect(await sts.policyFor(DOMAIN)).toMatchObject({ kind: "policy", id: "1", source: "cached", warning: expect.stringMatching(/no valid _mta-sts/) });
    dns.setZone({ [`_mta-sts.${DOMAIN}`]: { SERVFAIL: true } });
    expect(await sts.policyFor(DOMAIN)).toMatchObject({ kind: "policy", id: "1", source: "cached" });
    clock += 86_400_000; // expired: now it is gone
    expect(await sts.policyFor(DOMAIN)).toMatchObject({ kind: "none" });
    expect(server.requests).toHaveLength(1);
  });

  it("finds no policy when the TXT look-up fails and nothing is cached", async () => {
    dns.setZone({ [`_mta-sts.${DOMAIN}`]: { SERVFAIL: true } });
    expect(await fetcher().policyFor(DOMAIN)).toMatchObject({ kind: "none" });
  });

  it("refuses a self-signed certificate: no policy without a cached one (RFC 8461 §3.3)", async () => {
    server.setCertificate(selfSigned);
    const r = await fetcher().policyFor(DOMAIN);
    expect(r).toEqual({ kind: "none", reason: expect.stringMatching(/could not be fetched: .*self[- ]signed certificate/) });
    expect(server.connections()).toBe(1);
    expect(server.requests).toHaveLength(0); // the handshake failed before any HTTP
  });

  it("refuses a certificate for another name and keeps using the cached policy", async () => {
    const sts = fetcher();
    await sts.policyFor(DOMAIN);
    server.setCertificate(wrongName);
    dns.setZone(zone("2"));
    const r = await sts.policyFor(DOMAIN);
    expect(r).toMatchObject({ kind: "policy", id: "1", source: "cached", warning: expect.stringMatching(/policy 2 could not be fetched.*mta-sts\.sts\.example/) });
    expect(server.requests).toHaveLength(1);
  });

  it("refuses a certificate from a CA it was not given", async () => {
    const r = await fetcher({ ca: undefined }).policyFor(DOMAIN);
    expect(r).toMatchObject({ kind: "none", reason: expect.stringMatching(/issuer|verify/) });
  });

  it("does not follow a redirect (RFC 8461 §3.3)", async () => {
    server.answer((req): HttpsAnswer =>
      req.url === POLICY_PATH
        ? { status: 301, headers: { location: `https://${HOST}:${server.port}/elsewhere.txt` } }
        : { status: 200, headers: { "content-type": "text/plain" }, body: POLICY },
    );
    expect(await fetcher().policyFor(DOMAIN)).toMatchObject({ kind: "none", reason: expect.stringMatching(/HTTP 301 redirect not followed/) });
    expect(server.requests.map((r) => r.url)).toEqual([POLICY_PATH]);
  });

  it("finds no policy on a 404", async () => {
    server.answer(() => ({ status: 404, headers: { "content-type": "text/plain" }, body: POLICY }));
    expect(await fetcher().policyFor(DOMAIN)).toMatchObject({ kind: "none", reason: expect.stringMatching(/HTTP 404, not 200/) });
  });

  it("refuses a policy served as anything but text/plain", async () => {
    server.answer(ok(POLICY, "text/html"));
    expect(await fetcher().policyFor(DOMAIN)).toMatchObject({ kind: "none", reason: expect.stringMatching(/"text\/html" is not text\/plain/) });
    server.answer(() => ({ status: 200, body: POLICY }));
    expect(await fetcher().policyFor(DOMAIN)).toMatchObject({ kind: "none", reason: expect.stringMatching(/Content-Type "" is not text\/plain/) });
  });

  it("refuses a body over 64 KB, announced or streamed", async () => {
    const big = POLICY + `x-padding: ${"a".repeat(MAX_POLICY_BYTES)}\r\n`;
    server.answer(ok(big));
    expect(await fetcher().policyFor(DOMAIN)).toMatchObject({ kind: "none", reason: expect.stringMatching(/larger than 65536 bytes/) });
    server.answer(() => ({ status: 200, headers: { "content-type": "text/plain" }, body: big, chunks: 8 }));
    expect(await fetcher().policyFor(DOMAIN)).toMatchObject({ kind: "none", reason: expect.stringMatching(/larger than 65536 bytes/) });
  });

  it("accepts a streamed body under the limit", async () => {
    server.answer(() => ({ status: 200, headers: { "content-type": "text/plain" }, body: POLICY, chunks: 3 }));
    expect(await fetcher().policyFor(DOMAIN)).toMatchObject({ kind: "policy", source: "fetched" });
  });

  it("finds no policy when the body is not a valid policy", async () => {
    server.answer(ok(lf("version: STSv1", "mx: mx1.sts.example", "max_age: 86400")));
    expect(await fetcher().policyFor(DOMAIN)).toMatchObject({ kind: "none", reason: expect.stringMatching(/invalid policy: mode is missing/) });
  });

  it("gives up after timeoutMs when the server never answers", async () => {
    server.answer(() => ({ status: 200, hang: true }));
    expect(await fetcher({ timeoutMs: 300 }).policyFor(DOMAIN)).toMatchObject({ kind: "none", reason: expect.stringMatching(/no complete answer before the 300 ms deadline/) });
  });

  it("never connects to a policy host address outside the allow list", async () => {
    const r = await fetcher({ allowNetworks: [] }).policyFor(DOMAIN);
    expect(r).toEqual({ kind: "none", reason: expect.stringMatching(/refused to connect to mta-sts\.sts\.example: 127\.0\.0\.1 is a loopback address/) });
    expect(server.connections()).toBe(0);
  });

  it("connects only to the addresses that pass the guard", async () => {
    dns.setZone({ ...zone("1"), [HOST]: { A: ["10.0.0.1", "127.0.0.1"], AAAA: ["::1"] } });
    expect(await fetcher().policyFor(DOMAIN)).toMatchObject({ kind: "policy", source: "fetched" });
    expect(server.connections()).toBe(1);
  });

  it("finds no policy when the policy host has no address", async () => {
    dns.setZone({ [`_mta-sts.${DOMAIN}`]: { TXT: ["v=STSv1; id=1"] } });
    expect(await fetcher().policyFor(DOMAIN)).toMatchObject({ kind: "none", reason: expect.stringMatching(/mta-sts\.sts\.example has no address/) });
    expect(server.connections()).toBe(0);
  });

  it("does not retry a failed fetch for the same id until failureTtlMs has passed", async () => {
    server.answer(() => ({ status: 404 }));
    const sts = fetcher({ failureTtlMs: 60_000 });
    await sts.policyFor(DOMAIN);
    expect(await sts.policyFor(DOMAIN)).toMatchObject({ kind: "none", reason: expect.stringMatching(/not retried yet/) });
    expect(server.requests).toHaveLength(1);
    server.answer(ok(POLICY));
    dns.setZone(zone("2")); // a new id is worth a new try at once
    expect(await sts.policyFor(DOMAIN)).toMatchObject({ kind: "policy", id: "2" });
    expect(server.requests).toHaveLength(2);
  });

  it("retries a failed fetch once failureTtlMs has passed", async () => {
    server.answer(() => ({ status: 500 }));
    const sts = fetcher({ failureTtlMs: 60_000 });
    await sts.policyFor(DOMAIN);
    server.answer(ok(POLICY));
    clock += 60_000;
    expect(await sts.policyFor(DOMAIN)).toMatchObject({ kind: "policy", source: "fetched" });
    expect(server.requests).toHaveLength(2);
  });

  it("finds no policy for something that is not a domain name, without asking DNS", async () => {
    const before = dns.queries.length;
    expect(await fetcher().policyFor("bad domain/..")).toMatchObject({ kind: "none", reason: expect.stringMatching(/not a domain name/) });
    expect(dns.queries.length).toBe(before);
  });
});
