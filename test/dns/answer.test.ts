import { describe, expect, it } from "vitest";
import type { Answer } from "dns-packet";
import { readReply } from "../../src/dns/answer.js";
import type { Reply } from "../../src/dns/transport.js";

function reply(rcode: string, answers: Answer[], authorities: Answer[] = []): Reply {
  return {
    type: "response",
    id: 1,
    rcode,
    answers,
    authorities,
    flag_qr: true,
    flag_aa: true,
    flag_tc: false,
    flag_rd: true,
    flag_ra: true,
    flag_z: false,
    flag_ad: false,
    flag_cd: false,
  };
}
const soa = (ttl: number, minimum: number): Answer => ({
  name: "test",
  type: "SOA",
  ttl,
  data: { mname: "ns.test", rname: "h.test", minimum },
});
const a = (name: string, data: string, ttl = 300): Answer => ({ name, type: "A", ttl, data });
const cname = (name: string, data: string, ttl = 300): Answer => ({ name, type: "CNAME", ttl, data });

describe("readReply", () => {
  const cases: { label: string; reply: Reply; expected: unknown; negativeTtl?: number | null }[] = [
    {
      label: "takes the records of the asked name and the smallest TTL",
      reply: reply("NOERROR", [a("x.test", "192.0.2.1", 60), a("x.test", "192.0.2.2", 30)]),
      expected: { ok: true, records: ["192.0.2.1", "192.0.2.2"], ttl: 30 },
    },
    {
      label: "ignores records for names that are not on the chain (RFC 2181 §10.1)",
      reply: reply("NOERROR", [a("other.test", "6.6.6.6"), a("x.test", "192.0.2.1")]),
      expected: { ok: true, records: ["192.0.2.1"], ttl: 300 },
    },
    {
      label: "follows CNAMEs in any order, case-insensitively",
      reply: reply("NOERROR", [a("Z.test", "192.0.2.9", 100), cname("y.test", "z.test", 50), cname("X.TEST", "y.test.")]),
      expected: { ok: true, records: ["192.0.2.9"], ttl: 50 },
    },
    {
      label: "calls a CNAME loop temporary",
      reply: reply("NOERROR", [cname("x.test", "y.test"), cname("y.test", "x.test")]),
      expected: { ok: false, kind: "temporary" },
    },
    {
      label: "calls a chain longer than 8 links temporary",
      reply: reply("NOERROR", Array.from({ length: 10 }, (_, i) => cname(i === 0 ? "x.test" : `c${i}.test`, `c${i + 1}.test`))),
      expected: { ok: false, kind: "temporary" },
    },
    {
      label: "calls a chain that ends without records nodata",
      reply: reply("NOERROR", [cname("x.test", "y.test")], [soa(100, 20)]),
      expected: { ok: false, kind: "nodata" },
      negativeTtl: 20,
    },
    {
      label: "takes min(SOA TTL, MINIMUM) as the negative TTL (RFC 2308 §5)",
      reply: reply("NXDOMAIN", [], [soa(10, 600)]),
      expected: { ok: false, kind: "nxdomain" },
      negativeTtl: 10,
    },
    {
      label: "has no negative TTL without an SOA",
      reply: reply("NOERROR", []),
      expected: { ok: false, kind: "nodata" },
      negativeTtl: null,
    },
    {
      label: "treats a TTL with the top bit set as zero (RFC 2181 §8)",
      reply: reply("NOERROR", [a("x.test", "192.0.2.1", 0x80000000)]),
      expected: { ok: true, records: ["192.0.2.1"], ttl: 0 },
    },
    {
      label: "calls records that are all unusable temporary",
      reply: reply("NOERROR", [a("x.test", "not-an-ip")]),
      expected: { ok: false, kind: "temporary" },
    },
    ...["SERVFAIL", "REFUSED", "FORMERR", "NOTIMP"].map((rcode) => ({
      label: `calls ${rcode} temporary`,
      reply: reply(rcode, []),
      expected: { ok: false, kind: "temporary" },
    })),
  ];
  for (const { label, reply: r, expected, negativeTtl } of cases) {
    it(label, () => {
      const reading = readReply(r, { name: "x.test", type: "A" }, "127.0.0.1:53");
      expect(reading.lookup).toMatchObject(expected as object);
      if (negativeTtl !== undefined) expect(reading.negativeTtl).toBe(negativeTtl);
    });
  }

  it("reads a null MX target as '.'", () => {
    const r = reply("NOERROR", [{ name: "x.test", type: "MX", ttl: 300, data: { preference: 0, exchange: "." } }]);
    expect(readReply(r, { name: "x.test", type: "MX" }, "s").lookup).toEqual({
      ok: true,
      records: [{ preference: 0, exchange: "." }],
      ttl: 300,
    });
  });
});
