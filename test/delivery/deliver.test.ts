import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deliverJob, type DeliverDeps, type JobMessage } from "../../src/delivery/deliver.js";
import { SessionPool } from "../../src/delivery/pool.js";
import { createResolver } from "../../src/dns/resolver.js";
import type { Resolver } from "../../src/dns/types.js";
import type { SmtpSession } from "../../src/smtp/connection.js";
import { encodeData } from "../../src/smtp/data.js";
import { startDnsServer, type DnsServer } from "../helpers/dns-server.js";
import { startMailServer, type MailServer } from "../helpers/mail-server.js";
import { scriptedServer, startSmtpServer, testCertificate } from "../helpers/smtp-servers.js";
import type { MtaStsFetcher } from "../../src/delivery/mta-sts.js";

let dns: DnsServer;
let mail: MailServer;
beforeAll(async () => {
  dns = await startDnsServer({
    // One MX with one address: an order without a choice in it.
    "one.test": { MX: [{ preference: 10, exchange: "mx.one.test" }] },
    "mx.one.test": { A: ["127.0.0.1"] },
    // Two MX hosts of equal preference: shuffled for every job (RFC 5321 §5.1).
    "two.test": { MX: [{ preference: 10, exchange: "a.two.test" }, { preference: 10, exchange: "b.two.test" }] },
    "a.two.test": { A: ["127.0.0.1"] },
    "b.two.test": { A: ["127.0.0.1"] },
    // An address with a TTL of 0: never remembered.
    "zero.test": { MX: [{ preference: 10, exchange: "mx.zero.test" }] },
    "mx.zero.test": { A: [{ address: "127.0.0.1", ttl: 0 }] },
    // A server that takes at most 2 recipients a transaction.
    "few.test": { MX: [{ preference: 10, exchange: "mx.few.test" }] },
    "mx.few.test": { A: ["127.0.0.5"] },
  });
  mail = await startMailServer();
});
afterAll(async () => {
  await mail?.close();
  await dns?.close();
});

const encoded = encodeData(Buffer.from("From: a@example.com\r\nTo: u@one.test\r\nSubject: memo\r\n\r\nHello.\r\n"));
if (!encoded.ok) throw new Error(encoded.reason);
const message: JobMessage = { id: "msg_1", accountId: "acct_1", mailFrom: "a@example.com", data: encoded.message, smtputf8: false, messageIdHeader: "<1@example.com>", tags: {} };

/** The real resolver, counting the MX look-ups the engine asks it for. */
function counting(r: Resolver) {
  const asked = { mx: 0 };
  const resolver: Resolver = { mx: (n) => (asked.mx++, r.mx(n)), a: (n) => r.a(n), aaaa: (n) => r.aaaa(n), txt: (n) => r.txt(n) };
  return { resolver, asked };
}

describe("deliverJob's memory of a domain's destinations", () => {
  it("reuses an order without a choice for up to a second, then resolves again", async () => {
    const { resolver, asked } = counting(createResolver({ servers: [dns.address] }));
    let clock = 1_000_000;
    const pool = new SessionPool<SmtpSession>({ idleMs: 1_000, maxUses: 100 });
    const deps: DeliverDeps = { resolver, allowNetworks: ["127.0.0.0/8"], smtpPort: mail.port, heloName: "test.local", pool, now: () => clock };
    const job = async () => (await deliverJob(deps, message, "one.test", [{ id: "r1", email: "u@one.test" }]))[0]!;
    const before = mail.received.length;

    expect((await job()).result.outcome).toBe("delivered");
    clock += 500;
    expect((await job()).result.outcome).toBe("delivered");
    expect(asked.mx).toBe(1);
    clock += 501;
    expect((await job()).result.outcome).toBe("delivered");
    expect(asked.mx).toBe(2);
    expect(mail.received.length - before).toBe(3);
    await pool.close();
  });

  it("resolves again for every job when equal preferences are shuffled, or when a TTL is 0", async () => {
    const { resolver, asked } = counting(createResolver({ servers: [dns.address] }));
    const pool = new SessionPool<SmtpSession>({ idleMs: 1_000, maxUses: 100 });
    const deps: DeliverDeps = { resolver, allowNetworks: ["127.0.0.0/8"], smtpPort: mail.port, heloName: "test.local", pool, now: () => 5_000 };
    for (const domain of ["two.test", "zero.test"]) {
      const start = asked.mx;
      for (let i = 0; i < 3; i++) expect((await deliverJob(deps, message, domain, [{ id: `r${i}`, email: `u@${domain}` }]))[0]!.result.outcome).toBe("delivered");
      expect(asked.mx - start).toBe(3);
    }
    await pool.close();
  });

  it("keeps no memory between engines (each DeliverDeps has its own)", async () => {
    const a = counting(createResolver({ servers: [dns.address] }));
    const b = counting(createResolver({ servers: [dns.address] }));
    const pools = [1, 2].map(() => new SessionPool<SmtpSession>({ idleMs: 1_000, maxUses: 100 }));
    const base = { allowNetworks: ["127.0.0.0/8"], smtpPort: mail.port, heloName: "test.local", now: () => 9_000 };
    await deliverJob({ ...base, resolver: a.resolver, pool: pools[0]! }, message, "one.test", [{ id: "r1", email: "u@one.test" }]);
    await deliverJob({ ...base, resolver: b.resolver, pool: pools[1]! }, message, "one.test", [{ id: "r1", email: "u@one.test" }]);
    expect([a.asked.mx, b.asked.mx]).toEqual([1, 1]);
    await Promise.all(pools.map((p) => p.close()));
  });
});

describe("deliverJob to a server that limits its recipients per transaction", () => {
  const emails = ["a", "b", "c", "d", "e"].map((l) => `${l}@few.test`);
  const run = async (refusal: { code: number; text: string }, limit = 2) => {
    const srv = await startMailServer({ host: "127.0.0.5", port: mail.port, script: { rcpt: (_a, _n, accepted) => (accepted >= limit ? refusal : undefined) } });
    const pool = new SessionPool<SmtpSession>({ idleMs: 1_000, maxUses: 100 });
    const deps: DeliverDeps = { resolver: createResolver({ servers: [dns.address] }), allowNetworks: ["127.0.0.0/8"], smtpPort: mail.port, heloName: "test.local", pool };
    try {
      const results = await deliverJob(deps, message, "few.test", emails.map((email, i) => ({ id: `r${i}`, email })));
      return { results, received: srv.received.map((m) => m.to), connections: srv.connections };
    } finally {
      await pool.close();
      await srv.close();
    }
  };

  it("sends the recipients refused with 452 in further transactions on the same connection at once", async () => {
    const { results, received, connections } = await run({ code: 452, text: "4.5.3 Too many recipients" });
    expect(results.map((r) => r.result.outcome)).toEqual(["delivered", "delivered", "delivered", "delivered", "delivered"]);
    expect(received).toEqual([emails.slice(0, 2), emails.slice(2, 4), emails.slice(4)]);
    expect(connections).toBe(1);
  });

  it("treats a 552 to RCPT as RFC 821's too-many-recipients: sent in the next transaction, never bounced", async () => {
    const { results, received } = await run({ code: 552, text: "5.5.3 Too many recipients" });
    expect(results.map((r) => r.result.outcome)).toEqual(["delivered", "delivered", "delivered", "delivered", "delivered"]);
    expect(received.flat()).toEqual(emails);
  });

  it("defers, not bounces, recipients refused 452 or 552 when a transaction delivered to nobody (no loop)", async () => {
    for (const refusal of [{ code: 452, text: "4.3.1 Insufficient system storage" }, { code: 552, text: "5.2.2 Mailbox full" }]) {
      const { results, received } = await run(refusal, 0);
      expect(received).toEqual([]);
      for (const r of results) {
        expect(r.result.outcome).toBe("defer");
        expect(r.result.reason).toMatchObject({ code: refusal.code, text: refusal.text });
      }
    }
  });
});

describe("deliverJob's further rounds after 452", () => {
  it("keeps each recipient's own RCPT answer when a later round's DATA command is refused", async () => {
    const lines: string[] = [];
    const srv = await scriptedServer(async (p) => {
      const read = async (n: number) => { for (let i = 0; i < n; i++) lines.push((await p.line()) ?? "<closed>"); };
      await p.send("220 mx.rounds.test ESMTP\r\n");
      await read(1); // EHLO
      await p.send("250-mx.rounds.test\r\n250 PIPELINING\r\n");
      await read(5); // MAIL, RCPT a, b, c, DATA
      await p.send("250 ok\r\n250 ok\r\n452 4.5.3 Too many recipients\r\n452 4.5.3 Too many recipients\r\n354 go\r\n");
      await p.until("\r\n.\r\n");
      await p.send("250 2.0.0 queued\r\n");
      await read(4); // MAIL, RCPT b, c, DATA
      await p.send("250 ok\r\n550 5.1.1 No such user\r\n250 ok\r\n554 5.7.1 Not today\r\n");
      await read(1); // RSET or QUIT, or the close
    });
    const zone = await startDnsServer({ "rounds.test": { MX: [{ preference: 10, exchange: "mx.rounds.test" }] }, "mx.rounds.test": { A: ["127.0.0.1"] } });
    const pool = new SessionPool<SmtpSession>({ idleMs: 1_000, maxUses: 100 });
    try {
      const deps: DeliverDeps = { resolver: createResolver({ servers: [zone.address] }), allowNetworks: ["127.0.0.0/8"], smtpPort: srv.port, heloName: "test.local", pool, timeouts: { quit: 200 } };
      const results = await deliverJob(deps, message, "rounds.test", ["a", "b", "c"].map((l) => ({ id: l, email: `${l}@rounds.test` })));
      expect(results.map((r) => [r.recipient.id, r.result.outcome, r.result.reason.code, r.result.bounceKind ?? null])).toEqual([
        ["a", "delivered", 250, null],
        ["b", "bounce", 550, "hard"], // its own mailbox answer, so it is suppressed
        ["c", "bounce", 554, "soft"], // the transaction's refusal
      ]);
      expect(lines.filter((l) => l.startsWith("RCPT"))).toEqual(["RCPT TO:<a@rounds.test>", "RCPT TO:<b@rounds.test>", "RCPT TO:<c@rounds.test>", "RCPT TO:<b@rounds.test>", "RCPT TO:<c@rounds.test>"]);
    } finally {
      await pool.close();
      await srv.close();
      await zone.close();
    }
  });
});

describe("deliverJob with replies that are not a mailbox's refusal", () => {
  /** One transaction against a byte-scripted server: `rcpt` answers the RCPT, `dot` the final ".". */
  async function once(rcpt: string, dot = "250 2.0.0 queued") {
    const srv = await scriptedServer(async (p) => {
      await p.send("220 mx ESMTP\r\n");
      await p.line();
      await p.send("250-mx\r\n250 8BITMIME\r\n"); // no PIPELINING: one command at a time
      await p.line();
      await p.send("250 ok\r\n"); // MAIL
      await p.line();
      await p.send(`${rcpt}\r\n`);
      const next = await p.line();
      if (next?.startsWith("DATA")) {
        await p.send("354 go\r\n");
        await p.until("\r\n.\r\n");
        await p.send(`${dot}\r\n`);
        await p.line();
      }
      await p.send("221 bye\r\n");
    });
    const pool = new SessionPool<SmtpSession>({ idleMs: 1_000, maxUses: 100 });
    try {
      const deps: DeliverDeps = { resolver: createResolver({ servers: [dns.address] }), allowNetworks: ["127.0.0.0/8"], smtpPort: srv.port, heloName: "test.local", pool, timeouts: { quit: 200 } };
      const [r] = await deliverJob(deps, message, "one.test", [{ id: "r1", email: "u@one.test" }]);
      return [r!.result.outcome, r!.result.reason.code, r!.result.bounceKind ?? null];
    } finally {
      await pool.close();
      await srv.close();
    }
  }

  it("defers a 354 to RCPT and a 354 to the final dot instead of bouncing (hard, suppressed) or losing the mail", async () => {
    expect(await once("354 go ahead")).toEqual(["defer", 354, null]);
    expect(await once("250 2.1.5 ok", "354 what")).toEqual(["defer", 354, null]);
  });

  it("bounces a 501 to RCPT without an enhanced code as soft (never suppressed), and a bare 550 as hard", async () => {
    expect(await once("501 Error: Bad recipient address syntax")).toEqual(["bounce", 501, "soft"]);
    expect(await once("550 No such user")).toEqual(["bounce", 550, "hard"]);
  });
});

describe("deliverJob under MTA-STS enforce", () => {
  it("never reuses a session verified for one MX name for another domain's MX at the same address (RFC 8461 §4.2)", async () => {
    const zone = await startDnsServer({
      "a.test": { MX: [{ preference: 10, exchange: "mx.a.test" }] },
      "mx.a.test": { A: ["127.0.0.1"] },
      "b.test": { MX: [{ preference: 10, exchange: "mx.b.test" }] },
      "mx.b.test": { A: ["127.0.0.1"] },
    });
    const cert = testCertificate(["mx.a.test"]); // valid for mx.a.test only
    const smtp = await startSmtpServer({ key: cert.key, cert: cert.cert });
    // Both domains publish enforce policies naming their own MX.
    const mtaSts: MtaStsFetcher = { policyFor: async (d) => ({ kind: "policy", id: "1", source: "fetched", policy: { version: "STSv1", mode: "enforce", mx: [`mx.${d}`], maxAge: 86_400 } }) };
    const pool = new SessionPool<SmtpSession>({ idleMs: 1_000, maxUses: 100 });
    try {
      const deps: DeliverDeps = { resolver: createResolver({ servers: [zone.address] }), allowNetworks: ["127.0.0.0/8"], smtpPort: smtp.port, heloName: "test.local", pool, mtaSts, tlsCa: cert.cert, timeouts: { quit: 200 } };
      const [a] = await deliverJob(deps, message, "a.test", [{ id: "r1", email: "u@a.test" }]);
      expect(a!.result.outcome).toBe("delivered"); // its session is now warm in the pool
      const [b] = await deliverJob(deps, message, "b.test", [{ id: "r2", email: "u@b.test" }]);
      expect(b!.result.outcome).toBe("defer");
      expect(b!.result.reason.text).toMatch(/mx\.b\.test/);
      expect(smtp.received.map((m) => m.to)).toEqual([["u@a.test"]]);
    } finally {
      await pool.close();
      await smtp.close();
      await zone.close();
    }
  });
});

describe("deliverJob's destination guard with a host not resolved yet", () => {
  it("defers when the guard refuses every address found but a better MX failed to resolve only for now; fails when none is pending", async () => {
    const zone = await startDnsServer({
      "mix.test": { MX: [{ preference: 10, exchange: "mx1.mix.test" }, { preference: 20, exchange: "mx2.mix.test" }] },
      "mx1.mix.test": { SERVFAIL: true }, // the best MX, unresolvable for now
      "mx2.mix.test": { A: ["10.1.2.3"] }, // a private address: refused (nothing is connected to)
      "sure.test": { MX: [{ preference: 10, exchange: "mx2.mix.test" }] },
    });
    const pool = new SessionPool<SmtpSession>({ idleMs: 1_000, maxUses: 100 });
    try {
      const deps: DeliverDeps = { resolver: createResolver({ servers: [zone.address], timeoutMs: 300 }), allowNetworks: [], smtpPort: 25, heloName: "test.local", pool };
      const [mix] = await deliverJob(deps, message, "mix.test", [{ id: "r1", email: "u@mix.test" }]);
      expect([mix!.result.outcome, mix!.result.reason.enhanced, mix!.attempted]).toEqual(["defer", "4.4.3", false]);
      expect(mix!.result.reason.text).toMatch(/mx1\.mix\.test/);
      const [sure] = await deliverJob(deps, message, "sure.test", [{ id: "r2", email: "u@sure.test" }]);
      expect([sure!.result.outcome, sure!.result.reason.enhanced]).toEqual(["fail", "5.4.4"]);
    } finally {
      await pool.close();
      await zone.close();
    }
  });
});
