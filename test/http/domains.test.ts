import { createPublicKey, generateKeyPairSync, randomBytes, sign, verify } from "node:crypto";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { domains } from "../../src/db/schema.js";
import { isVerified, signingKeyFor } from "../../src/domains/signing.js";
import { open, secretFromString } from "../../src/lib/secret.js";
import { createTestApp, type TestApp } from "../helpers/app.js";
import { startDnsServer, type DnsServer, type Zone } from "../helpers/dns-server.js";

const SECRET_KEY = randomBytes(32).toString("base64url");
const secret = secretFromString(SECRET_KEY);
const HELO = "mta.postline.test";
const RETURN_PATH = "bounces.postline.test";

let t: TestApp;
let dns: DnsServer;
let zone: Zone;
beforeAll(async () => {
  dns = await startDnsServer({});
  t = await createTestApp({ SECRET_KEY, DNS_SERVERS: dns.address, HELO_NAME: HELO, RETURN_PATH_DOMAIN: RETURN_PATH });
});
afterAll(async () => {
  await t?.close();
  await dns?.close();
});
beforeEach(() => {
  zone = {};
  dns.setZone(zone);
});

/** A name no other test uses (names are unique across accounts). */
const fresh = () => `d${randomBytes(5).toString("hex")}.example.com`;

/** A TXT record as a DNS panel stores a long value: character-strings of at most 255 octets. */
const chunks = (value: string) => value.match(/.{1,255}/g)!;

type RecordBody = { purpose: string; name: string; value: string; status: string; checked_at: string | null; detail: string | null };
const record = (body: any, purpose: string): RecordBody => body.records.find((r: RecordBody) => r.purpose === purpose);

/** Publishes the domain's records in the test zone, all or some of them. */
function publish(body: any, purposes = ["dkim", "spf", "return_path", "dmarc"]) {
  for (const r of body.records as RecordBody[]) {
    if (!purposes.includes(r.purpose)) continue;
    (zone[r.name] ??= {}).TXT = [...(zone[r.name]?.TXT ?? []), chunks(r.value)];
  }
}

async function created(key: string, body: Record<string, unknown> = {}) {
  const res = await t.json("POST", "/domains", { key, body: { name: fresh(), ...body } });
  expect(res.status).toBe(201);
  return res.body;
}

const row = async (id: string) => (await t.store.db.select().from(domains).where(eq(domains.id, id)))[0];

describe("POST /domains", () => {
  it("creates a domain with an RSA 2048 key and returns the four records to publish, all pending", async () => {
    const a = await t.account();
    const name = fresh();
    const res = await t.json("POST", "/domains", { key: a.key, body: { name: name.toUpperCase() } });
    expect(res.status).toBe(201);
    const d = res.body;
    expect(d).toMatchObject({ id: expect.stringMatching(/^dom_/), name, status: "pending", dkim: { algorithm: "rsa-sha256" }, verified_at: null });
    expect(d.dkim.selector).toMatch(/^pl[a-z2-7]{8}$/);
    expect(d.records.map((r: RecordBody) => [r.purpose, r.name, r.status, r.checked_at])).toEqual([
      ["dkim", `${d.dkim.selector}._domainkey.${name}`, "pending", null],
      ["spf", name, "pending", null],
      ["return_path", `_postline.${name}`, "pending", null],
      ["dmarc", `_dmarc.${name}`, "pending", null],
    ]);
    expect(record(d, "spf").value).toBe(`v=spf1 a:${HELO} ~all`);
    expect(record(d, "return_path").value).toBe(`v=pl1; rp=${RETURN_PATH}`);
    expect(record(d, "dmarc").value).toBe(`v=DMARC1; p=none; rua=mailto:dmarc-reports@${name}`);
    const m = /^v=DKIM1; k=rsa; p=([A-Za-z0-9+/=]+)$/.exec(record(d, "dkim").value);
    expect(m).not.toBeNull();
    const pub = createPublicKey({ key: Buffer.from(m![1]!, "base64"), format: "der", type: "spki" });
    expect(pub.asymmetricKeyDetails?.modulusLength).toBe(2048);
  });

  it("creates an Ed25519 key on request, published raw (RFC 8463)", async () => {
    const a = await t.account();
    const d = await created(a.key, { algorithm: "ed25519-sha256" });
    expect(d.dkim.algorithm).toBe("ed25519-sha256");
    const m = /^v=DKIM1; k=ed25519; p=([A-Za-z0-9+/=]+)$/.exec(record(d, "dkim").value);
    expect(Buffer.from(m![1]!, "base64")).toHaveLength(32);
  });

  it("stores an internationalised name as punycode", async () => {
    const a = await t.account();
    const res = await t.json("POST", "/domains", { key: a.key, body: { name: `bücher-${randomBytes(3).toString("hex")}.de` } });
    expect(res.status).toBe(201);
    expect(res.body.name).toMatch(/^xn--bcher-[a-z0-9-]+\.de$/);
  });

  it.each([
    [{ name: "localhost" }],
    [{ name: "127.0.0.1" }],
    [{ name: "[::1]" }],
    [{ name: "com" }],
    [{ name: "bad_name.example.com" }],
    [{ name: "alice@example.com" }],
    [{ name: "" }],
    [{}],
    [{ name: "example.net", algorithm: "rsa-sha1" }],
    [{ name: "example.net", selector: "mine" }],
  ])("refuses %j with 422 problem+json", async (body) => {
    const a = await t.account();
    const res = await t.json("POST", "/domains", { key: a.key, body });
    expect(res.status).toBe(422);
    expect(res.headers.get("content-type")).toContain("application/problem+json");
    expect(res.body.errors?.length).toBeGreaterThan(0);
  });

  it("answers 409 for a name the account already has, in any spelling", async () => {
    const a = await t.account();
    const d = await created(a.key);
    const res = await t.json("POST", "/domains", { key: a.key, body: { name: `${d.name.toUpperCase()}.` } });
    expect(res.status).toBe(409);
    expect(res.headers.get("content-type")).toContain("application/problem+json");
  });

  it("answers 409 for a name another account has, without telling which account", async () => {
    const a = await t.account();
    const b = await t.account();
    const d = await created(a.key);
    const res = await t.json("POST", "/domains", { key: b.key, body: { name: d.name } });
    expect(res.status).toBe(409);
    expect(JSON.stringify(res.body)).not.toContain(a.id);
    expect(JSON.stringify(res.body)).not.toContain(d.id);
    const own = await t.json("POST", "/domains", { key: a.key, body: { name: d.name } });
    expect(res.body.detail).toBe(own.body.detail); // the same answer as for the account's own domain
  });

  it("lets only one of two accounts racing for a name have it", async () => {
    const [a, b] = [await t.account(), await t.account()];
    const name = fresh();
    const results = await Promise.all([a, b].map((x) => t.json("POST", "/domains", { key: x.key, body: { name } })));
    expect(results.map((r) => r.status).sort()).toEqual([201, 409]);
  });

  it("needs a full key", async () => {
    const a = await t.account();
    const send = await t.json("POST", "/api-keys", { key: a.key, body: { name: "s", scopes: ["send"] } });
    expect((await t.json("POST", "/domains", { key: send.body.key, body: { name: fresh() } })).status).toBe(403);
    expect((await t.json("GET", "/domains", { key: send.body.key })).status).toBe(403);
    expect((await t.json("POST", "/domains", { body: { name: fresh() } })).status).toBe(401);
  });
});

describe("the private key", () => {
  it("is never returned, and is stored sealed, not as PEM", async () => {
    const a = await t.account();
    const d = await created(a.key);
    const stored = (await row(d.id))!;
    expect(stored.privateKeySealed).toMatch(/^v1\./);
    expect(stored.privateKeySealed).not.toContain("PRIVATE KEY");
    const pem = open(stored.privateKeySealed, secret.key("dkim-key-encryption"), `domain:${d.id}`).toString();
    expect(pem).toContain("-----BEGIN PRIVATE KEY-----");
    // The sealed key is the pair of the published one.
    const spki = createPublicKey(pem).export({ type: "spki", format: "der" }).toString("base64");
    expect(record(d, "dkim").value).toBe(`v=DKIM1; k=rsa; p=${spki}`);

    const bodies = [d, (await t.json("GET", `/domains/${d.id}`, { key: a.key })).body, (await t.json("GET", "/domains", { key: a.key })).body];
    for (const body of bodies) {
      const text = JSON.stringify(body);
      expect(text).not.toContain("PRIVATE KEY");
      expect(text).not.toContain(stored.privateKeySealed);
      expect(text).not.toContain(pem.split("\n")[1]!);
      expect(text).not.toMatch(/private|sealed/i);
    }
  });
});

describe("GET /domains and tenant isolation", () => {
  it("lists the account's domains newest first with a cursor", async () => {
    const a = await t.account();
    const first = await created(a.key);
    const second = await created(a.key, { algorithm: "ed25519-sha256" });
    const page1 = await t.json("GET", "/domains?limit=1", { key: a.key });
    expect(page1.status).toBe(200);
    expect(page1.body.data.map((d: any) => d.id)).toEqual([second.id]);
    const page2 = await t.json("GET", `/domains?limit=1&cursor=${page1.body.next_cursor}`, { key: a.key });
    expect(page2.body.data.map((d: any) => d.id)).toEqual([first.id]);
    expect(page2.body.next_cursor).toBeNull();
    expect((await t.json("GET", `/domains/${first.id}`, { key: a.key })).body).toEqual(first);
  });

  it("answers 404 for another account's domain on every route, and never lists it", async () => {
    const a = await t.account();
    const b = await t.account();
    const d = await created(a.key);
    for (const [method, path] of [["GET", `/domains/${d.id}`], ["POST", `/domains/${d.id}/verify`], ["DELETE", `/domains/${d.id}`]] as const) {
      const res = await t.json(method, path, { key: b.key });
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.headers.get("content-type")).toContain("application/problem+json");
    }
    expect((await t.json("GET", "/domains", { key: b.key })).body.data).toEqual([]);
    expect(await row(d.id)).toBeDefined();
    expect((await t.json("GET", "/domains/not-an-id", { key: a.key })).status).toBe(404);
  });
});

describe("POST /domains/{id}/verify", () => {
  it("marks every record and the domain verified when all are published", async () => {
    const a = await t.account();
    const d = await created(a.key);
    publish(d);
    const res = await t.json("POST", `/domains/${d.id}/verify`, { key: a.key });
    expect(res.status).toBe(200);
    expect(res.body.status).toBe("verified");
    expect(res.body.verified_at).toEqual(expect.any(String));
    for (const r of res.body.records as RecordBody[]) {
      expect(r.status, r.purpose).toBe("verified");
      expect(Date.parse(r.checked_at!)).toBeGreaterThan(Date.now() - 60_000);
    }
    expect((await t.json("GET", `/domains/${d.id}`, { key: a.key })).body).toEqual(res.body);
    expect(dns.queries.map((q) => q.name)).toEqual(expect.arrayContaining(res.body.records.map((r: RecordBody) => r.name)));
  });

  it("verifies Ed25519 keys and SPF records that authorise us among other mechanisms", async () => {
    const a = await t.account();
    const d = await created(a.key, { algorithm: "ed25519-sha256" });
    publish(d, ["dkim"]);
    zone[d.name] = { TXT: ["google-site-verification=xyz", `v=spf1 include:_spf.google.com include:${RETURN_PATH} -all`] };
    const res = await t.json("POST", `/domains/${d.id}/verify`, { key: a.key });
    expect(res.body.status).toBe("verified");
    expect(record(res.body, "dmarc").status).toBe("pending"); // informational: not needed for verified
  });

  it("marks DKIM invalid when another key is published, and keeps the domain pending", async () => {
    const a = await t.account();
    const d = await created(a.key);
    publish(d, ["spf"]);
    const other = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ type: "spki", format: "der" }).toString("base64");
    zone[record(d, "dkim").name] = { TXT: [chunks(`v=DKIM1; k=rsa; p=${other}`)] };
    const res = await t.json("POST", `/domains/${d.id}/verify`, { key: a.key });
    expect(res.status).toBe(200);
    expect(res.body.status).toBe("pending");
    expect(record(res.body, "dkim")).toMatchObject({ status: "invalid", detail: expect.stringMatching(/different key/) });
    expect(record(res.body, "spf").status).toBe("verified");
    expect(await isVerified(t.store, a.id, d.name)).toBe(false);
  });

  it("leaves a missing record pending and the domain unverified", async () => {
    const a = await t.account();
    const d = await created(a.key);
    publish(d, ["dkim", "dmarc"]);
    const res = await t.json("POST", `/domains/${d.id}/verify`, { key: a.key });
    expect(res.body.status).toBe("pending");
    expect(res.body.verified_at).toBeNull();
    expect(record(res.body, "dkim").status).toBe("verified");
    expect(record(res.body, "spf")).toMatchObject({ status: "pending", checked_at: expect.any(String), detail: expect.stringMatching(/no TXT record/) });
    expect(record(res.body, "return_path").status).toBe("pending");
  });

  it("answers 503 when the resolver fails, and changes nothing — not even a verified record", async () => {
    const a = await t.account();
    const d = await created(a.key);
    publish(d);
    const verified = await t.json("POST", `/domains/${d.id}/verify`, { key: a.key });
    expect(verified.body.status).toBe("verified");
    const before = await row(d.id);

    zone[record(d, "dkim").name] = { SERVFAIL: true };
    const res = await t.json("POST", `/domains/${d.id}/verify`, { key: a.key });
    expect(res.status).toBe(503);
    expect(res.headers.get("content-type")).toContain("application/problem+json");
    expect(res.body.detail).toMatch(/DNS look-ups failed temporarily.*nothing was changed/);
    expect(res.body.detail).toContain("dkim");
    expect(await row(d.id)).toEqual(before);
    expect((await t.json("GET", `/domains/${d.id}`, { key: a.key })).body).toEqual(verified.body);
  });

  it("answers 503 for a domain never verified too, leaving its row as it was", async () => {
    const a = await t.account();
    const d = await created(a.key);
    publish(d);
    zone[d.name] = { SERVFAIL: true };
    const before = await row(d.id);
    const res = await t.json("POST", `/domains/${d.id}/verify`, { key: a.key });
    expect(res.status).toBe(503);
    expect(await row(d.id)).toEqual(before);
  });

  it("takes a definite answer both ways: a verified domain whose DKIM record is removed is pending again", async () => {
    const a = await t.account();
    const d = await created(a.key);
    publish(d);
    expect((await t.json("POST", `/domains/${d.id}/verify`, { key: a.key })).body.status).toBe("verified");
    delete zone[record(d, "dkim").name];
    const res = await t.json("POST", `/domains/${d.id}/verify`, { key: a.key });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: "pending", verified_at: null });
    expect(record(res.body, "dkim").status).toBe("pending");
  });
});

describe("DELETE /domains/{id}", () => {
  it("deletes the domain and its key; the name is free again", async () => {
    const a = await t.account();
    const b = await t.account();
    const d = await created(a.key);
    expect(await signingKeyFor(t.store, a.id, d.name, secret)).not.toBeNull();
    const res = await t.json("DELETE", `/domains/${d.id}`, { key: a.key });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ id: d.id, name: d.name, deleted: true });
    expect(await row(d.id)).toBeUndefined();
    expect((await t.json("GET", `/domains/${d.id}`, { key: a.key })).status).toBe(404);
    expect((await t.json("DELETE", `/domains/${d.id}`, { key: a.key })).status).toBe(404);
    expect(await signingKeyFor(t.store, a.id, d.name, secret)).toBeNull();
    expect((await t.json("POST", "/domains", { key: b.key, body: { name: d.name } })).status).toBe(201);
  });
});

describe("signingKeyFor / isVerified (the send path)", () => {
  it("gives the account's key for its From domain, in any spelling, and nothing to other accounts", async () => {
    const a = await t.account();
    const b = await t.account();
    const d = await created(a.key);
    const key = await signingKeyFor(t.store, a.id, d.name.toUpperCase(), secret);
    expect(key).toMatchObject({ domainId: d.id, name: d.name, status: "pending", selector: d.dkim.selector, algorithm: "rsa-sha256" });
    expect(key!.privateKeyPem).toContain("BEGIN PRIVATE KEY");
    // The key signs what the published record verifies.
    const p = /p=(\S+)$/.exec(record(d, "dkim").value)![1]!;
    const pub = createPublicKey({ key: Buffer.from(p, "base64"), format: "der", type: "spki" });
    const signature = sign("sha256", Buffer.from("hello"), key!.privateKey);
    expect(verify("sha256", Buffer.from("hello"), pub, signature)).toBe(true);
    // Cached: the same parsed key object the second time.
    expect((await signingKeyFor(t.store, a.id, d.name, secret))!.privateKey).toBe(key!.privateKey);

    expect(await signingKeyFor(t.store, b.id, d.name, secret)).toBeNull();
    expect(await signingKeyFor(t.store, a.id, `sub.${d.name}`, secret)).toBeNull();
    expect(await signingKeyFor(t.store, a.id, "not a domain", secret)).toBeNull();
  });

  it("isVerified turns true once the domain verifies, for its own account only", async () => {
    const a = await t.account();
    const b = await t.account();
    const d = await created(a.key);
    expect(await isVerified(t.store, a.id, d.name)).toBe(false);
    publish(d);
    await t.json("POST", `/domains/${d.id}/verify`, { key: a.key });
    expect(await isVerified(t.store, a.id, d.name)).toBe(true);
    expect(await isVerified(t.store, b.id, d.name)).toBe(false);
    expect((await signingKeyFor(t.store, a.id, d.name, secret))!.status).toBe("verified");
  });
});
