import { describe, expect, it } from "vitest";
import { checkDestination, parseCidrs } from "../../src/dns/guard.js";

// Each refused range: an address at its start, one at its end, and what the reason calls it.
const refused: { range: string; first: string; last: string; what: string }[] = [
  { range: "0.0.0.0/8", first: "0.0.0.0", last: "0.255.255.255", what: '"this network"' },
  { range: "10.0.0.0/8", first: "10.0.0.0", last: "10.255.255.255", what: "private" },
  { range: "100.64.0.0/10", first: "100.64.0.0", last: "100.127.255.255", what: "carrier-grade NAT" },
  { range: "127.0.0.0/8", first: "127.0.0.1", last: "127.255.255.255", what: "loopback" },
  { range: "169.254.0.0/16", first: "169.254.0.0", last: "169.254.255.255", what: "link-local" },
  { range: "172.16.0.0/12", first: "172.16.0.0", last: "172.31.255.255", what: "private" },
  { range: "192.0.0.0/24", first: "192.0.0.0", last: "192.0.0.255", what: "IETF" },
  { range: "192.0.2.0/24", first: "192.0.2.0", last: "192.0.2.255", what: "documentation" },
  { range: "192.168.0.0/16", first: "192.168.0.0", last: "192.168.255.255", what: "private" },
  { range: "198.18.0.0/15", first: "198.18.0.0", last: "198.19.255.255", what: "benchmarking" },
  { range: "198.51.100.0/24", first: "198.51.100.0", last: "198.51.100.255", what: "documentation" },
  { range: "203.0.113.0/24", first: "203.0.113.0", last: "203.0.113.255", what: "documentation" },
  { range: "224.0.0.0/4", first: "224.0.0.0", last: "239.255.255.255", what: "multicast" },
  { range: "240.0.0.0/4", first: "240.0.0.0", last: "255.255.255.254", what: "reserved" },
  { range: "255.255.255.255/32", first: "255.255.255.255", last: "255.255.255.255", what: "broadcast" },
  { range: "::/128", first: "::", last: "0:0:0:0:0:0:0:0", what: "unspecified" },
  { range: "::1/128", first: "::1", last: "0:0:0:0:0:0:0:1", what: "loopback" },
  { range: "::/96", first: "::2", last: "::ffff:ffff", what: "IPv4-compatible" },
  { range: "64:ff9b:1::/48", first: "64:ff9b:1::", last: "64:ff9b:1:ffff:ffff:ffff:ffff:ffff", what: "local-use NAT64" },
  { range: "fec0::/10", first: "fec0::1", last: "feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", what: "site-local" },
  { range: "fc00::/7", first: "fc00::", last: "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", what: "unique local" },
  { range: "fe80::/10", first: "fe80::1", last: "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", what: "link-local" },
  { range: "ff00::/8", first: "ff02::1", last: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", what: "multicast" },
  { range: "2001:db8::/32", first: "2001:db8::", last: "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", what: "documentation" },
];

describe("checkDestination refuses every special-purpose range", () => {
  for (const { range, first, last, what } of refused) {
    for (const ip of new Set([first, last])) {
      it(`refuses ${ip} (${range})`, () => {
        const result = checkDestination(ip, []);
        expect(result.ok).toBe(false);
        if (!result.ok) {
          expect(result.reason).toContain(ip);
          expect(result.reason).toContain(what);
          expect(result.reason).toContain(range);
          expect(result.reason).toContain("not in DELIVERY_ALLOW_NETWORKS");
        }
      });
    }
  }

  it("says it plainly for loopback", () => {
    expect(checkDestination("127.0.0.1", [])).toEqual({
      ok: false,
      reason: "127.0.0.1 is a loopback address (127.0.0.0/8, not in DELIVERY_ALLOW_NETWORKS)",
    });
  });
});

describe("checkDestination looks inside IPv6 addresses that carry an IPv4 address", () => {
  const cases: { ip: string; inner: string; what: string }[] = [
    { ip: "::ffff:127.0.0.1", inner: "127.0.0.1", what: "loopback" },
    { ip: "::ffff:7f00:1", inner: "127.0.0.1", what: "loopback" },
    { ip: "::ffff:10.1.2.3", inner: "10.1.2.3", what: "private" },
    { ip: "::ffff:169.254.169.254", inner: "169.254.169.254", what: "link-local" },
    { ip: "64:ff9b::7f00:1", inner: "127.0.0.1", what: "loopback" },
    { ip: "64:ff9b::192.168.1.1", inner: "192.168.1.1", what: "private" },
    { ip: "64:ff9b::a9fe:a9fe", inner: "169.254.169.254", what: "link-local" },
    { ip: "::ffff:0:7f00:1", inner: "127.0.0.1", what: "loopback" }, // IPv4-translated (RFC 2765)
    { ip: "2002:7f00:1::1", inner: "127.0.0.1", what: "loopback" }, // 6to4 (RFC 3056)
    { ip: "2002:c0a8:101::", inner: "192.168.1.1", what: "private" },
  ];
  for (const { ip, inner, what } of cases) {
    it(`refuses ${ip}, which reaches ${inner}`, () => {
      const result = checkDestination(ip, []);
      expect(result).toMatchObject({ ok: false });
      if (!result.ok) {
        expect(result.reason).toContain(`${ip} embeds ${inner}`);
        expect(result.reason).toContain(what);
      }
    });
  }

  it("lets through a mapped or NAT64 public IPv4 address", () => {
    expect(checkDestination("::ffff:93.184.216.34", [])).toEqual({ ok: true });
    expect(checkDestination("64:ff9b::5db8:d822", [])).toEqual({ ok: true });
    expect(checkDestination("::ffff:0:5db8:d822", [])).toEqual({ ok: true });
    expect(checkDestination("2002:5db8:d822::1", [])).toEqual({ ok: true });
  });
});

describe("checkDestination allows", () => {
  const publicAddresses = ["93.184.216.34", "8.8.8.8", "1.1.1.1", "100.63.255.255", "100.128.0.0", "172.15.255.255", "172.32.0.0", "198.17.255.255", "198.20.0.0", "223.255.255.255", "2606:4700::1", "2a00:1450:4001::1b", "2001:db9::1", "fbff::1"];
  for (const ip of publicAddresses) {
    it(`a public address: ${ip}`, () => expect(checkDestination(ip, [])).toEqual({ ok: true }));
  }

  const exemptions: { ip: string; allow: string[] }[] = [
    { ip: "127.0.0.1", allow: ["127.0.0.0/8"] },
    { ip: "127.0.0.1", allow: ["10.0.0.0/8", "127.0.0.1/32"] },
    { ip: "127.0.0.1", allow: ["127.0.0.1"] },
    { ip: "192.168.5.5", allow: ["192.168.0.0/16"] },
    { ip: "::1", allow: ["::1/128"] },
    { ip: "fd00::25", allow: ["fd00::/8"] },
    { ip: "::ffff:127.0.0.1", allow: ["127.0.0.0/8"] },
    { ip: "64:ff9b::7f00:1", allow: ["127.0.0.0/8"] },
  ];
  for (const { ip, allow } of exemptions) {
    it(`${ip} when DELIVERY_ALLOW_NETWORKS has ${allow.join(",")}`, () => expect(checkDestination(ip, allow)).toEqual({ ok: true }));
  }

  it("only what the allow list covers", () => {
    expect(checkDestination("127.0.0.2", ["127.0.0.1/32"]).ok).toBe(false);
    expect(checkDestination("10.0.0.1", ["127.0.0.0/8"]).ok).toBe(false);
    expect(checkDestination("::1", ["127.0.0.0/8"]).ok).toBe(false);
    expect(checkDestination("127.0.0.1", ["::1/128"]).ok).toBe(false);
  });
});

describe("checkDestination refuses what is not an IP address", () => {
  for (const input of ["", "localhost", "mx.example.com", "127.1", "0x7f000001", "2130706433", "[::1]", "1.2.3.4/32", "2606:4700::1%eth0"]) {
    it(`refuses ${JSON.stringify(input)}`, () => expect(checkDestination(input, ["0.0.0.0/0", "::/0"]).ok).toBe(false));
  }
});

describe("parseCidrs", () => {
  it("parses IPv4 and IPv6 CIDRs and bare addresses", () => {
    const parsed = parseCidrs(["127.0.0.0/8", "fd00::/8", "10.1.2.3"]);
    expect(parsed.ok).toBe(true);
    if (parsed.ok) expect(parsed.cidrs.map(([ip, bits]) => `${ip.toString()}/${bits}`)).toEqual(["127.0.0.0/8", "fd00::/8", "10.1.2.3/32"]);
  });
  for (const bad of ["127.0.0.0/33", "fd00::/129", "nope/8", "10.0.0.0/x", "10.0.0.0/8/8"]) {
    it(`refuses ${bad}`, () => expect(parseCidrs([bad])).toMatchObject({ ok: false }));
  }
});
