/**
 * One-click unsubscribe end to end: POST /messages with `unsubscribe: true` stores a message
 * whose List-Unsubscribe (read back with mailparser) carries a link and a mailto, covered by
 * the DKIM signature (mailauth verifies it); POSTing that link as a mail provider would puts the
 * address on the account's suppression list once, and the next message to it is suppressed.
 * GET only shows a page. A bad, cut or forged token changes nothing.
 */
import { dkimVerify } from "mailauth/lib/dkim/verify.js";
import { simpleParser } from "mailparser";
import { and, count, eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { events, messages, suppressions } from "../../src/db/schema.js";
import { loggedPath } from "../../src/http/middleware.js";
import { signUnsubscribeToken } from "../../src/suppressions/unsubscribe-token.js";
import { createTestApp, type TestApp } from "../helpers/app.js";

const PUBLIC_URL = "https://mail.postline.test";
const RETURN_PATH = "bounces.postline.test";
let t: TestApp;
let acct: { id: string; key: string };
const txt = new Map<string, string>();

beforeAll(async () => {
  t = await createTestApp({ PUBLIC_URL, RETURN_PATH_DOMAIN: RETURN_PATH });
  acct = await t.account("unsubscribe");
  // A DKIM key for example.com: with REQUIRE_VERIFIED_DOMAIN=false the account still signs with it.
  const dom = await t.json("POST", "/domains", { key: acct.key, body: { name: "example.com", algorithm: "ed25519-sha256" } });
  for (const r of dom.body.records as { name: string; value: string }[]) txt.set(r.name, r.value);
});
afterAll(() => t.close());

const body = (to: string, extra: Record<string, unknown> = {}) => ({ from: "News <news@example.com>", to, subject: "Weekly", text: "Hello", unsubscribe: true, ...extra });

async function rawOf(id: string): Promise<Buffer> {
  const [m] = await t.store.db.select({ raw: messages.raw }).from(messages).where(eq(messages.id, id));
  return m!.raw;
}

/** Sends with `unsubscribe: true` and returns the message and its List-Unsubscribe as mailparser reads it. */
async function sendWithLink(to: string) {
  const res = await t.json("POST", "/messages", { key: acct.key, body: body(to) });
  expect(res.status).toBe(202);
  const parsed = await simpleParser(await rawOf(res.body.id));
  const list = parsed.headers.get("list") as { unsubscribe: { url: string; mail: string }; "unsubscribe-post": { name: string } };
  return { sent: res.body, url: list.unsubscribe.url, mail: list.unsubscribe.mail, post: list["unsubscribe-post"].name };
}

const pathOf = (url: string) => url.slice(PUBLIC_URL.length);
const FORM = { "content-type": "application/x-www-form-urlencoded" };
/** POSTs as a mail provider does (RFC 8058 §3.2); `raw: null` sends no body at all. */
const oneClick = (path: string, headers: Record<string, string> = FORM, raw: string | null = "List-Unsubscribe=One-Click") =>
  t.request("POST", path, { raw: raw ?? undefined, headers });

async function stateCounts() {
  const [s] = await t.store.db.select({ n: count() }).from(suppressions);
  const [e] = await t.store.db.select({ n: count() }).from(events).where(eq(events.type, "email.unsubscribed"));
  return { suppressions: s!.n, unsubscribed: e!.n };
}

describe("a message sent with unsubscribe: true", () => {
  it("carries List-Unsubscribe (link and mailto) and List-Unsubscribe-Post, signed by DKIM", async () => {
    const { url, mail, post } = await sendWithLink("reader@example.org");
    expect(url).toMatch(/^https:\/\/mail\.postline\.test\/unsubscribe\/[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(mail).toMatch(/^u\+[0-9a-z]{26}-[0-9a-z]{16}@bounces\.postline\.test$/);
    expect(post).toBe("List-Unsubscribe=One-Click");
  });

  it("is DKIM-signed over both fields, so mailauth passes it and fails an altered link", async () => {
    const { sent } = await sendWithLink("signed@example.org");
    const raw = await rawOf(sent.id);
    const resolver = async (name: string, type: string) => {
      const v = type === "TXT" ? txt.get(name.toLowerCase()) : undefined;
      if (!v) throw Object.assign(new Error(`no ${type} for ${name}`), { code: "ENOTFOUND" });
      return [[v]];
    };
    const signature = raw.toString("latin1", 0, raw.indexOf("\r\nFrom:")).replace(/\s+/g, "");
    expect(signature).toMatch(/h=[^;]*:list-unsubscribe:list-unsubscribe:list-unsubscribe-post:list-unsubscribe-post;/);
    const good = await dkimVerify(raw, { resolver, curTime: new Date() });
    expect(good.results.map((r: any) => r.status.result)).toEqual(["pass"]);
    const altered = Buffer.from(raw.toString("latin1").replace("mail.postline.test/unsubscribe/", "evil.example/unsubscribe/"), "latin1");
    expect((await dkimVerify(altered, { resolver, curTime: new Date() })).results[0]?.status.result).not.toBe("pass");
  });

  it("is refused with more than one recipient, explaining to send one message per recipient", async () => {
    for (const extra of [{ to: ["a@example.org", "b@example.org"] }, { cc: "c@example.org" }, { bcc: ["d@example.org"] }]) {
      const res = await t.json("POST", "/messages", { key: acct.key, body: body("a@example.org", extra) });
      expect(res.status).toBe(422);
      expect(res.body.errors).toContainEqual({ path: "unsubscribe", message: expect.stringMatching(/one message per recipient.*batch/) });
    }
  });

  it("does not let the caller write List-Unsubscribe or List-Unsubscribe-Post", async () => {
    for (const name of ["List-Unsubscribe", "list-unsubscribe-post"]) {
      const res = await t.json("POST", "/messages", { key: acct.key, body: { ...body("a@example.org"), unsubscribe: false, headers: { [name]: "<https://evil.example/>" } } });
      expect(res.status).toBe(422);
      expect(res.body.errors[0].path).toBe(`headers/${name}`);
    }
  });
});

describe("POST /unsubscribe/{token}", () => {
  it("suppresses the address once, fires email.unsubscribed, and the next message to it is suppressed", async () => {
    const { sent, url } = await sendWithLink("Leaver@Example.org");
    const res = await oneClick(pathOf(url));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ unsubscribed: true, email: "Leaver@example.org" });
    const list = await t.json("GET", "/suppressions?email=leaver@example.org", { key: acct.key });
    expect(list.body.data).toEqual([
      expect.objectContaining({ email: "Leaver@example.org", reason: "unsubscribe", message: sent.id, recipient: sent.recipients[0].id, detail: "one-click" }),
    ]);
    const ev = await t.store.db.select().from(events).where(and(eq(events.messageId, sent.id), eq(events.type, "email.unsubscribed")));
    expect(ev).toHaveLength(1);
    expect(ev[0]!.data).toMatchObject({ email: "Leaver@example.org", recipient: sent.recipients[0].id, unsubscribe: { source: "one-click" } });

    // Idempotent: the same answer, no second event.
    const again = await oneClick(pathOf(url));
    expect(again.status).toBe(200);
    expect(await t.store.db.select().from(events).where(and(eq(events.messageId, sent.id), eq(events.type, "email.unsubscribed")))).toHaveLength(1);

    const next = await t.json("POST", "/messages", { key: acct.key, body: { ...body("leaver@example.org"), unsubscribe: false } });
    expect(next.body).toMatchObject({ status: "suppressed", recipients: [{ email: "leaver@example.org", status: "suppressed" }] });
  });

  it("accepts an empty body and multipart/form-data, and answers a browser with an HTML page", async () => {
    const a = await sendWithLink("empty@example.org");
    expect((await oneClick(pathOf(a.url), {}, null)).status).toBe(200);
    const b = await sendWithLink("multipart@example.org");
    const form = new FormData();
    form.set("List-Unsubscribe", "One-Click");
    const multipart = new Request("http://x/", { method: "POST", body: form });
    const res = await t.request("POST", pathOf(b.url), {
      raw: new Uint8Array(await multipart.arrayBuffer()),
      headers: { "content-type": multipart.headers.get("content-type")!, accept: "text/html,*/*" },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    expect(res.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
    expect(await res.text()).toContain("<strong>multipart@example.org</strong> is unsubscribed");
  });

  it("refuses a JSON or text body with 415 and changes nothing", async () => {
    const { url } = await sendWithLink("typed@example.org");
    const before = await stateCounts();
    expect((await oneClick(pathOf(url), { "content-type": "application/json" }, "{}")).status).toBe(415);
    expect((await oneClick(pathOf(url), { "content-type": "text/plain" }, "List-Unsubscribe=One-Click")).status).toBe(415);
    expect(await stateCounts()).toEqual(before);
  });

  it("answers 400 problem+json for a cut, altered or forged token, and changes nothing", async () => {
    const { sent, url } = await sendWithLink("target@example.org");
    const token = url.slice(url.lastIndexOf("/") + 1);
    const [header, payload, sig] = token.split(".") as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString());
    const otherPayload = Buffer.from(JSON.stringify({ ...claims, eml: "victim@example.org" })).toString("base64url");
    const forged = await signUnsubscribeToken(Buffer.alloc(32, 7), { account: acct.id, email: "victim@example.org", message: sent.id, recipient: sent.recipients[0].id });
    const before = await stateCounts();
    for (const bad of [
      token.slice(0, -5), // cut short
      `${header}.${payload}.${sig.slice(0, -2)}${sig.endsWith("A") ? "B" : "A"}A`, // altered signature
      `${header}.${otherPayload}.${sig}`, // altered claims
      forged, // signed with another key
      "not-a-token",
      `${Buffer.from('{"alg":"none"}').toString("base64url")}.${payload}.`, // unsigned
    ]) {
      const res = await oneClick(`/unsubscribe/${encodeURIComponent(bad)}`);
      expect(res.status).toBe(400);
      expect(res.headers.get("content-type")).toBe("application/problem+json");
    }
    expect(await stateCounts()).toEqual(before);
    expect((await t.json("GET", "/suppressions?email=victim@example.org", { key: acct.key })).body.data).toEqual([]);
  });

  it("refuses a form body of more than 16 KB with 413 (an unauthenticated route takes short forms only)", async () => {
    const { url } = await sendWithLink("big@example.org");
    const before = await stateCounts();
    const res = await oneClick(pathOf(url), FORM, `List-Unsubscribe=One-Click&pad=${"x".repeat(20_000)}`);
    expect(res.status).toBe(413);
    expect(await stateCounts()).toEqual(before);
  });

  it("keeps the token out of the request log", () => {
    expect(loggedPath("/unsubscribe/eyJhbGciOiJIUzI1NiJ9.e30.sig")).toBe("/unsubscribe/{token}");
    expect(loggedPath("/messages/msg_1")).toBe("/messages/msg_1");
  });

  it("adds the address to the token's account only", async () => {
    const other = await t.account("bystander");
    const { url } = await sendWithLink("shared@example.org");
    expect((await oneClick(pathOf(url))).status).toBe(200);
    expect((await t.json("GET", "/suppressions", { key: other.key })).body.data).toEqual([]);
    const sent = await t.json("POST", "/messages", { key: other.key, body: { ...body("shared@example.org"), unsubscribe: false } });
    expect(sent.body.status).toBe("queued");
  });
});

describe("GET /unsubscribe/{token}", () => {
  it("shows a page whose button POSTs, without unsubscribing anyone", async () => {
    const { url } = await sendWithLink("o'brien&co@example.org");
    const before = await stateCounts();
    const res = await t.request("GET", pathOf(url));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    expect(res.headers.get("referrer-policy")).toBe("no-referrer");
    const html = await res.text();
    expect(html).toContain('<form method="post">');
    expect(html).toContain('name="List-Unsubscribe" value="One-Click"');
    expect(html).toContain("o&#39;brien&#38;co@example.org"); // escaped
    expect(html).not.toContain("o'brien&co");
    expect(await stateCounts()).toEqual(before);
  });

  it("answers a plain 400 page for a bad token", async () => {
    const res = await t.request("GET", "/unsubscribe/eyJhbGciOiJIUzI1NiJ9.e30.bad");
    expect(res.status).toBe(400);
    expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    expect(await res.text()).toContain("Nothing was changed");
  });
});
