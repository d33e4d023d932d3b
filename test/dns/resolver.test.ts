import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createResolver, type Lookup } from "../../src/dns/resolver.js";
import { resolveServers } from "../../src/dns/servers.js";
import { startDnsServer, type DnsServer, type Zone } from "../helpers/dns-server.js";

const zone: Zone = {
  "mail.test": {
    MX: [
      { preference: 10, exchange: "MX1.Mail.Test", ttl: 120 },
      { preference: 20, exchange: "mx2.mail.test.", ttl: 600 },
    ],
    TXT: ["v=spf1 -all", ["v=DKIM1; k=rsa; ", "p=AAAA"]],
  },
  "hosts.test": { A: ["192.0.2.10", { address: "192.0.2.11", ttl: 30 }], AAAA: ["2001:DB8:0:0:0:0:0:1"] },
  "only-v4.test": { A: ["192.0.2.20"] },
  "alias.test": { CNAME: "alias2.test" },
  "alias2.test": { CNAME: { target: "target.test", ttl: 40 } },
  "target.test": { A: ["192.0.2.30"] },
  "dangling.test": { CNAME: "missing.test" },
  "servfail.test": { SERVFAIL: true },
  "refused.test": { REFUSED: true },
  "hang.test": { hang: true },
  "big.test": { truncate: true, TXT: ["x".repeat(200), "y".repeat(200), "z".repeat(200)] },
  "spoofed.test": { spoof: true, A: ["192.0.2.40"] },
  "garbage.test": { garbage: true },
  "cached.test": { A: ["192.0.2.50"] },
  "long-ttl.test": { A: [{ address: "192.0.2.51", ttl: 86_400 }] },
  "uncached.test": { A: ["192.0.2.52"] },
  "shared.test": { A: ["192.0.2.53"] },
};

let dns: DnsServer;
beforeAll(async () => {
  dns = await startDnsServer(zone);
});
afterAll(async () => {
  await dns.close();
});

const asked = (server: DnsServer, name: string) => server.queries.filter((q) => q.name === name);

function expectOk<T>(lookup: Lookup<T>): { records: T[]; ttl: number } {
  if (!lookup.ok) throw new Error(`expected records, got ${lookup.kind}: ${lookup.reason}`);
  return lookup;
}

describe("createResolver answers from a real DNS server", () => {
  it("returns MX records with lower-case exchanges and the smallest TTL of the RRset", async () => {
    const resolver = createResolver({ servers: [dns.address], timeoutMs: 500 });
    const mx = expectOk(await resolver.mx("Mail.Test."));
    expect(mx.records).toEqual([
      { preference: 10, exchange: "mx1.mail.test" },
      { preference: 20, exchange: "mx2.mail.test" },
    ]);
    expect(mx.ttl).toBe(120);
  });

  it("returns IPv4 and IPv6 addresses, IPv6 in compressed lower-case form", async () => {
    const resolver = createResolver({ servers: [dns.address], timeoutMs: 500 });
    const a = expectOk(await resolver.a("hosts.test"));
    expect(a.records).toEqual(["192.0.2.10", "192.0.2.11"]);
    expect(a.ttl).toBe(30);
    expect(expectOk(await resolver.aaaa("hosts.test")).records).toEqual(["2001:db8::1"]);
  });

  it("joins the character-strings of each TXT record and keeps records apart", async () => {
    const resolver = createResolver({ servers: [dns.address], timeoutMs: 500 });
    expect(expectOk(await resolver.txt("mail.test")).records).toEqual(["v=spf1 -all", "v=DKIM1; k=rsa; p=AAAA"]);
  });

  it("follows a CNAME chain to the asked type, taking the smallest TTL on the way", async () => {
    const resolver = createResolver({ servers: [dns.address], timeoutMs: 500 });
    const a = expectOk(await resolver.a("alias.test"));
    expect(a.records).toEqual(["192.0.2.30"]);
    expect(a.ttl).toBe(40);
  });

  const negatives: { label: string; run: (r: ReturnType<typeof createResolver>) => Promise<Lookup<unknown>>; kind: string }[] = [
    { label: "a name that does not exist is nxdomain", run: (r) => r.a("nowhere.test"), kind: "nxdomain" },
    { label: "a CNAME to a missing name is nxdomain", run: (r) => r.a("dangling.test"), kind: "nxdomain" },
    { label: "a name without records of the type is nodata", run: (r) => r.aaaa("only-v4.test"), kind: "nodata" },
    { label: "a name without MX records is nodata", run: (r) => r.mx("hosts.test"), kind: "nodata" },
    { label: "SERVFAIL is temporary", run: (r) => r.mx("servfail.test"), kind: "temporary" },
    { label: "REFUSED is temporary", run: (r) => r.mx("refused.test"), kind: "temporary" },
    { label: "a reply that is no DNS message is temporary", run: (r) => r.a("garbage.test"), kind: "temporary" },
    { label: "an invalid name is nxdomain without asking", run: (r) => r.a("bad..name"), kind: "nxdomain" },
  ];
  for (const { label, run, kind } of negatives) {
    it(`says so without throwing: ${label}`, async () => {
      const lookup = await run(createResolver({ servers: [dns.address], timeoutMs: 200, tries: 1 }));
      expect(lookup.ok).toBe(false);
      if (!lookup.ok) {
        expect(lookup.kind).toBe(kind);
        expect(lookup.reason).not.toBe("");
      }
    });
  }

  it("names the server and the rcode in a temporary failure", async () => {
    const lookup = await createResolver({ servers: [dns.address], timeoutMs: 200, tries: 1 }).mx("servfail.test");
    expect(lookup).toMatchObject({ ok: false, kind: "temporary" });
    if (!lookup.ok) expect(lookup.reason).toContain(`SERVFAIL from ${dns.address}`);
  });

  it("retries over TCP when the UDP answer is truncated", async () => {
    const resolver = createResolver({ servers: [dns.address], timeoutMs: 500 });
    const txt = expectOk(await resolver.txt("big.test"));
    expect(txt.records).toEqual(["x".repeat(200), "y".repeat(200), "z".repeat(200)]);
    expect(asked(dns, "big.test").map((q) => q.transport)).toEqual(["udp", "tcp"]);
  });

  it("ignores replies with a wrong id or another question and takes the real answer", async () => {
    const resolver = createResolver({ servers: [dns.address], timeoutMs: 500 });
    expect(expectOk(await resolver.a("spoofed.test")).records).toEqual(["192.0.2.40"]);
  });

  it("asks a server on ::1 given as [::1]:port", async () => {
    const six = await startDnsServer({ "v6.test": { AAAA: ["2606:4700::1"] } }, { host: "::1" });
    try {
      expect(six.address).toBe(`[::1]:${six.port}`);
      const resolver = createResolver({ servers: [six.address], timeoutMs: 500 });
      expect(expectOk(await resolver.aaaa("v6.test")).records).toEqual(["2606:4700::1"]);
    } finally {
      await six.close();
    }
  });

  it("shares one query between concurrent look-ups of the same name", async () => {
    const resolver = createResolver({ servers: [dns.address], timeoutMs: 500 });
    const [one, two] = await Promise.all([resolver.a("shared.test"), resolver.a("shared.test")]);
    expect(expectOk(one).records).toEqual(["192.0.2.53"]);
    expect(expectOk(two).records).toEqual(["192.0.2.53"]);
    expect(asked(dns, "shared.test")).toHaveLength(1);
  });
});

describe("createResolver when servers fail", () => {
  it("gives up on a server that never answers within the timeout, as temporary", async () => {
    const resolver = createResolver({ servers: [dns.address], timeoutMs: 200, tries: 1 });
    const started = Date.now();
    const lookup = await resolver.mx("hang.test");
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(lookup).toMatchObject({ ok: false, kind: "temporary" });
    if (!lookup.ok) expect(lookup.reason).toContain("within 200 ms");
  });

  it("asks the same server again for each of its tries", async () => {
    const before = asked(dns, "hang.test").length;
    await createResolver({ servers: [dns.address], timeoutMs: 100, tries: 3 }).a("hang.test");
    expect(asked(dns, "hang.test").length - before).toBe(3);
  });

  it("reports a closed port as temporary", async () => {
    const gone = await startDnsServer({});
    await gone.close();
    const lookup = await createResolver({ servers: [gone.address], timeoutMs: 200, tries: 1 }).a("x.test");
    expect(lookup).toMatchObject({ ok: false, kind: "temporary" });
  });

  it("fails over to the second server when the first hangs, then keeps asking the one that answered", async () => {
    const dead = await startDnsServer({ "failover.test": { hang: true }, "again.test": { hang: true } });
    const good = await startDnsServer({ "failover.test": { A: ["192.0.2.60"] }, "again.test": { A: ["192.0.2.61"] } });
    try {
      const resolver = createResolver({ servers: [dead.address, good.address], timeoutMs: 200, tries: 1 });
      expect(expectOk(await resolver.a("failover.test")).records).toEqual(["192.0.2.60"]);
      expect(expectOk(await resolver.a("again.test")).records).toEqual(["192.0.2.61"]);
      expect(dead.queries.map((q) => q.name)).toEqual(["failover.test"]);
      expect(good.queries.map((q) => q.name)).toEqual(["failover.test", "again.test"]);
    } finally {
      await dead.close();
      await good.close();
    }
  });

  it("fails over to the second server when the first answers SERVFAIL", async () => {
    const broken = await startDnsServer({ "sf.test": { SERVFAIL: true } });
    const good = await startDnsServer({ "sf.test": { MX: [{ preference: 0, exchange: "mx.sf.test" }] } });
    try {
      const resolver = createResolver({ servers: [broken.address, good.address], timeoutMs: 200, tries: 1 });
      expect(expectOk(await resolver.mx("sf.test")).records).toEqual([{ preference: 0, exchange: "mx.sf.test" }]);
    } finally {
      await broken.close();
      await good.close();
    }
  });
});

describe("createResolver caches by TTL on the injected clock", () => {
  it("serves a second look-up without a query until the TTL has passed", async () => {
    let now = 1_000_000;
    const resolver = createResolver({ servers: [dns.address], timeoutMs: 500, now: () => now });
    expect(expectOk(await resolver.a("cached.test")).ttl).toBe(300);
    now += 299_000;
    const again = expectOk(await resolver.a("cached.test"));
    expect(again.records).toEqual(["192.0.2.50"]);
    expect(again.ttl).toBe(1);
    expect(asked(dns, "cached.test")).toHaveLength(1);
    now += 1_000;
    expect(expectOk(await resolver.a("cached.test")).ttl).toBe(300);
    expect(asked(dns, "cached.test")).toHaveLength(2);
  });

  it("keeps a positive answer for at most one hour whatever its TTL", async () => {
    let now = 0;
    const resolver = createResolver({ servers: [dns.address], timeoutMs: 500, now: () => now });
    await resolver.a("long-ttl.test");
    now = 3_599_000;
    await resolver.a("long-ttl.test");
    expect(asked(dns, "long-ttl.test")).toHaveLength(1);
    now = 3_600_000;
    await resolver.a("long-ttl.test");
    expect(asked(dns, "long-ttl.test")).toHaveLength(2);
  });

  it("caches NXDOMAIN and NODATA for the SOA's negative TTL", async () => {
    const server = await startDnsServer({ "exists.test": { A: ["192.0.2.70"] } }, { negativeTtl: 30 });
    try {
      let now = 0;
      const resolver = createResolver({ servers: [server.address], timeoutMs: 500, now: () => now });
      for (let i = 0; i < 2; i++) {
        expect(await resolver.a("gone.test")).toMatchObject({ ok: false, kind: "nxdomain" });
        expect(await resolver.mx("exists.test")).toMatchObject({ ok: false, kind: "nodata" });
      }
      expect(server.queries).toHaveLength(2);
      now = 30_000;
      await resolver.a("gone.test");
      await resolver.mx("exists.test");
      expect(server.queries).toHaveLength(4);
    } finally {
      await server.close();
    }
  });

  it("never caches a temporary failure, so a fixed server is seen at once", async () => {
    const server = await startDnsServer({ "flaky.test": { SERVFAIL: true } });
    try {
      const resolver = createResolver({ servers: [server.address], timeoutMs: 200, tries: 1, now: () => 0 });
      expect(await resolver.a("flaky.test")).toMatchObject({ ok: false, kind: "temporary" });
      server.setZone({ "flaky.test": { A: ["192.0.2.80"] } });
      expect(expectOk(await resolver.a("flaky.test")).records).toEqual(["192.0.2.80"]);
      expect(server.queries).toHaveLength(2);
    } finally {
      await server.close();
    }
  });

  it("asks every time when the cache is off", async () => {
    const resolver = createResolver({ servers: [dns.address], timeoutMs: 500, cache: false });
    await resolver.a("uncached.test");
    await resolver.a("uncached.test");
    expect(asked(dns, "uncached.test")).toHaveLength(2);
  });

  it("hands each caller its own records array, so sorting one does not change the cache", async () => {
    const resolver = createResolver({ servers: [dns.address], timeoutMs: 500, now: () => 0 });
    const first = expectOk(await resolver.mx("mail.test"));
    first.records.reverse();
    expect(expectOk(await resolver.mx("mail.test")).records[0]?.exchange).toBe("mx1.mail.test");
  });
});

describe("resolveServers", () => {
  const system = () => ["10.0.0.53", "10.0.0.54:5353", "2001:db8::53", "[2001:db8::54]:5353"];
  it("uses the configured servers as given", () => {
    expect(resolveServers(["127.0.0.1:5300", "[::1]:53"], system).map((s) => s.label)).toEqual(["127.0.0.1:5300", "[::1]:53"]);
  });
  it("falls back to the system resolvers, in every form node:dns prints them", () => {
    expect(resolveServers([], system).map((s) => s.label)).toEqual([
      "10.0.0.53:53",
      "10.0.0.54:5353",
      "[2001:db8::53]:53",
      "[2001:db8::54]:5353",
    ]);
  });
  it("refuses a configured server that is not ip[:port] (config.ts should have caught it)", () => {
    expect(() => resolveServers(["dns.example:53"], system)).toThrow(/not ip\[:port\]/);
  });
  it("makes createResolver ask the system resolvers when none are configured", async () => {
    const resolver = createResolver({ servers: [], systemServers: () => [dns.address], timeoutMs: 500 });
    expect(expectOk(await resolver.a("only-v4.test")).records).toEqual(["192.0.2.20"]);
  });
  it("says temporary, without throwing, when there is no server at all", async () => {
    const lookup = await createResolver({ servers: [], systemServers: () => [] }).a("example.test");
    expect(lookup).toMatchObject({ ok: false, kind: "temporary" });
  });
});
