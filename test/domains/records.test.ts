import { describe, expect, it } from "vitest";
import type { Lookup } from "../../src/dns/types.js";
import { expectedRecords, judgeDkim, judgeDmarc, judgeReturnPath, judgeSpf, overallStatus, tagList, type ExpectedRecord } from "../../src/domains/records.js";

const KEY = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1SU1LfVLPHCozMxH2Mo";
const domain = { name: "example.com", selector: "plabc", dkimRecord: `v=DKIM1; k=rsa; p=${KEY}` };
const settings = { heloName: "mta.postline.test", returnPathDomain: "bounces.postline.test" };
const records = expectedRecords(domain, settings);
const rec = (purpose: string) => records.find((r) => r.purpose === purpose) as ExpectedRecord;
const txt = (...records: string[]): Lookup<string> => ({ ok: true, records, ttl: 300 });
const nx: Lookup<string> = { ok: false, kind: "nxdomain", reason: "NXDOMAIN" };
const nodata: Lookup<string> = { ok: false, kind: "nodata", reason: "NODATA" };
const servfail: Lookup<string> = { ok: false, kind: "temporary", reason: "SERVFAIL from 127.0.0.1:53" };

describe("expectedRecords", () => {
  it("lists DKIM, SPF, return path and DMARC, at the names and with the values we document", () => {
    expect(records.map((r) => [r.purpose, r.name, r.value, r.required])).toEqual([
      ["dkim", "plabc._domainkey.example.com", `v=DKIM1; k=rsa; p=${KEY}`, true],
      ["spf", "example.com", "v=spf1 a:mta.postline.test ~all", true],
      ["return_path", "_postline.example.com", "v=pl1; rp=bounces.postline.test", false],
      ["dmarc", "_dmarc.example.com", "v=DMARC1; p=none; rua=mailto:dmarc-reports@example.com", false],
    ]);
  });

  it("leaves the return-path record out when RETURN_PATH_DOMAIN is unset", () => {
    expect(expectedRecords(domain, { heloName: "mta.postline.test" }).map((r) => r.purpose)).toEqual(["dkim", "spf", "dmarc"]);
  });
});

describe("tagList", () => {
  it("reads tag=value pairs, lower-cases names, keeps the first of a repeated tag", () => {
    expect([...tagList(" v=DKIM1 ; K=rsa; p=ab cd;; p=zz; junk")]).toEqual([["v", "DKIM1"], ["k", "rsa"], ["p", "ab cd"]]);
  });
});

describe("judgeDkim", () => {
  const half = Math.floor(KEY.length / 2);
  it.each([
    ["the exact value", txt(`v=DKIM1; k=rsa; p=${KEY}`), "verified"],
    ["no v= and no k= (defaults)", txt(`p=${KEY}`), "verified"],
    ["whitespace inside p=", txt(`v=DKIM1; k=rsa; p=${KEY.slice(0, half)} ${KEY.slice(half)}`), "verified"],
    ["zone-file quotes kept literally", txt(`"v=DKIM1; k=rsa; p=${KEY.slice(0, half)}" "${KEY.slice(half)}"`), "verified"],
    ["h=sha256 among others", txt(`v=DKIM1; h=sha1:sha256; p=${KEY}`), "verified"],
    ["another key", txt("v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAother"), "invalid"],
    ["a revoked key", txt("v=DKIM1; k=rsa; p="), "invalid"],
    ["our key with k=ed25519", txt(`v=DKIM1; k=ed25519; p=${KEY}`), "invalid"],
    ["h=sha1 only", txt(`v=DKIM1; h=sha1; p=${KEY}`), "invalid"],
    ["a TXT that is no key record", txt("hello world"), "invalid"],
    // What mailauth fails although our key is there (RFC 6376 §3.6.2.2, §3.2):
    ["our key beside another key record", txt("v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAother", `v=DKIM1; k=rsa; p=${KEY}`), "invalid"],
    ["our key with p= twice", txt(`v=DKIM1; k=rsa; p=${KEY}; p=${KEY}`), "invalid"],
    ["NXDOMAIN", nx, "pending"],
    ["NODATA", nodata, "pending"],
    ["SERVFAIL", servfail, "temporary"],
  ])("%s → %s", (_name, lookup, status) => {
    expect(judgeDkim(lookup, rec("dkim")).status).toBe(status);
  });

  it("says when a different key is published", () => {
    expect(judgeDkim(txt("v=DKIM1; p=AAAA"), rec("dkim")).detail).toMatch(/different key/);
  });
});

describe("judgeSpf", () => {
  it.each([
    ["the suggested record", txt("v=spf1 a:mta.postline.test ~all"), "verified"],
    ["our mechanism among others, other case", txt("v=spf1 include:_spf.google.com +a:MTA.Postline.Test. -all"), "verified"],
    ["a CIDR length", txt("v=spf1 a:mta.postline.test/24 ~all"), "verified"],
    ["an IPv6-only CIDR length", txt("v=spf1 a:mta.postline.test//64 ~all"), "verified"],
    ["include of RETURN_PATH_DOMAIN", txt("v=spf1 include:bounces.postline.test ~all"), "verified"],
    ["beside unrelated TXT records", txt("google-site-verification=abc", "v=spf1 a:mta.postline.test ~all"), "verified"],
    ["our mechanism after all", txt("v=spf1 -all a:mta.postline.test"), "invalid"],
    ["a fail qualifier", txt("v=spf1 -a:mta.postline.test ~all"), "invalid"],
    ["a softfail qualifier", txt("v=spf1 ~a:mta.postline.test ~all"), "invalid"],
    ["another host", txt("v=spf1 a:mta.elsewhere.test ~all"), "invalid"],
    ["two SPF records", txt("v=spf1 a:mta.postline.test ~all", "v=spf1 mx ~all"), "invalid"],
    // A term that is not SPF makes receivers (mailauth: permerror) reject the whole record.
    ["an unknown mechanism after ours", txt("v=spf1 a:mta.postline.test foo:bar ~all"), "invalid"],
    ["tab separators", txt("v=spf1\ta:mta.postline.test\t~all"), "invalid"],
    ["a tab inside the terms", txt("v=spf1 a:mta.postline.test\t~all"), "invalid"],
    ["modifiers and every mechanism", txt("v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 mx ptr exists:%{i}.x.test include:_spf.x.test a:mta.postline.test redirect=_spf.x.test exp=explain.x.test ~all"), "verified"],
    ["several spaces between terms", txt("v=spf1  a:mta.postline.test   ~all"), "verified"],
    ["v=spf10 is no SPF record", txt("v=spf10 a:mta.postline.test"), "pending"],
    ["only unrelated TXT records", txt("google-site-verification=abc"), "pending"],
    ["NXDOMAIN", nx, "pending"],
    ["SERVFAIL", servfail, "temporary"],
  ])("%s → %s", (_name, lookup, status) => {
    expect(judgeSpf(lookup, rec("spf"), settings).status).toBe(status);
  });

  it("does not take include:<RETURN_PATH_DOMAIN> when none is configured", () => {
    const plain = { heloName: "mta.postline.test" };
    const spf = expectedRecords(domain, plain).find((r) => r.purpose === "spf")!;
    expect(judgeSpf(txt("v=spf1 include:bounces.postline.test ~all"), spf, plain).status).toBe("invalid");
  });
});

describe("judgeReturnPath and judgeDmarc", () => {
  it.each([
    [txt("v=pl1; rp=bounces.postline.test"), "verified"],
    [txt("v=pl1; rp=BOUNCES.postline.test."), "verified"],
    [txt("v=pl1; rp=other.test"), "invalid"],
    [txt("something else"), "pending"],
    [nx, "pending"],
    [servfail, "temporary"],
  ])("return path %j → %s", (lookup, status) => {
    expect(judgeReturnPath(lookup, rec("return_path"), settings).status).toBe(status);
  });

  it.each([
    [txt("v=DMARC1; p=reject; rua=mailto:d@example.com"), "verified"],
    [txt("v=DMARC1; p=none", "v=DMARC1; p=reject"), "invalid"],
    [txt("v=spf1 -all"), "pending"],
    [nodata, "pending"],
    [servfail, "temporary"],
  ])("dmarc %j → %s", (lookup, status) => {
    expect(judgeDmarc(lookup, rec("dmarc")).status).toBe(status);
  });
});

describe("overallStatus", () => {
  const ok = { status: "verified" as const, checked_at: "2026-01-01T00:00:00.000Z", detail: "" };
  const bad = { ...ok, status: "invalid" as const };
  it("needs DKIM and SPF, and only them", () => {
    expect(overallStatus(records, { dkim: ok, spf: ok })).toBe("verified");
    expect(overallStatus(records, { dkim: ok, spf: ok, dmarc: bad, return_path: bad })).toBe("verified");
    expect(overallStatus(records, { dkim: ok, spf: bad })).toBe("pending");
    expect(overallStatus(records, { spf: ok })).toBe("pending");
  });
});
