import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resolveDestinations, type Destinations } from "../../src/dns/mx.js";
import { orderAddresses, orderMxHosts } from "../../src/dns/mx-order.js";
import { createResolver } from "../../src/dns/resolver.js";
import { startDnsServer, type DnsServer, type Zone } from "../helpers/dns-server.js";

/** mulberry32: a tiny seeded PRNG, so shuffles are repeatable. */
function seeded(seed: number): () => number {
  let t = seed >>> 0;
  return () => {
    t = (t + 0x6d2b79f5) >>> 0;
    let r = Math.imul(t ^ (t >>> 15), 1 | t);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
}

const zone: Zone = {
  "pref.test": {
    MX: [
      { preference: 10, exchange: "a.pref.test" },
      { preference: 20, exchange: "d.pref.test" },
      { preference: 10, exchange: "b.pref.test" },
      { preference: 5, exchange: "e.pref.test" },
      { preference: 10, exchange: "c.pref.test" },
    ],
  },
  "a.pref.test": { A: ["198.51.100.1"] },
  "b.pref.test": { A: ["198.51.100.2"] },
  "c.pref.test": { A: ["198.51.100.3"] },
  "d.pref.test": { A: ["198.51.100.4"] },
  "e.pref.test": { AAAA: ["2001:db8::e"] },

  "implicit.test": { A: ["203.0.113.1"], AAAA: ["2001:db8::1"] },
  "implicit-none.test": { TXT: ["v=spf1 -all"] },

  "hostless.test": { MX: [{ preference: 10, exchange: "noaddr.hostless.test" }], A: ["203.0.113.2"] },
  "noaddr.hostless.test": { TXT: ["nothing here"] },

  "ttl.test": { MX: [{ preference: 10, exchange: "a.ttl.test", ttl: 120 }, { preference: 20, exchange: "b.ttl.test", ttl: 120 }] },
  "a.ttl.test": { A: [{ address: "203.0.113.7", ttl: 30 }] },
  "b.ttl.test": { AAAA: [{ address: "2001:db8::7", ttl: 90 }] },
  "mxttl.test": { MX: [{ preference: 10, exchange: "a.mxttl.test", ttl: 15 }] },
  "a.mxttl.test": { A: [{ address: "203.0.113.8", ttl: 600 }] },

  "partly.test": {
    MX: [
      { preference: 10, exchange: "broken.partly.test" },
      { preference: 20, exchange: "ok.partly.test" },
    ],
  },
  "broken.partly.test": { SERVFAIL: true },
  "ok.partly.test": { A: ["203.0.113.3", "203.0.113.4"], AAAA: ["2001:db8::3", "2001:db8::4"] },

  "flaky.test": {
    MX: [
      { preference: 10, exchange: "broken.flaky.test" },
      { preference: 20, exchange: "missing.flaky.test" },
    ],
  },
  "broken.flaky.test": { SERVFAIL: true },

  "nullmx.test": { MX: [{ preference: 0, exchange: "." }], A: ["203.0.113.5"] },
  "mxfail.test": { SERVFAIL: true },
  "mxhang.test": { hang: true },

  "many.test": { MX: Array.from({ length: 7 }, (_, i) => ({ preference: i, exchange: `h${i}.many.test` })) },
  ...Object.fromEntries(Array.from({ length: 7 }, (_, i) => [`h${i}.many.test`, { A: [`198.51.100.${10 + i}`] }])),

  "deep.test": { MX: Array.from({ length: 4 }, (_, i) => ({ preference: i, exchange: `d${i}.deep.test` })) },
  "d3.deep.test": { A: ["198.51.100.30"] },

  "viacname.test": { MX: [{ preference: 10, exchange: "alias.viacname.test" }] },
  "alias.viacname.test": { CNAME: "real.viacname.test" },
  "real.viacname.test": { A: ["198.51.100.40"] },
};

let dns: DnsServer;
beforeAll(async () => {
  dns = await startDnsServer(zone);
});
afterAll(async () => {
  await dns.close();
});

const resolver = () => createResolver({ servers: [dns.address], timeoutMs: 200, tries: 1 });
const hostsOf = (d: Destinations) => {
  if (d.kind !== "hosts") throw new Error(`expected hosts, got ${JSON.stringify(d)}`);
  return d.hosts;
};

describe("orderMxHosts (RFC 5321 §5.1)", () => {
  const records = [
    { preference: 10, exchange: "a" },
    { preference: 20, exchange: "d" },
    { preference: 10, exchange: "b" },
    { preference: 5, exchange: "e" },
    { preference: 10, exchange: "c" },
  ];

  it("puts lower preferences first and keeps every group together", () => {
    for (let seed = 1; seed <= 50; seed++) {
      const order = orderMxHosts(records, seeded(seed));
      expect(order.map((r) => r.preference)).toEqual([5, 10, 10, 10, 20]);
      expect(order.slice(1, 4).map((r) => r.exchange).sort()).toEqual(["a", "b", "c"]);
    }
  });

  it("repeats an order for the same seed and reaches every order of an equal-preference group", () => {
    const key = (seed: number) => orderMxHosts(records, seeded(seed)).map((r) => r.exchange).join("");
    expect(key(7)).toBe(key(7));
    const seen = new Set(Array.from({ length: 200 }, (_, seed) => key(seed)));
    expect(seen).toEqual(new Set(["eabcd", "eacbd", "ebacd", "ebcad", "ecabd", "ecbad"]));
  });

  it("keeps the best preference of a host listed twice and drops the null target", () => {
    const order = orderMxHosts(
      [
        { preference: 30, exchange: "x" },
        { preference: 10, exchange: "x" },
        { preference: 0, exchange: "." },
      ],
      () => 0,
    );
    expect(order).toEqual([{ preference: 10, exchange: "x" }]);
  });
});

describe("orderAddresses", () => {
  const cases: { label: string; six: string[]; four: string[]; expected: string[] }[] = [
    { label: "alternates families, IPv6 first", six: ["6a", "6b"], four: ["4a", "4b", "4c"], expected: ["6a", "4a", "6b", "4b", "4c"] },
    { label: "keeps IPv4 alone when there is no IPv6", six: [], four: ["4a"], expected: ["4a"] },
    { label: "keeps IPv6 alone when there is no IPv4", six: ["6a"], four: [], expected: ["6a"] },
    { label: "drops duplicates", six: ["6a", "6a"], four: ["4a", "4a"], expected: ["6a", "4a"] },
  ];
  // random() close to 1 makes Fisher–Yates leave the order as it is.
  for (const { label, six, four, expected } of cases) {
    it(label, () => expect(orderAddresses(six, four, () => 0.999)).toEqual(expected));
  }
});

describe("resolveDestinations against a real DNS server", () => {
  it("orders MX hosts by preference, shuffling equal preferences with the injected random", async () => {
    const hosts = hostsOf(await resolveDestinations(resolver(), "pref.test", { random: seeded(3) }));
    expect(hosts.map((h) => h.preference)).toEqual([5, 10, 10, 10, 20]);
    expect(hosts[0]).toEqual({ name: "e.pref.test", preference: 5, addresses: ["2001:db8::e"], implicit: false });
    const expected = orderMxHosts(zone["pref.test"]!.MX!, seeded(3)).map((r) => r.exchange);
    expect(hosts.map((h) => h.name)).toEqual(expected);
  });

  it("reports the smallest TTL of the MX and address records the hosts came from", async () => {
    expect(await resolveDestinations(resolver(), "ttl.test")).toMatchObject({ kind: "hosts", ttl: 30 });
    expect(await resolveDestinations(resolver(), "mxttl.test")).toMatchObject({ kind: "hosts", ttl: 15 });
    expect(await resolveDestinations(resolver(), "implicit.test")).toMatchObject({ kind: "hosts", ttl: 300 });
  });

  it("uses the domain's own A and AAAA as an implicit MX at preference 0 when there are no MX records", async () => {
    const hosts = hostsOf(await resolveDestinations(resolver(), "Implicit.Test."));
    expect(hosts).toEqual([{ name: "implicit.test", preference: 0, addresses: ["2001:db8::1", "203.0.113.1"], implicit: true }]);
  });

  it("says no-addresses, permanently, when there are no MX records and no address", async () => {
    const d = await resolveDestinations(resolver(), "implicit-none.test");
    expect(d).toMatchObject({ kind: "no-addresses", temporary: false });
  });

  it("never falls back to the domain's A when its MX host has no address", async () => {
    const d = await resolveDestinations(resolver(), "hostless.test");
    expect(d).toMatchObject({ kind: "no-addresses", temporary: false });
    if (d.kind === "no-addresses") expect(d.reason).toContain("noaddr.hostless.test");
    expect(dns.queries.filter((q) => q.name === "hostless.test").map((q) => q.type)).toEqual(["MX"]);
  });

  it("skips a host whose look-ups fail and delivers to the next, IPv6 and IPv4 alternating", async () => {
    const d = await resolveDestinations(resolver(), "partly.test", { random: () => 0.999 });
    expect(hostsOf(d)).toEqual([
      { name: "ok.partly.test", preference: 20, addresses: ["2001:db8::3", "203.0.113.3", "2001:db8::4", "203.0.113.4"], implicit: false },
    ]);
    if (d.kind === "hosts") expect(d.skipped.map((s) => s.name)).toEqual(["broken.partly.test"]);
  });

  it("says no-addresses, temporarily, when a host's look-up failed temporarily", async () => {
    expect(await resolveDestinations(resolver(), "flaky.test")).toMatchObject({ kind: "no-addresses", temporary: true });
  });

  it("follows a CNAME from the MX host to its address", async () => {
    expect(hostsOf(await resolveDestinations(resolver(), "viacname.test"))[0]?.addresses).toEqual(["198.51.100.40"]);
  });

  it("refuses delivery for a null MX (RFC 7505) without looking up any address", async () => {
    const d = await resolveDestinations(resolver(), "nullmx.test");
    expect(d.kind).toBe("null-mx");
    expect(dns.queries.filter((q) => q.name === "nullmx.test" || q.name === ".").map((q) => q.type)).toEqual(["MX"]);
  });

  it("says nxdomain for a domain that does not exist", async () => {
    expect((await resolveDestinations(resolver(), "nonexistent.test")).kind).toBe("nxdomain");
  });

  it("defers on SERVFAIL for the MX look-up", async () => {
    expect((await resolveDestinations(resolver(), "mxfail.test")).kind).toBe("temporary");
  });

  it("defers within the timeout when the server never answers", async () => {
    const started = Date.now();
    const d = await resolveDestinations(resolver(), "mxhang.test");
    expect(d.kind).toBe("temporary");
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it("keeps at most five hosts by default, or maxHosts", async () => {
    const five = hostsOf(await resolveDestinations(resolver(), "many.test"));
    expect(five.map((h) => h.name)).toEqual(["h0.many.test", "h1.many.test", "h2.many.test", "h3.many.test", "h4.many.test"]);
    expect(hostsOf(await resolveDestinations(resolver(), "many.test", { maxHosts: 2 }))).toHaveLength(2);
  });

  it("looks further down the list when the first hosts have no address", async () => {
    const d = await resolveDestinations(resolver(), "deep.test", { maxHosts: 2 });
    expect(hostsOf(d).map((h) => h.name)).toEqual(["d3.deep.test"]);
    if (d.kind === "hosts") expect(d.skipped.map((s) => s.name)).toEqual(["d0.deep.test", "d1.deep.test", "d2.deep.test"]);
  });
});
