import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eq } from "drizzle-orm";
import { apiKeys } from "../../src/db/schema.js";
import { ensureAdminKey } from "../../src/accounts/accounts.js";
import { forgetKey } from "../../src/keys/auth-cache.js";
import { hashKey } from "../../src/keys/keys.js";
import { createTestApp, type TestApp } from "../helpers/app.js";

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp();
});
afterAll(() => t.close());

describe("POST /accounts", () => {
  it("creates an account with one full key, shown once, stored only as its SHA-256", async () => {
    const res = await t.json("POST", "/accounts", { key: t.adminKey, body: { name: "Acme" } });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ id: expect.stringMatching(/^acct_/), name: "Acme", api_key: { scopes: ["full"] } });
    const key: string = res.body.api_key.key;
    expect(key).toMatch(/^pl_[A-Za-z0-9_-]{43}$/);
    expect(res.body.api_key.prefix).toBe(key.slice(0, 11));
    const rows = await t.store.db.select().from(apiKeys).where(eq(apiKeys.accountId, res.body.id));
    expect(rows).toHaveLength(1);
    expect(rows[0]!.hash).toBe(hashKey(key));
    expect(JSON.stringify(rows)).not.toContain(key);
  });

  it("is only for admin keys", async () => {
    const a = await t.account();
    expect((await t.json("POST", "/accounts", { key: a.key, body: { name: "x" } })).status).toBe(403);
    expect((await t.json("POST", "/accounts", { body: { name: "x" } })).status).toBe(401);
  });

  it("refuses an empty name and unknown fields with 422", async () => {
    expect((await t.json("POST", "/accounts", { key: t.adminKey, body: { name: "  " } })).status).toBe(422);
    expect((await t.json("POST", "/accounts", { key: t.adminKey, body: { name: "x", plan: "pro" } })).status).toBe(422);
  });

  it("rotates the admin key with ADMIN_API_KEY: the previous one (and the one printed at first start) stops working", async () => {
    const generated = await ensureAdminKey(t.store); // none configured: one exists already, nothing new
    expect(generated).toBeNull();
    const next = `pl_${"n".repeat(43)}`;
    await ensureAdminKey(t.store, next); // a restart with ADMIN_API_KEY changed
    for (const row of await t.store.db.select().from(apiKeys)) forgetKey(row.id); // (the 2 s auth cache, as another process would see it)
    expect((await t.json("GET", "/accounts", { key: next })).status).toBe(200);
    expect((await t.json("GET", "/accounts", { key: t.adminKey })).status).toBe(401);
    // Back to the first key: it is the admin key again.
    await ensureAdminKey(t.store, t.adminKey);
    for (const row of await t.store.db.select().from(apiKeys)) forgetKey(row.id);
    expect((await t.json("GET", "/accounts", { key: t.adminKey })).status).toBe(200);
    expect((await t.json("GET", "/accounts", { key: next })).status).toBe(401);
  });

  it("lists accounts for the admin", async () => {
    const res = await t.json("GET", "/accounts?limit=1", { key: t.adminKey });
    expect(res.status).toBe(200);
    expect(res.body.data).toHaveLength(1);
    expect(res.body.next_cursor).toEqual(expect.any(String));
  });
});

describe("API keys", () => {
  it("creates a send key that can send but not read, and lists keys without their secret", async () => {
    const a = await t.account();
    const created = await t.json("POST", "/api-keys", { key: a.key, body: { name: "ci", scopes: ["send"] } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: "ci", scopes: ["send"], key: expect.stringMatching(/^pl_/) });
    const list = await t.json("GET", "/api-keys", { key: a.key });
    expect(list.status).toBe(200);
    expect(list.body.data.map((k: any) => k.name).sort()).toEqual(["ci", "default"]);
    expect(JSON.stringify(list.body)).not.toContain(created.body.key);
    expect(list.body.data.every((k: any) => !("key" in k) && !("hash" in k))).toBe(true);
  });

  it("refuses to mint admin keys from an account key", async () => {
    const a = await t.account();
    const res = await t.json("POST", "/api-keys", { key: a.key, body: { name: "x", scopes: ["admin"] } });
    expect(res.status).toBe(422);
  });

  it("records last_used_at when a key is used", async () => {
    const a = await t.account();
    await t.json("GET", "/messages", { key: a.key });
    const list = await t.json("GET", "/api-keys", { key: a.key });
    expect(list.body.data[0].last_used_at).toEqual(expect.any(String));
  });

  it("revokes a key so it gets 401 at once, and answers 404 for another account's key", async () => {
    const a = await t.account();
    const b = await t.account();
    const k = await t.json("POST", "/api-keys", { key: a.key, body: { name: "temp", scopes: ["full"] } });
    expect((await t.json("DELETE", `/api-keys/${k.body.id}`, { key: b.key })).status).toBe(404);
    expect((await t.json("GET", "/messages", { key: k.body.key })).status).toBe(200);
    const revoked = await t.json("DELETE", `/api-keys/${k.body.id}`, { key: a.key });
    expect(revoked.status).toBe(200);
    expect(revoked.body.revoked_at).toEqual(expect.any(String));
    expect((await t.json("GET", "/messages", { key: k.body.key })).status).toBe(401);
  });

  it("answers 401 with a WWW-Authenticate challenge for a malformed Authorization header", async () => {
    const res = await t.request("GET", "/api-keys", { headers: { authorization: "Basic abc" } });
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toMatch(/^Bearer/);
  });
});
