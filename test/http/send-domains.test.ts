/**
 * The send path and sending domains together: REQUIRE_VERIFIED_DOMAIN refuses a From domain the
 * account has not verified (422 naming it), and a verified domain's messages are stored signed
 * so that an independent verifier (mailauth) accepts them with the published DKIM record.
 */
import { dkimVerify } from "mailauth/lib/dkim/verify.js";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { messages } from "../../src/db/schema.js";
import { createTestApp, type TestApp } from "../helpers/app.js";
import { startDnsServer, type DnsServer, type Zone } from "../helpers/dns-server.js";

let t: TestApp;
let dns: DnsServer;
const zone: Zone = {};

beforeAll(async () => {
  dns = await startDnsServer(zone);
  t = await createTestApp({ REQUIRE_VERIFIED_DOMAIN: "true", DNS_SERVERS: dns.address, HELO_NAME: "mta.postline.test" });
});
afterAll(async () => {
  await t.close();
  await dns.close();
});

const body = (from: string) => ({ from, to: "bob@example.org", subject: "Signed", text: "Hello, signed world." });

/** Publishes every record POST /domains asked for, as its owner would. */
function publish(domain: { records: { name: string; value: string }[] }) {
  for (const r of domain.records) {
    const entry = (zone[r.name] ??= {});
    // A TXT character-string holds 255 octets; longer values (RSA keys) are split, as in a zone file.
    entry.TXT = [...(entry.TXT ?? []), r.value.match(/.{1,255}/g) ?? [""]];
  }
  dns.setZone(zone);
}

async function storedRaw(id: string): Promise<Buffer> {
  const [m] = await t.store.db.select({ raw: messages.raw }).from(messages).where(eq(messages.id, id));
  return m!.raw;
}

const mailauthResolver = async (name: string, type: string) => {
  const txt = type === "TXT" ? zone[name.toLowerCase()]?.TXT : undefined;
  if (!txt?.length) throw Object.assign(new Error(`no ${type} for ${name}`), { code: "ENOTFOUND" });
  return txt.map((v) => [typeof v === "string" ? v : Array.isArray(v) ? v.join("") : String(v.data)]);
};

describe("sending from a domain", () => {
  it("refuses a From domain that is not a sending domain of the account, naming it", async () => {
    const a = await t.account("no-domain");
    const res = await t.json("POST", "/messages", { key: a.key, body: body("Alice <alice@unregistered.example>") });
    expect(res.status).toBe(422);
    expect(res.body.detail).toContain("unregistered.example");
    expect(res.body.errors[0].path).toBe("from");
  });

  for (const algorithm of ["rsa-sha256", "ed25519-sha256"] as const)
    it(`refuses a pending domain, then signs with ${algorithm} once it is verified, so that mailauth passes it`, async () => {
      const a = await t.account(algorithm);
      const name = `${algorithm.slice(0, 3)}.signing.example`;
      const created = await t.json("POST", "/domains", { key: a.key, body: { name, algorithm } });
      expect(created.status).toBe(201);
      const pending = await t.json("POST", "/messages", { key: a.key, body: body(`Alice <alice@${name}>`) });
      expect(pending.status).toBe(422);
      expect(pending.body.detail).toMatch(/not verified/);

      publish(created.body);
      const verified = await t.json("POST", `/domains/${created.body.id}/verify`, { key: a.key });
      expect(verified.body.status).toBe("verified");

      const sent = await t.json("POST", "/messages", { key: a.key, body: body(`Alice <alice@${name}>`) });
      expect(sent.status).toBe(202);
      const raw = await storedRaw(sent.body.id);
      expect(raw.toString()).toMatch(new RegExp(`^DKIM-Signature: v=1; a=${algorithm};`));
      const result = await dkimVerify(raw, { resolver: mailauthResolver, curTime: new Date() });
      expect(result.results.map((r: any) => [r.signingDomain, r.status.result])).toEqual([[name, "pass"]]);
      // One changed body byte breaks it.
      const tampered = Buffer.from(raw.toString().replace("Hello, signed world.", "Hello, signed World."));
      const bad = await dkimVerify(tampered, { resolver: mailauthResolver, curTime: new Date() });
      expect(bad.results[0]?.status.result).not.toBe("pass");
    });

  it("does not offer one account's domain to another account", async () => {
    const owner = await t.account("owner");
    const other = await t.account("other");
    const created = await t.json("POST", "/domains", { key: owner.key, body: { name: "owned.example" } });
    publish(created.body);
    expect((await t.json("POST", `/domains/${created.body.id}/verify`, { key: owner.key })).body.status).toBe("verified");
    const res = await t.json("POST", "/messages", { key: other.key, body: body("x@owned.example") });
    expect(res.status).toBe(422);
  });
});

describe("POST /messages/raw", () => {
  it("stores a caller's message normalised to CRLF, without Bcc, with Message-ID, Date and MIME-Version added, and signed", async () => {
    const a = await t.account("raw");
    const created = await t.json("POST", "/domains", { key: a.key, body: { name: "raw.example", algorithm: "ed25519-sha256" } });
    publish(created.body);
    await t.json("POST", `/domains/${created.body.id}/verify`, { key: a.key });
    const message = "From: Raw Sender <news@raw.example>\nTo: bob@example.org\nBcc: hidden@example.net\nSubject: Raw one\n\nHello\n.\nbye\n";
    const res = await t.json("POST", "/messages/raw", {
      key: a.key,
      body: { from: "bounces@raw.example", to: ["bob@example.org", "BOB@example.org", "carol@example.net"], raw: Buffer.from(message).toString("base64") },
    });
    expect(res.status).toBe(202);
    expect(res.body.recipients.map((r: any) => r.email)).toEqual(["bob@example.org", "carol@example.net"]);
    const raw = await storedRaw(res.body.id);
    const text = raw.toString();
    expect(text.replace(/\r\n/g, "")).not.toMatch(/[\r\n]/);
    expect(text).not.toMatch(/^Bcc:/im);
    expect(text).toContain(`Message-ID: ${res.body.message_id}\r\n`);
    expect(text).toMatch(/\r\nDate: .+\r\nMIME-Version: 1\.0\r\n\r\nHello\r\n\.\r\nbye\r\n$/);
    const result = await dkimVerify(raw, { resolver: mailauthResolver, curTime: new Date() });
    expect(result.results.map((r: any) => r.status.result)).toEqual(["pass"]);
    const got = await t.json("GET", `/messages/${res.body.id}`, { key: a.key });
    expect(got.body).toMatchObject({ subject: "Raw one", from: "Raw Sender <news@raw.example>" });
  });

  it("marks a raw message as needing SMTPUTF8 for UTF-8 in its headers, not for a UTF-8 envelope recipient alone", async () => {
    const a = await t.account("raw-utf8");
    const created = await t.json("POST", "/domains", { key: a.key, body: { name: "rawutf8.example", algorithm: "ed25519-sha256" } });
    publish(created.body);
    await t.json("POST", `/domains/${created.body.id}/verify`, { key: a.key });
    const send = (headers: string, to: string[]) =>
      t.json("POST", "/messages/raw", { key: a.key, body: { from: "news@rawutf8.example", to, raw: Buffer.from(`From: news@rawutf8.example\n${headers}Subject: x\n\nhi\n`).toString("base64") } });
    const flag = async (id: string) => (await t.store.db.select({ f: messages.smtputf8 }).from(messages).where(eq(messages.id, id)))[0]!.f;
    const envelopeOnly = await send("To: undisclosed-recipients:;\n", ["jörg@example.org", "ann@example.org"]);
    expect(envelopeOnly.status).toBe(202);
    expect(await flag(envelopeOnly.body.id)).toBe(false);
    const inHeaders = await send("To: jörg@example.org\n", ["jörg@example.org"]);
    expect(inHeaders.status).toBe(202);
    expect(await flag(inHeaders.body.id)).toBe(true);
  });

  it("refuses a message that does not parse, a long line, and an unverified From domain, storing nothing", async () => {
    const a = await t.account("raw-bad");
    const b64 = (s: string) => Buffer.from(s).toString("base64");
    const bad = [
      [b64("no header here\n\nbody\n"), 422, /raw/],
      [b64(`From: x@unverified.example\n\n${"y".repeat(1200)}\n`), 422, /998/],
      [b64("From: x@unverified.example\n\nbody\n"), 422, /unverified\.example/],
    ] as const;
    for (const [raw, status, detail] of bad) {
      const res = await t.json("POST", "/messages/raw", { key: a.key, body: { from: "x@unverified.example", to: "bob@example.org", raw } });
      expect(res.status).toBe(status);
      expect(JSON.stringify(res.body)).toMatch(detail);
    }
    expect((await t.json("GET", "/messages", { key: a.key })).body.data).toEqual([]);
  });

  it("refuses an envelope sender outside the From domain and the account's verified domains (it would be MAIL FROM for SPF and bounces)", async () => {
    const a = await t.account("raw-envelope");
    for (const name of ["envelope.example", "other-verified.example"]) {
      const created = await t.json("POST", "/domains", { key: a.key, body: { name, algorithm: "ed25519-sha256" } });
      publish(created.body);
      expect((await t.json("POST", `/domains/${created.body.id}/verify`, { key: a.key })).body.status).toBe("verified");
    }
    const raw = Buffer.from("From: news@envelope.example\nTo: bob@example.org\nSubject: x\n\nhi\n").toString("base64");
    const send = (from: string) => t.json("POST", "/messages/raw", { key: a.key, body: { from, to: "bob@example.org", raw } });
    const refused = await send("ceo@bank-victim.example");
    expect(refused.status).toBe(422);
    expect(refused.body.errors).toEqual([{ path: "from", message: expect.stringContaining("bank-victim.example") }]);
    expect((await t.json("GET", "/messages", { key: a.key })).body.data).toEqual([]);
    // The From domain, a subdomain of it (a bounce domain) and another verified domain are fine.
    for (const from of ["bounces@envelope.example", "b@mail.envelope.example", "x@other-verified.example"]) expect([from, (await send(from)).status]).toEqual([from, 202]);
  });
});
