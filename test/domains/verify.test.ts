/** verifyDomain with real DNS over loopback and a short timeout: what a hanging resolver does. */
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Store } from "../../src/db/client.js";
import { accounts, domains } from "../../src/db/schema.js";
import { createResolver } from "../../src/dns/resolver.js";
import { createDomain, type DomainView } from "../../src/domains/domains.js";
import { verifyDomain } from "../../src/domains/verify.js";
import { AppError } from "../../src/lib/errors.js";
import { secretFromString } from "../../src/lib/secret.js";
import { startDnsServer, type DnsServer, type Zone } from "../helpers/dns-server.js";
import { testStore } from "../helpers/store.js";

const settings = { heloName: "mta.postline.test" };
const secret = secretFromString("s".repeat(40));

let store: Store;
let dns: DnsServer;
beforeAll(async () => {
  store = await testStore();
  dns = await startDnsServer({});
  await store.db.insert(accounts).values({ id: "acct_verify", name: "verify" });
});
afterAll(async () => {
  await dns?.close();
  await store?.close();
});

const zoneFor = (d: DomainView): Zone =>
  Object.fromEntries(d.records.map((r) => [r.name, { TXT: [r.value.match(/.{1,255}/g)!] }]));

const rowOf = async (id: string) => (await store.db.select().from(domains).where(eq(domains.id, id)))[0];

describe("verifyDomain", () => {
  it("gives up on a resolver that never answers within the timeout, with a clear error and nothing changed", async () => {
    const resolver = createResolver({ servers: [dns.address], timeoutMs: 150, tries: 1, cache: false });
    const d = await createDomain(store.db, secret, settings, { accountId: "acct_verify", name: "hang.example.com", algorithm: "ed25519-sha256" });
    dns.setZone(zoneFor(d));
    const verified = await verifyDomain(store.db, resolver, settings, "acct_verify", d.id);
    expect(verified.status).toBe("verified");
    const before = await rowOf(d.id);

    dns.setZone({ ...zoneFor(d), "hang.example.com": { hang: true } });
    const started = Date.now();
    const err = await verifyDomain(store.db, resolver, settings, "acct_verify", d.id).catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe("dns_unavailable"); // 503
    expect((err as AppError).message).toMatch(/spf \(TXT lookup for hang\.example\.com failed: no answer from .* within 150 ms\)/);
    expect(await rowOf(d.id)).toEqual(before);
  });

  it("records the time it is given as checked_at and verified_at", async () => {
    const resolver = createResolver({ servers: [dns.address], timeoutMs: 500, cache: false });
    const d = await createDomain(store.db, secret, settings, { accountId: "acct_verify", name: "clock.example.com" });
    dns.setZone(zoneFor(d));
    const now = new Date("2026-03-01T12:00:00.000Z");
    const v = await verifyDomain(store.db, resolver, settings, "acct_verify", d.id, now);
    expect(v.verified_at).toBe(now.toISOString());
    expect(v.records.every((r) => r.checked_at === now.toISOString())).toBe(true);
    // Still verified later: verified_at keeps the time it first became verified.
    const later = await verifyDomain(store.db, resolver, settings, "acct_verify", d.id, new Date("2026-03-02T12:00:00.000Z"));
    expect(later.verified_at).toBe(now.toISOString());
  });
});
