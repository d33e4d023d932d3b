import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { count, eq } from "drizzle-orm";
import { messages, recipients } from "../../src/db/schema.js";
import { createTestApp, type TestApp } from "../helpers/app.js";

let t: TestApp;
let acct: { id: string; key: string };
let sendKey: string;

const base = { from: "Alice <alice@example.com>", to: ["bob@example.org"], subject: "Hi", text: "Hello Bob" };

beforeAll(async () => {
  t = await createTestApp();
  acct = await t.account("A");
  const k = await t.json("POST", "/api-keys", { key: acct.key, body: { name: "sender", scopes: ["send"] } });
  sendKey = k.body.key;
});
afterAll(() => t.close());

async function storedCounts() {
  const [m] = await t.store.db.select({ n: count() }).from(messages).where(eq(messages.accountId, acct.id));
  const [r] = await t.store.db.select({ n: count() }).from(recipients).where(eq(recipients.accountId, acct.id));
  return { messages: m!.n, recipients: r!.n };
}

describe("POST /messages", () => {
  it("accepts a message with a send key and returns ids for the message and each recipient", async () => {
    const res = await t.json("POST", "/messages", {
      key: sendKey,
      body: { ...base, to: "Bob <bob@example.org>", cc: ["carol@example.net"], bcc: "dave@example.com", tags: { campaign: "welcome" } },
    });
    expect(res.status).toBe(202);
    expect(res.body.id).toMatch(/^msg_[0-9a-z]{26}$/);
    expect(res.body.message_id).toMatch(/^<[^@>]+@example\.com>$/);
    expect(res.body.status).toBe("queued");
    expect(res.body.recipients.map((r: any) => r.email)).toEqual(["bob@example.org", "carol@example.net", "dave@example.com"]);
    for (const r of res.body.recipients) {
      expect(r.id).toMatch(/^rcpt_/);
      expect(r.status).toBe("queued");
    }
  });

  it("shows the message with every recipient queued, and stores RFC 5322 bytes without Bcc", async () => {
    const sent = await t.json("POST", "/messages", { key: acct.key, body: { ...base, bcc: "hidden@example.net" } });
    const got = await t.json("GET", `/messages/${sent.body.id}`, { key: acct.key });
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({ id: sent.body.id, message_id: sent.body.message_id, status: "queued", subject: "Hi", bcc: ["hidden@example.net"] });
    expect(got.body.recipients).toHaveLength(2);
    for (const r of got.body.recipients) {
      expect(r).toMatchObject({ status: "queued", attempts: 0, last_response: null, mx: null, tls: null, delivered_at: null });
      expect(typeof r.next_attempt_at).toBe("string");
    }
    const [row] = await t.store.db.select({ raw: messages.raw }).from(messages).where(eq(messages.id, sent.body.id));
    const raw = row!.raw.toString("utf8");
    expect(raw).toContain(`Message-ID: ${sent.body.message_id}\r\n`);
    expect(raw).toMatch(/^From: Alice <alice@example\.com>\r\n/);
    expect(raw).not.toMatch(/^Bcc:/im);
    expect(raw).not.toContain("hidden@example.net");
    expect(raw.replace(/\r\n/g, "")).not.toMatch(/[\r\n]/); // CRLF only
  });

  it("collapses duplicate recipients across to, cc and bcc, case-insensitively", async () => {
    const res = await t.json("POST", "/messages", {
      key: acct.key,
      body: { ...base, to: ["bob@example.org", "BOB@EXAMPLE.ORG"], cc: "bob@Example.org", bcc: ["x@example.org", "x@example.org"] },
    });
    expect(res.status).toBe(202);
    expect(res.body.recipients.map((r: any) => r.email)).toEqual(["bob@example.org", "x@example.org"]);
  });

  it("accepts IDN domains and UTF-8 local parts and routes by the punycode domain", async () => {
    const res = await t.json("POST", "/messages", {
      key: acct.key,
      body: { ...base, from: "Jörg <jörg@bücher.example>", to: ["用户@例子.广告", "info@bücher.example"], subject: "日本語の件名 🎉" },
    });
    expect(res.status).toBe(202);
    const rows = await t.store.db.select().from(recipients).where(eq(recipients.messageId, res.body.id));
    expect(rows.map((r) => r.domain).sort()).toEqual(["xn--bcher-kva.example", "xn--fsqu00a.xn--4rr70v"]);
    const [m] = await t.store.db.select().from(messages).where(eq(messages.id, res.body.id));
    expect(m!.smtputf8).toBe(true);
    // A UTF-8 local part means SMTPUTF8, so headers travel as UTF-8 (RFC 6532).
    expect(m!.raw.toString()).toContain("Subject: 日本語の件名 🎉\r\n");
  });

  it("stores scheduled_at and holds the recipients until then", async () => {
    const when = new Date(Date.now() + 3_600_000).toISOString();
    const res = await t.json("POST", "/messages", { key: acct.key, body: { ...base, scheduled_at: when } });
    expect(res.status).toBe(202);
    const got = await t.json("GET", `/messages/${res.body.id}`, { key: acct.key });
    expect(got.body.scheduled_at).toBe(when);
    expect(got.body.recipients[0].next_attempt_at).toBe(when);
  });

  it("replays the first response for the same Idempotency-Key and body, and stores one message", async () => {
    const before = await storedCounts();
    const headers = { "idempotency-key": "order-1234" };
    const first = await t.json("POST", "/messages", { key: acct.key, body: base, headers });
    const second = await t.json("POST", "/messages", { key: acct.key, body: base, headers });
    expect(first.status).toBe(202);
    expect(second.status).toBe(202);
    expect(second.headers.get("idempotent-replayed")).toBe("true");
    expect(first.headers.get("idempotent-replayed")).toBeNull();
    expect(second.body).toEqual(first.body);
    expect(await storedCounts()).toEqual({ messages: before.messages + 1, recipients: before.recipients + 1 });
  });

  it.each([
    ["/messages", () => base],
    ["/messages/raw", () => ({ from: "alice@example.com", to: ["bob@example.org"], raw: Buffer.from("From: alice@example.com\r\nSubject: x\r\n\r\nhi\r\n").toString("base64") })],
  ])("refuses an Idempotency-Key that is not 1–255 printable ASCII characters on %s with 400, storing nothing", async (path, body) => {
    const before = await storedCounts();
    for (const key of ["has space", "x".repeat(256)]) {
      const res = await t.json("POST", path, { key: acct.key, body: body(), headers: { "idempotency-key": key } });
      expect(res.status).toBe(400);
      expect(res.headers.get("content-type")).toBe("application/problem+json");
      expect(res.body.errors).toEqual([{ path: "idempotency-key", message: "1–255 printable ASCII characters" }]);
    }
    expect(await storedCounts()).toEqual(before);
  });

  it("answers 409 when an Idempotency-Key is reused with a different body", async () => {
    const headers = { "idempotency-key": "order-5678" };
    expect((await t.json("POST", "/messages", { key: acct.key, body: base, headers })).status).toBe(202);
    const before = await storedCounts();
    const res = await t.json("POST", "/messages", { key: acct.key, body: { ...base, subject: "Other" }, headers });
    expect(res.status).toBe(409);
    expect(res.headers.get("content-type")).toBe("application/problem+json");
    expect(await storedCounts()).toEqual(before);
  });

  it("stores one message when the same Idempotency-Key arrives concurrently", async () => {
    const before = await storedCounts();
    const headers = { "idempotency-key": "race-1" };
    const results = await Promise.all(Array.from({ length: 5 }, () => t.json("POST", "/messages", { key: acct.key, body: base, headers })));
    const ids = new Set(results.filter((r) => r.status === 202).map((r) => r.body.id));
    expect(ids.size).toBe(1);
    expect(results.every((r) => r.status === 202 || r.status === 409)).toBe(true);
    expect((await storedCounts()).messages).toBe(before.messages + 1);
  });

  it("keeps Idempotency-Keys separate per account", async () => {
    const other = await t.account("other");
    const headers = { "idempotency-key": "shared-key" };
    const a = await t.json("POST", "/messages", { key: acct.key, body: base, headers });
    const b = await t.json("POST", "/messages", { key: other.key, body: { ...base, subject: "different" }, headers });
    expect(a.status).toBe(202);
    expect(b.status).toBe(202);
    expect(b.body.id).not.toBe(a.body.id);
  });
});

describe("POST /messages with bad input", () => {
  const cases: [string, () => Promise<Response>, number, RegExp?][] = [
    ["malformed JSON", () => t.request("POST", "/messages", { key: acct.key, raw: '{"from": ', headers: { "content-type": "application/json" } }), 400, /JSON/],
    ["a text/plain content type", () => t.request("POST", "/messages", { key: acct.key, raw: JSON.stringify(base), headers: { "content-type": "text/plain" } }), 415],
    ["no content type", () => t.request("POST", "/messages", { key: acct.key, raw: JSON.stringify(base) }), 415],
    ["a missing from", () => t.request("POST", "/messages", { key: acct.key, body: { to: "b@example.org", subject: "x", text: "y" } }), 422, /from/],
    ["no recipients", () => t.request("POST", "/messages", { key: acct.key, body: { ...base, to: [] } }), 422, /recipient/],
    ["neither text nor html", () => t.request("POST", "/messages", { key: acct.key, body: { from: base.from, to: base.to, subject: "x" } }), 422, /text or html/],
    ["an unknown field", () => t.request("POST", "/messages", { key: acct.key, body: { ...base, priority: "high" } }), 422, /priority/],
    ["10 000 recipients", () => t.request("POST", "/messages", { key: acct.key, body: { ...base, to: Array.from({ length: 10_000 }, (_, i) => `u${i}@example.org`) } }), 422, /at most 100/],
    ["101 recipients spread over to, cc and bcc", () => t.request("POST", "/messages", { key: acct.key, body: { ...base, to: Array.from({ length: 50 }, (_, i) => `t${i}@example.org`), cc: Array.from({ length: 50 }, (_, i) => `c${i}@example.org`), bcc: "b@example.org" } }), 422, /at most 100/],
    ["a NUL in a raw message's tag value", () => t.request("POST", "/messages/raw", { key: acct.key, body: { from: "alice@example.com", to: ["bob@example.org"], raw: Buffer.from("From: alice@example.com\r\n\r\nhi\r\n").toString("base64"), tags: { a: "x\u0000y" } } }), 422, /tags\/a/],
    ["a 30 MB body", () => t.request("POST", "/messages", { key: acct.key, raw: JSON.stringify({ ...base, text: "a".repeat(30 * 1024 * 1024) }), headers: { "content-type": "application/json" } }), 413],
    ["CR/LF in the subject", () => t.request("POST", "/messages", { key: acct.key, body: { ...base, subject: "Hi\r\nBcc: victim@example.org" } }), 422, /subject/],
    ["LF in a display name", () => t.request("POST", "/messages", { key: acct.key, body: { ...base, from: "Alice\nBcc: x@example.org <alice@example.com>" } }), 422, /from/],
    ["CR/LF in a custom header value", () => t.request("POST", "/messages", { key: acct.key, body: { ...base, headers: { "X-Campaign": "1\r\nBcc: v@example.org" } } }), 422, /X-Campaign/],
    ["a custom header Postline owns", () => t.request("POST", "/messages", { key: acct.key, body: { ...base, headers: { "Message-ID": "<x@y.z>" } } }), 422, /Message-ID/],
    ["a custom Resent-Bcc header (it would name hidden recipients)", () => t.request("POST", "/messages", { key: acct.key, body: { ...base, headers: { "Resent-Bcc": "hidden@example.net" } } }), 422, /Resent-Bcc/],
    ["a header name with a space", () => t.request("POST", "/messages", { key: acct.key, body: { ...base, headers: { "X Bad": "v" } } }), 422],
    ["51 custom headers", () => t.request("POST", "/messages", { key: acct.key, body: { ...base, headers: Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`X-H${i}`, "v"])) } }), 422, /50/],
    ["21 tags", () => t.request("POST", "/messages", { key: acct.key, body: { ...base, tags: Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`t${i}`, "v"])) } }), 422, /20 tags/],
    ["an invalid address", () => t.request("POST", "/messages", { key: acct.key, body: { ...base, to: ["not-an-address"] } }), 422, /to\/0/],
    ["an IP-literal recipient", () => t.request("POST", "/messages", { key: acct.key, body: { ...base, to: ["x@[127.0.0.1]"] } }), 422],
    ["a localhost recipient", () => t.request("POST", "/messages", { key: acct.key, body: { ...base, to: ["root@localhost"] } }), 422],
    ["a single-label domain", () => t.request("POST", "/messages", { key: acct.key, body: { ...base, to: ["root@intranet"] } }), 422],
    ["a bad scheduled_at", () => t.request("POST", "/messages", { key: acct.key, body: { ...base, scheduled_at: "tomorrow" } }), 422, /scheduled_at/],
    ["a subject over 998 octets", () => t.request("POST", "/messages", { key: acct.key, body: { ...base, subject: "x".repeat(999) } }), 422, /998/],
    ["attachment content that is not base64", () => t.request("POST", "/messages", { key: acct.key, body: { ...base, attachments: [{ filename: "a.txt", content: "!!!" }] } }), 422, /base64/],
  ];

  for (const [what, send, status, detail] of cases) {
    it(`answers ${status} problem+json for ${what} and stores nothing`, async () => {
      const before = await storedCounts();
      const res = await send();
      expect(res.status).toBe(status);
      expect(res.headers.get("content-type")).toBe("application/problem+json");
      const body = await res.json();
      expect(body).toMatchObject({ status, type: expect.stringMatching(/^urn:postline:problem:/), title: expect.any(String), detail: expect.any(String) });
      if (detail) expect(JSON.stringify(body)).toMatch(detail);
      expect(JSON.stringify(body)).not.toMatch(/at .*\.ts:\d+/); // never a stack trace
      expect(await storedCounts()).toEqual(before);
    });
  }

  it("counts recipients once however often they appear in to, cc and bcc (the limit is on the de-duplicated envelope)", async () => {
    const sixty = Array.from({ length: 60 }, (_, i) => `u${i}@example.org`);
    const res = await t.json("POST", "/messages", { key: acct.key, body: { ...base, to: sixty, cc: sixty.map((a) => a.toUpperCase()), bcc: sixty.map((a) => `U <${a}>`) } });
    expect(res.status).toBe(202);
    expect(res.body.recipients).toHaveLength(60);
  });

  it("refuses a composed message over MAX_MESSAGE_BYTES with 413", async () => {
    const small = await createTestApp({ MAX_MESSAGE_BYTES: "64KB" });
    try {
      const a = await small.account();
      const res = await small.json("POST", "/messages", {
        key: a.key,
        body: { ...base, attachments: [{ filename: "big.bin", content: Buffer.alloc(100_000, 7).toString("base64") }] },
      });
      expect(res.status).toBe(413);
      expect(res.body.detail).toMatch(/limit/);
    } finally {
      await small.close();
    }
  });
});

describe("authentication and tenant isolation", () => {
  it("answers 401 without a key, with an unknown key and with a revoked key", async () => {
    expect((await t.json("POST", "/messages", { body: base })).status).toBe(401);
    expect((await t.json("POST", "/messages", { key: "pl_" + "x".repeat(43), body: base })).status).toBe(401);
    const k = await t.json("POST", "/api-keys", { key: acct.key, body: { name: "temp", scopes: ["send"] } });
    expect((await t.json("POST", "/messages", { key: k.body.key, body: base })).status).toBe(202);
    expect((await t.json("DELETE", `/api-keys/${k.body.id}`, { key: acct.key })).status).toBe(200);
    const res = await t.json("POST", "/messages", { key: k.body.key, body: base });
    expect(res.status).toBe(401);
    expect(res.body.detail).toMatch(/revoked/);
  });

  it("answers 403 when a send key is used on a full route", async () => {
    const res = await t.json("GET", "/messages", { key: sendKey });
    expect(res.status).toBe(403);
    expect((await t.json("POST", "/api-keys", { key: sendKey, body: { name: "x", scopes: ["full"] } })).status).toBe(403);
  });

  it("answers 403 when the admin key is used to send", async () => {
    expect((await t.json("POST", "/messages", { key: t.adminKey, body: base })).status).toBe(403);
  });

  it("gives account B 404 for account A's message, and keeps it out of B's list", async () => {
    const b = await t.account("B");
    const sent = await t.json("POST", "/messages", { key: acct.key, body: base });
    const res = await t.json("GET", `/messages/${sent.body.id}`, { key: b.key });
    expect(res.status).toBe(404);
    expect(res.headers.get("content-type")).toBe("application/problem+json");
    const list = await t.json("GET", "/messages?limit=100", { key: b.key });
    expect(list.body.data).toEqual([]);
    const filtered = await t.json("GET", "/messages?recipient=bob@example.org", { key: b.key });
    expect(filtered.body.data).toEqual([]);
  });
});

describe("GET /messages", () => {
  let lister: { id: string; key: string };
  const sent: string[] = [];
  beforeAll(async () => {
    lister = await t.account("lister");
    for (let i = 0; i < 5; i++) {
      const res = await t.json("POST", "/messages", {
        key: lister.key,
        body: { ...base, to: i % 2 ? "odd@example.org" : "even@example.org", tags: { n: String(i), parity: i % 2 ? "odd" : "even" } },
      });
      sent.push(res.body.id);
    }
  });

  it("lists newest first and pages with next_cursor until null, without repeats", async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: { status: number; body: any } = await t.json("GET", `/messages?limit=2${cursor ? `&cursor=${cursor}` : ""}`, { key: lister.key });
      expect(res.status).toBe(200);
      expect(res.body.data.length).toBeLessThanOrEqual(2);
      seen.push(...res.body.data.map((m: any) => m.id));
      cursor = res.body.next_cursor;
      pages++;
    } while (cursor && pages < 10);
    expect(seen).toEqual([...sent].reverse());
    expect(pages).toBe(3);
  });

  it("filters by recipient, tag name:value, tag name and status", async () => {
    const byRcpt = await t.json("GET", "/messages?recipient=ODD@example.org", { key: lister.key });
    expect(byRcpt.body.data.map((m: any) => m.id)).toEqual([sent[3], sent[1]]);
    const byTag = await t.json("GET", "/messages?tag=parity:even", { key: lister.key });
    expect(byTag.body.data.map((m: any) => m.id)).toEqual([sent[4], sent[2], sent[0]]);
    const byName = await t.json("GET", "/messages?tag=n", { key: lister.key });
    expect(byName.body.data).toHaveLength(5);
    expect((await t.json("GET", "/messages?status=queued", { key: lister.key })).body.data).toHaveLength(5);
    expect((await t.json("GET", "/messages?status=delivered", { key: lister.key })).body.data).toHaveLength(0);
  });

  it("answers 400 for a bad cursor, limit or status", async () => {
    for (const q of ["cursor=abc", "limit=0", "limit=1000", "status=lost", "tag=bad%20name"]) {
      const res = await t.json("GET", `/messages?${q}`, { key: lister.key });
      expect(res.status, q).toBe(400);
      expect(res.body.errors.length, q).toBeGreaterThan(0);
    }
  });

  it("answers 404 for an id that is not a message id", async () => {
    expect((await t.json("GET", "/messages/rcpt_123", { key: lister.key })).status).toBe(404);
  });
});

describe("cancel and timeline", () => {
  it("cancels a scheduled message whole, writes email.cancelled per recipient, and refuses twice", async () => {
    const when = new Date(Date.now() + 3_600_000).toISOString();
    const sent = await t.json("POST", "/messages", { key: acct.key, body: { ...base, to: ["a@example.org", "b@example.org"], scheduled_at: when } });
    const res = await t.json("POST", `/messages/${sent.body.id}/cancel`, { key: acct.key });
    expect(res.status).toBe(200);
    expect(res.body.status).toBe("cancelled");
    expect(res.body.recipients.map((r: any) => r.status)).toEqual(["cancelled", "cancelled"]);
    expect((await t.json("POST", `/messages/${sent.body.id}/cancel`, { key: acct.key })).status).toBe(409);
    const tl = await t.json("GET", `/messages/${sent.body.id}/events`, { key: acct.key });
    expect(tl.status).toBe(200);
    expect(tl.body.data.map((e: any) => e.type)).toEqual(["email.accepted", "email.cancelled", "email.cancelled"]);
  });

  it("refuses to cancel a message that is not scheduled, and hides other accounts' messages", async () => {
    const sent = await t.json("POST", "/messages", { key: acct.key, body: base });
    expect((await t.json("POST", `/messages/${sent.body.id}/cancel`, { key: acct.key })).status).toBe(409);
    const b = await t.account("cancel-b");
    expect((await t.json("POST", `/messages/${sent.body.id}/cancel`, { key: b.key })).status).toBe(404);
    expect((await t.json("GET", `/messages/${sent.body.id}/events`, { key: b.key })).status).toBe(404);
  });
});
