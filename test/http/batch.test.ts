/**
 * POST /messages/batch: up to 500 POST /messages bodies, each validated and stored on its own,
 * answered in order; a bad message fails alone. Idempotency-Key is refused (not supported).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { count, eq, inArray } from "drizzle-orm";
import { messages, recipients } from "../../src/db/schema.js";
import { createTestApp, type TestApp } from "../helpers/app.js";

let t: TestApp;
let acct: { id: string; key: string };
let sendKey: string;

const msg = (to: string | string[], extra: Record<string, unknown> = {}) => ({ from: "Alice <alice@example.com>", to, subject: "Hi", text: "Hello", ...extra });

beforeAll(async () => {
  t = await createTestApp({ PUBLIC_URL: "https://mail.postline.test" });
  acct = await t.account("batch");
  sendKey = (await t.json("POST", "/api-keys", { key: acct.key, body: { name: "sender", scopes: ["send"] } })).body.key;
  await t.json("POST", "/suppressions", { key: acct.key, body: { email: "blocked@example.org" } });
});
afterAll(() => t.close());

async function storedMessages() {
  const [m] = await t.store.db.select({ n: count() }).from(messages).where(eq(messages.accountId, acct.id));
  return m!.n;
}

describe("POST /messages/batch", () => {
  it("answers one result per message in order; a bad message fails alone", async () => {
    const far = new Date(Date.now() + 90 * 86_400_000).toISOString();
    const res = await t.json("POST", "/messages/batch", {
      key: sendKey,
      body: [
        msg("one@example.org", { tags: { n: "1" } }),
        { to: "two@example.org", subject: "no from", text: "x" },
        msg(["blocked@example.org", "three@example.org"]),
        msg("four@example.org", { scheduled_at: far }),
        msg("blocked@example.org"),
        "not even an object",
      ],
    });
    expect(res.status).toBe(200);
    const d = res.body.data;
    expect(d).toHaveLength(6);
    expect(d[0]).toMatchObject({ id: expect.stringMatching(/^msg_/), status: "queued", recipients: [{ email: "one@example.org", status: "queued" }] });
    expect(d[1].error).toMatchObject({ status: 422, type: "urn:postline:problem:validation-failed", errors: [expect.objectContaining({ path: "from" })] });
    expect(d[2].recipients.map((r: any) => r.status)).toEqual(["suppressed", "queued"]);
    expect(d[3].error).toMatchObject({ status: 422, errors: [{ path: "scheduled_at", message: expect.any(String) }] });
    expect(d[4]).toMatchObject({ status: "suppressed" });
    expect(d[5].error.status).toBe(422);

    const ids = [d[0].id, d[2].id, d[4].id];
    const stored = await t.store.db.select({ id: messages.id, tags: messages.tags }).from(messages).where(inArray(messages.id, ids));
    expect(stored.map((m) => m.id).sort()).toEqual([...ids].sort());
    const got = await t.json("GET", `/messages/${d[0].id}`, { key: acct.key });
    expect(got.body).toMatchObject({ message_id: d[0].message_id, tags: { n: "1" } });
  });

  it("stores 500 messages in one call", async () => {
    const before = await storedMessages();
    const res = await t.json("POST", "/messages/batch", { key: sendKey, body: Array.from({ length: 500 }, (_, i) => msg(`bulk${i}@example.org`)) });
    expect(res.status).toBe(200);
    expect(res.body.data.every((r: any) => r.status === "queued")).toBe(true);
    expect(new Set(res.body.data.map((r: any) => r.id)).size).toBe(500);
    expect(await storedMessages()).toBe(before + 500);
    const rows = await t.store.db.select({ email: recipients.email }).from(recipients).where(inArray(recipients.messageId, [res.body.data[0].id, res.body.data[499].id]));
    expect(rows.map((r) => r.email).sort()).toEqual(["bulk0@example.org", "bulk499@example.org"]);
  });

  it("gives each message with unsubscribe: true its own link, and refuses one with two recipients alone", async () => {
    const res = await t.json("POST", "/messages/batch", {
      key: sendKey,
      body: [msg("u1@example.org", { unsubscribe: true }), msg(["u2@example.org", "u3@example.org"], { unsubscribe: true }), msg("u4@example.org", { unsubscribe: true })],
    });
    const d = res.body.data;
    expect(d[1].error.errors).toContainEqual(expect.objectContaining({ path: "unsubscribe" }));
    const raws = await t.store.db.select({ id: messages.id, raw: messages.raw }).from(messages).where(inArray(messages.id, [d[0].id, d[2].id]));
    const links = raws.map((r) => /List-Unsubscribe: <([^>]+)>/.exec(r.raw.toString())![1]);
    expect(links[0]).not.toBe(links[1]);
    for (const l of links) expect(l).toMatch(/^https:\/\/mail\.postline\.test\/unsubscribe\//);
  });

  it("refuses the batch as a whole when it is not an array of 1 to 500, or not JSON", async () => {
    const before = await storedMessages();
    const cases: [unknown, number][] = [[[], 422], [msg("x@example.org"), 422], [Array.from({ length: 501 }, () => msg("x@example.org")), 422]];
    for (const [body, status] of cases) expect((await t.json("POST", "/messages/batch", { key: sendKey, body })).status).toBe(status);
    expect((await t.request("POST", "/messages/batch", { key: sendKey, raw: "[{", headers: { "content-type": "application/json" } })).status).toBe(400);
    expect((await t.request("POST", "/messages/batch", { key: sendKey, raw: "[]", headers: { "content-type": "text/plain" } })).status).toBe(415);
    expect(await storedMessages()).toBe(before);
  });

  it("refuses Idempotency-Key (not supported for batches) and stores nothing", async () => {
    const before = await storedMessages();
    const res = await t.json("POST", "/messages/batch", { key: sendKey, body: [msg("x@example.org")], headers: { "idempotency-key": "b-1" } });
    expect(res.status).toBe(400);
    expect(res.body.detail).toMatch(/Idempotency-Key is not supported/);
    expect(await storedMessages()).toBe(before);
  });

  it("needs a key with the send scope, and stores for the key's account only", async () => {
    expect((await t.json("POST", "/messages/batch", { body: [msg("x@example.org")] })).status).toBe(401);
    expect((await t.json("POST", "/messages/batch", { key: t.adminKey, body: [msg("x@example.org")] })).status).toBe(403);
    const other = await t.account("other");
    const res = await t.json("POST", "/messages/batch", { key: other.key, body: [msg("blocked@example.org")] });
    expect(res.body.data[0].status).toBe("queued"); // A's suppression list does not apply to B
    expect((await t.json("GET", `/messages/${res.body.data[0].id}`, { key: acct.key })).status).toBe(404);
  });
});
