/**
 * GET/POST/DELETE /suppressions: the account's list, newest first with cursors, filters, adding
 * (201, or 200 with the entry already there), removing by URL-encoded address (any case), and
 * what the list does to POST /messages. `full` scope; another account's entries are invisible.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestApp, type TestApp } from "../helpers/app.js";

let t: TestApp;
let a: { id: string; key: string };
let b: { id: string; key: string };
let sendKey: string;

beforeAll(async () => {
  t = await createTestApp();
  a = await t.account("A");
  b = await t.account("B");
  sendKey = (await t.json("POST", "/api-keys", { key: a.key, body: { name: "sender", scopes: ["send"] } })).body.key;
});
afterAll(() => t.close());

const add = (key: string, body: unknown) => t.json("POST", "/suppressions", { key, body });
const message = (key: string, to: string | string[]) =>
  t.json("POST", "/messages", { key, body: { from: "Alice <alice@example.com>", to, subject: "Hi", text: "Hello" } });

describe("POST /suppressions", () => {
  it("adds an address (201, reason manual by default) and answers 200 with the existing entry when it is already there", async () => {
    const first = await add(a.key, { email: "Bob@Example.org", detail: "asked by phone" });
    expect(first.status).toBe(201);
    expect(first.body).toEqual({ email: "Bob@example.org", reason: "manual", detail: "asked by phone", message: null, recipient: null, created_at: expect.any(String) });
    const again = await add(a.key, { email: "bob@EXAMPLE.org", reason: "complaint" });
    expect(again.status).toBe(200);
    expect(again.body).toEqual(first.body); // the first reason and time stay
  });

  it("refuses what is not an address or not the contract", async () => {
    for (const body of [{ email: "not an address" }, { email: "a@localhost" }, { email: "x@example.org", reason: "because" }, { email: "x@example.org", extra: 1 }, { email: "x@example.org", detail: "a\r\nb" }, {}]) {
      const res = await add(a.key, body);
      expect(res.status, JSON.stringify(body)).toBe(422);
    }
    const typed = await t.request("POST", "/suppressions", { key: a.key, raw: '{"email":"x@example.org"}', headers: { "content-type": "text/plain" } });
    expect(typed.status).toBe(415);
  });
});

describe("GET /suppressions", () => {
  it("lists newest first with cursor pagination, and filters by reason and by address (any case)", async () => {
    const list = await t.account("lister");
    for (const [i, reason] of (["manual", "hard_bounce", "manual", "unsubscribe", "manual"] as const).entries()) expect((await add(list.key, { email: `u${i}@example.org`, reason })).status).toBe(201);
    const all = await t.json("GET", "/suppressions?limit=100", { key: list.key });
    expect(all.body.data.map((s: any) => s.email)).toEqual(["u4@example.org", "u3@example.org", "u2@example.org", "u1@example.org", "u0@example.org"]);
    expect(all.body.next_cursor).toBeNull();

    const pages: string[] = [];
    let cursor: string | null = null;
    do {
      const page: any = await t.json("GET", `/suppressions?limit=2${cursor ? `&cursor=${cursor}` : ""}`, { key: list.key });
      expect(page.status).toBe(200);
      expect(page.body.data.length).toBeLessThanOrEqual(2);
      pages.push(...page.body.data.map((s: any) => s.email));
      cursor = page.body.next_cursor;
    } while (cursor);
    expect(pages).toEqual(all.body.data.map((s: any) => s.email));

    const manual = await t.json("GET", "/suppressions?reason=manual", { key: list.key });
    expect(manual.body.data.map((s: any) => s.email)).toEqual(["u4@example.org", "u2@example.org", "u0@example.org"]);
    const one = await t.json("GET", `/suppressions?email=${encodeURIComponent("U3@EXAMPLE.ORG")}`, { key: list.key });
    expect(one.body.data).toEqual([expect.objectContaining({ email: "u3@example.org", reason: "unsubscribe" })]);
  });

  it("answers 400 for a cursor it did not make and for an unknown reason", async () => {
    expect((await t.json("GET", "/suppressions?cursor=bm9wZQ", { key: a.key })).status).toBe(400);
    expect((await t.json("GET", "/suppressions?reason=bored", { key: a.key })).status).toBe(400);
  });
});

describe("DELETE /suppressions/{email}", () => {
  it("removes a URL-encoded address in any case, then answers 404", async () => {
    await add(a.key, { email: "Carol+News@example.org" });
    const res = await t.json("DELETE", `/suppressions/${encodeURIComponent("carol+news@EXAMPLE.org")}`, { key: a.key });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ email: "Carol+News@example.org", reason: "manual", deleted: true });
    expect((await t.json("DELETE", "/suppressions/carol%2Bnews%40example.org", { key: a.key })).status).toBe(404);
    expect((await t.json("GET", "/suppressions?email=carol%2Bnews@example.org", { key: a.key })).body.data).toEqual([]);
  });

  it("takes a + in the path literally (not as a space)", async () => {
    await add(a.key, { email: "dan+x@example.org" });
    expect((await t.json("DELETE", "/suppressions/dan+x@example.org", { key: a.key })).status).toBe(200);
  });
});

describe("the suppression list and POST /messages", () => {
  it("stores a listed recipient as suppressed, still queues the others, and sends again once removed", async () => {
    await add(a.key, { email: "erin@example.org" });
    const mixed = await message(sendKey, ["erin@example.org", "frank@example.org"]);
    expect(mixed.status).toBe(202);
    expect(mixed.body.status).toBe("queued");
    expect(mixed.body.recipients.map((r: any) => [r.email, r.status])).toEqual([["erin@example.org", "suppressed"], ["frank@example.org", "queued"]]);
    const got = await t.json("GET", `/messages/${mixed.body.id}`, { key: a.key });
    const byEmail = [...got.body.recipients].sort((x: any, y: any) => x.email.localeCompare(y.email));
    expect(byEmail.map((r: any) => [r.email, r.status, r.next_attempt_at === null])).toEqual([["erin@example.org", "suppressed", true], ["frank@example.org", "queued", false]]);
    const timeline = await t.json("GET", `/messages/${mixed.body.id}/events`, { key: a.key });
    expect(timeline.body.data.find((e: any) => e.type === "email.suppressed")).toMatchObject({
      recipient: mixed.body.recipients[0].id,
      data: { email: "erin@example.org", message: mixed.body.id, message_id: mixed.body.message_id, suppression: { reason: "manual" } },
    });

    const only = await message(sendKey, "ERIN@example.org");
    expect(only.body).toMatchObject({ status: "suppressed", recipients: [{ status: "suppressed" }] });
    expect((await t.json("GET", `/messages/${only.body.id}`, { key: a.key })).body.status).toBe("suppressed");

    await t.json("DELETE", "/suppressions/erin%40example.org", { key: a.key });
    expect((await message(sendKey, "erin@example.org")).body.status).toBe("queued");
  });

  it("suppresses on POST /messages/raw too", async () => {
    await add(a.key, { email: "jo@example.org" });
    const raw = Buffer.from("From: alice@example.com\r\nTo: jo@example.org\r\nSubject: raw\r\n\r\nhi\r\n").toString("base64");
    const res = await t.json("POST", "/messages/raw", { key: sendKey, body: { from: "alice@example.com", to: ["jo@example.org", "kai@example.org"], raw } });
    expect(res.status).toBe(202);
    expect(res.body.recipients.map((r: any) => [r.email, r.status])).toEqual([["jo@example.org", "suppressed"], ["kai@example.org", "queued"]]);
  });

  it("cancels a scheduled message's waiting recipients and leaves the suppressed one as it is", async () => {
    await add(a.key, { email: "kim@example.org" });
    const when = new Date(Date.now() + 3_600_000).toISOString();
    const sent = await t.json("POST", "/messages", { key: a.key, body: { from: "alice@example.com", to: ["kim@example.org", "lee@example.org"], subject: "Later", text: "x", scheduled_at: when } });
    const res = await t.json("POST", `/messages/${sent.body.id}/cancel`, { key: a.key });
    expect(res.status).toBe(200);
    expect(res.body.status).toBe("cancelled");
    expect(Object.fromEntries(res.body.recipients.map((r: any) => [r.email, r.status]))).toEqual({ "kim@example.org": "suppressed", "lee@example.org": "cancelled" });
  });

  it("shows the suppressed states again on an Idempotency-Key replay", async () => {
    await add(a.key, { email: "gina@example.org" });
    const headers = { "idempotency-key": "sup-replay" };
    const body = { from: "alice@example.com", to: ["gina@example.org", "hal@example.org"], subject: "Hi", text: "x" };
    const first = await t.json("POST", "/messages", { key: a.key, body, headers });
    const second = await t.json("POST", "/messages", { key: a.key, body, headers });
    expect(second.headers.get("idempotent-replayed")).toBe("true");
    expect(second.body).toEqual(first.body);
    expect(first.body.recipients.map((r: any) => r.status)).toEqual(["suppressed", "queued"]);
  });
});

describe("suppression routes' security", () => {
  it("keeps each account's list to itself", async () => {
    await add(a.key, { email: "ivy@example.org" });
    expect((await t.json("GET", "/suppressions?email=ivy@example.org", { key: b.key })).body.data).toEqual([]);
    expect((await t.json("GET", "/suppressions?limit=100", { key: b.key })).body.data).toEqual([]);
    expect((await t.json("DELETE", "/suppressions/ivy%40example.org", { key: b.key })).status).toBe(404);
    expect((await t.json("GET", "/suppressions?email=ivy@example.org", { key: a.key })).body.data).toHaveLength(1);
    expect((await message(b.key, "ivy@example.org")).body.status).toBe("queued");
    // B may list the same address for itself: a separate entry.
    expect((await add(b.key, { email: "ivy@example.org" })).status).toBe(201);
  });

  it("needs a full key: 401 without one, 403 with a send key", async () => {
    for (const [method, path, body] of [["GET", "/suppressions"], ["POST", "/suppressions", { email: "x@example.org" }], ["DELETE", "/suppressions/x%40example.org"]] as const) {
      expect((await t.json(method, path, { body })).status).toBe(401);
      expect((await t.json(method, path, { key: sendKey, body })).status).toBe(403);
      expect((await t.json(method, path, { key: t.adminKey, body })).status).toBe(403);
    }
  });
});
