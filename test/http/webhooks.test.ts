import { eq, sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { events, webhooks } from "../../src/db/schema.js";
import { newId } from "../../src/lib/ids.js";
import { createTestApp, type TestApp } from "../helpers/app.js";

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp({ DELIVERY_ALLOW_NETWORKS: "127.0.0.0/8" });
});
afterAll(() => t?.close());

const create = (key: string, body: unknown) => t.json("POST", "/webhooks", { key, body });

describe("POST /webhooks", () => {
  it("creates an endpoint and shows its whsec_ secret once, sealed at rest", async () => {
    const a = await t.account();
    const res = await create(a.key, { url: "https://hooks.example.com/postline", events: ["email.bounced", "email.delivered", "email.bounced"] });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({
      id: expect.stringMatching(/^wh_/),
      url: "https://hooks.example.com/postline",
      events: ["email.bounced", "email.delivered"],
      secret: expect.stringMatching(/^whsec_[A-Za-z0-9+/]{43}=$/),
      created_at: expect.any(String),
    });
    const [row] = await t.store.db.select().from(webhooks).where(eq(webhooks.id, res.body.id));
    expect(row!.secretSealed).toMatch(/^v1\./);
    expect(row!.secretSealed).not.toContain(res.body.secret.slice(6));
  });

  it("allows plain http to an address in DELIVERY_ALLOW_NETWORKS", async () => {
    const a = await t.account();
    expect((await create(a.key, { url: "http://127.0.0.1:8080/hook", events: ["email.failed"] })).status).toBe(201);
  });

  it.each([
    [{ url: "http://203.0.114.7/x", events: ["email.delivered"] }, "url", /https/],
    [{ url: "https://10.0.0.7/x", events: ["email.delivered"] }, "url", /private address/],
    [{ url: "https://u:p@hooks.example.com/x", events: ["email.delivered"] }, "url", /credentials/],
    [{ url: "not a url", events: ["email.delivered"] }, "url", /absolute/],
    [{ url: `https://hooks.example.com/${"a".repeat(2050)}`, events: ["email.delivered"] }, "url", /2048/],
    [{ url: "https://hooks.example.com/x", events: [] }, "events", /./],
    [{ url: "https://hooks.example.com/x", events: ["email.opened"] }, "events/0", /./],
    [{ url: "https://hooks.example.com/x" }, "events", /./],
    [{ url: "https://hooks.example.com/x", events: ["email.delivered"], secret: "whsec_mine" }, "(root)", /./],
  ])("refuses %j with 422 problem+json naming the field", async (body, path, message) => {
    const a = await t.account();
    const res = await create(a.key, body);
    expect(res.status).toBe(422);
    expect(res.headers.get("content-type")).toContain("application/problem+json");
    expect(res.body.errors).toEqual(expect.arrayContaining([{ path, message: expect.stringMatching(message) }]));
  });

  it("needs a full-scope key", async () => {
    const a = await t.account();
    const send = await t.json("POST", "/api-keys", { key: a.key, body: { name: "send only", scopes: ["send"] } });
    expect((await create(send.body.key, { url: "https://hooks.example.com/x", events: ["email.delivered"] })).status).toBe(403);
    expect((await t.json("GET", "/webhooks")).status).toBe(401);
  });
});

describe("GET and DELETE /webhooks", () => {
  it("lists the account's endpoints newest first with a cursor, never with the secret", async () => {
    const a = await t.account();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await create(a.key, { url: `https://hooks.example.com/${i}`, events: ["email.delivered"] })).body.id);
    const first = await t.json("GET", "/webhooks?limit=2", { key: a.key });
    expect(first.status).toBe(200);
    expect(first.body.data.map((w: any) => w.id)).toEqual([ids[2], ids[1]]);
    const second = await t.json("GET", `/webhooks?limit=2&cursor=${first.body.next_cursor}`, { key: a.key });
    expect(second.body).toMatchObject({ data: [{ id: ids[0] }], next_cursor: null });
    const one = await t.json("GET", `/webhooks/${ids[0]}`, { key: a.key });
    expect(one.body).toEqual({ id: ids[0], url: "https://hooks.example.com/0", events: ["email.delivered"], created_at: expect.any(String) });
    for (const body of [first.body, second.body, one.body]) expect(JSON.stringify(body)).not.toMatch(/whsec_|secret/);
  });

  it("answers 404 for another account's endpoint and changes nothing", async () => {
    const a = await t.account();
    const b = await t.account();
    const { id } = (await create(a.key, { url: "https://hooks.example.com/a", events: ["email.delivered"] })).body;
    for (const [method, path] of [["GET", `/webhooks/${id}`], ["DELETE", `/webhooks/${id}`], ["GET", `/webhooks/${id}/deliveries`]] as const) {
      const res = await t.json(method, path, { key: b.key });
      expect(res.status).toBe(404);
      expect(res.headers.get("content-type")).toContain("application/problem+json");
    }
    expect((await t.json("GET", "/webhooks", { key: b.key })).body.data).toEqual([]);
    expect((await t.json("GET", `/webhooks/${id}`, { key: a.key })).status).toBe(200);
    expect((await t.json("GET", "/webhooks/wh_nonsense", { key: a.key })).status).toBe(404);
  });

  it("deletes an endpoint: later events no longer fan out to it", async () => {
    const a = await t.account();
    const { id } = (await create(a.key, { url: "https://hooks.example.com/gone", events: ["email.delivered"] })).body;
    const del = await t.json("DELETE", `/webhooks/${id}`, { key: a.key });
    expect(del).toMatchObject({ status: 200, body: { id, deleted: true } });
    expect((await t.json("GET", `/webhooks/${id}`, { key: a.key })).status).toBe(404);
    expect((await t.json("DELETE", `/webhooks/${id}`, { key: a.key })).status).toBe(404);
    await t.store.db.insert(events).values({ id: newId("event"), accountId: a.id, messageId: newId("message"), type: "email.delivered", data: {} });
    const rows = await t.store.rows<{ n: number }>(sqlCount(id));
    expect(Number(rows[0]!.n)).toBe(0);
  });
});

describe("GET /webhooks/{id}/deliveries", () => {
  it("lists the endpoint's deliveries newest first with their tries and a cursor", async () => {
    const a = await t.account();
    const { id } = (await create(a.key, { url: "https://hooks.example.com/d", events: ["email.delivered", "email.bounced"] })).body;
    const e1 = newId("event");
    const e2 = newId("event");
    await t.store.db.insert(events).values([
      { id: e1, accountId: a.id, messageId: newId("message"), type: "email.delivered", data: {} },
      { id: e2, accountId: a.id, messageId: newId("message"), type: "email.bounced", data: {} },
      { id: newId("event"), accountId: a.id, messageId: newId("message"), type: "email.deferred", data: {} },
    ]);
    // One failed try recorded for the first, as the dispatcher does.
    await t.store.rows(recordTry(e1));

    const page = await t.json("GET", `/webhooks/${id}/deliveries?limit=1`, { key: a.key });
    expect(page.status).toBe(200);
    expect(page.body.data).toHaveLength(1);
    expect(page.body.data[0]).toMatchObject({ event_id: e2, event_type: "email.bounced", status: "pending", attempts: 0, tries: [] });
    const rest = await t.json("GET", `/webhooks/${id}/deliveries?cursor=${page.body.next_cursor}`, { key: a.key });
    expect(rest.body).toMatchObject({
      next_cursor: null,
      data: [
        {
          event_id: e1,
          event_type: "email.delivered",
          status: "pending",
          attempts: 1,
          last_status_code: 500,
          last_duration_ms: 12,
          last_error: null,
          next_attempt_at: expect.any(String),
          tries: [{ started_at: expect.any(String), duration_ms: 12, status_code: 500, response: "oops", error: null }],
        },
      ],
    });
    expect((await t.json("GET", `/webhooks/${id}/deliveries?cursor=abc`, { key: a.key })).status).toBe(400);
  });
});

const sqlCount = (webhookId: string) => sql`select count(*) as n from webhook_deliveries where webhook_id = ${webhookId}`;
const recordTry = (eventId: string) => sql`
  with d as (
    update webhook_deliveries set attempts = 1, last_status_code = 500, last_duration_ms = 12, next_attempt_at = now() + interval '30 s'
    where event_id = ${eventId} returning seq
  )
  insert into webhook_attempts (delivery_seq, started_at, duration_ms, status_code, response) select seq, now(), 12, 500, 'oops' from d`;
