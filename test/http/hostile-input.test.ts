/**
 * Hostile input never gets a 5xx: seeded random bodies, fields, media types and query strings
 * against every write route and the list filters (bad input is a 4xx problem+json, SPEC.md
 * "Errors"). Deterministic: the generator is seeded, so a failure repeats. This found the NUL in
 * an API key's name that PostgreSQL refused (a 500) until names were validated.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestApp, type TestApp } from "../helpers/app.js";

/** mulberry32: a small seeded PRNG, so every run sends the same requests. */
function seeded(seed: number) {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = seeded(20261201);

let t: TestApp; let key: string;
beforeAll(async () => { t = await createTestApp(); key = (await t.account("fuzz")).key; });
afterAll(() => t.close());

const weird = ["", " ", "\r\n", "a\r\nb: c", "\u0000", "é", "😀", "x".repeat(2000), "<a@b>", "a@b", "\"q\"@x.y", "a@[1.2.3.4]", "@", "a@b@c", "Name <a@example.org>", "=?utf-8?q?x?= <a@example.org>", "a@localhost", "a@xn--.org", "a@-x.org", "a@x..org", null, 0, -1, 1e309, true, [], {}, [[]], { a: 1 }];
const pick = <T,>(a: T[]) => a[Math.floor(random() * a.length)]!;
const base = () => ({ from: "Alice <alice@example.com>", to: ["bob@example.org"], subject: "Hi", text: "t" } as Record<string, unknown>);
const fields = ["from", "to", "cc", "bcc", "reply_to", "subject", "text", "html", "attachments", "headers", "tags", "scheduled_at", "unsubscribe"];

describe("hostile input", () => {
  it("never answers 500 to hostile POST /messages bodies", async () => {
    const fails: string[] = []; const statuses = new Map<number, number>();
    for (let i = 0; i < 3000; i++) {
      const b = base();
      for (let k = 0; k < 1 + Math.floor(random() * 3); k++) {
        const f = pick(fields);
        const r = random();
        if (f === "attachments") b[f] = r < 0.5 ? [{ filename: pick(weird), content: pick(["aGk=", "!!!", "", pick(weird)]), content_type: pick(weird), content_id: pick(weird) }] : pick(weird);
        else if (f === "headers") b[f] = r < 0.5 ? { [String(pick(weird))]: pick(weird) } : pick(weird);
        else if (f === "tags") b[f] = r < 0.5 ? { [String(pick(weird))]: pick(weird) } : pick(weird);
        else if (f === "to" || f === "cc" || f === "bcc" || f === "reply_to") b[f] = r < 0.5 ? [pick(weird), "ok@example.org"] : pick(weird);
        else b[f] = pick(weird);
      }
      const path = pick(["/messages", "/messages/batch", "/messages/raw"]);
      // The batch route takes a JSON array of message bodies; the raw route its own fields, tags included.
      const raw = () => pick(["RnJvbTogYUBleGFtcGxlLmNvbQ0KDQpoaQ0K", Buffer.from(String(pick(weird))).toString("base64"), pick(weird)]);
      const body = path === "/messages/batch" ? [b, pick([b, pick(weird)])] : path === "/messages/raw" ? { from: b.from, to: b.to, raw: raw(), ...(random() < 0.5 ? { tags: b.tags ?? { [String(pick(weird))]: pick(weird) } } : {}) } : b;
      const res = await t.request("POST", path, { key, body, headers: random() < 0.1 ? { "idempotency-key": String(pick(weird)).replace(/[^\x20-\x7e]/g, "").slice(0, 300) || "k" } : {} });
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      if (res.status >= 500) fails.push(`${path} ${res.status} ${JSON.stringify(body).slice(0, 300)} → ${(await res.text()).slice(0, 200)}`);
    }
    expect(statuses.get(202) ?? statuses.get(201) ?? 0).toBeGreaterThan(0); // some got through: the inputs reach the handlers
    expect(fails.slice(0, 5)).toEqual([]);
  }, 300_000);

  it("never answers 500 to hostile bodies, paths and queries on the other routes", async () => {
    const failing = new Map<number, string>(); const statuses = new Map<number, number>();
    // Paths are drawn anew for each request (a path built once would send the same URL 3 000 times).
    const w = () => encodeURIComponent(String(pick(weird)));
    const anId = () => pick([w(), "msg_01jd2x0c6v8k9m3n4p5q6r7s8t", "dom_01jd2x0c6v8k9m3n4p5q6r7s8t", "key_01jd2x0c6v8k9m3n4p5q6r7s8t", "wh_01jd2x0c6v8k9m3n4p5q6r7s8t", "%00", "x".repeat(65)]);
    // Mostly valid limits, so that the other parameters get past validation to the query.
    const page = () => `limit=${pick(["5", "100", w()])}&cursor=${pick([w(), anId(), "%00", ""])}`;
    const routes: [string, () => string, () => unknown][] = [
      ["POST", () => "/webhooks", () => ({ url: pick([...weird, "https://hooks.example/x", "http://127.0.0.1:1/x", "ftp://x", "https://[::1]/x", "https://user:pw@hooks.example/"]), events: pick([["email.delivered"], [pick(weird)], pick(weird)]) })],
      ["POST", () => "/suppressions", () => ({ email: pick([...weird, "x@example.org"]), reason: pick([...weird, "manual"]), detail: pick(weird) })],
      ["POST", () => "/domains", () => ({ name: pick([...weird, "example.net", "xn--bcher-kva.example", "a.b"]), algorithm: pick([...weird, "ed25519-sha256"]) })],
      ["POST", () => "/api-keys", () => ({ name: pick(weird), scopes: pick([["send"], [pick(weird)], pick(weird)]) })],
      ["GET", () => `/messages?${page()}&${pick(["status", "tag", "recipient"])}=${pick([w(), `a:${w()}`])}`, () => undefined],
      ["GET", () => `/suppressions?${page()}&${pick(["email", "reason"])}=${w()}`, () => undefined],
      ["GET", () => `/${pick(["domains", "api-keys", "webhooks"])}?${page()}`, () => undefined],
      ["GET", () => `/webhooks/${anId()}/deliveries?${page()}`, () => undefined],
      ["DELETE", () => `/suppressions/${w()}`, () => undefined],
      ["DELETE", () => `/${pick(["api-keys", "webhooks", "domains"])}/${anId()}`, () => undefined],
      ["GET", () => `/${pick(["messages", "domains", "webhooks"])}/${anId()}`, () => undefined],
      ["GET", () => `/messages/${anId()}/events`, () => undefined],
      ["POST", () => `/messages/${anId()}/cancel`, () => undefined],
      ["POST", () => `/domains/${anId()}/verify`, () => undefined],
      ["POST", () => `/unsubscribe/${w()}`, () => undefined],
    ];
    for (let i = 0; i < 3000; i++) {
      const r = Math.floor(random() * routes.length);
      const [method, pathOf, body] = routes[r]!;
      const path = pathOf();
      const b = body();
      const res = await t.request(method, path, { key, ...(b === undefined ? {} : { body: b }) });
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      // The first failure of each route, so one failing route does not hide another.
      if (res.status >= 500 && !failing.has(r)) failing.set(r, `${method} ${path} ${res.status} ${JSON.stringify(b)?.slice(0, 300)} → ${(await res.text()).slice(0, 120)}`);
    }
    expect(statuses.get(202) ?? statuses.get(201) ?? 0).toBeGreaterThan(0); // some got through: the inputs reach the handlers
    expect([...failing.values()]).toEqual([]);
  }, 300_000);

  it("never answers 500 to broken bodies, media types and admin calls", async () => {
    const fails: string[] = []; const statuses = new Map<number, number>();
    const raws = ["", "{", "[]", "null", "\"x\"", "{\"from\":", "\u0000", "{\"to\":[{}]}", "{\"a\":" + "[".repeat(5000) + "]".repeat(5000) + "}", "\ufeff{}", "{\"__proto__\":{\"x\":1},\"from\":\"a@example.com\"}"];
    for (let i = 0; i < 1500; i++) {
      const path = pick(["/messages", "/messages/batch", "/messages/raw", "/webhooks", "/suppressions", "/domains", "/api-keys", "/accounts", "/messages/msg_x/cancel", "/domains/dom_x/verify"]);
      const admin = path === "/accounts" && random() < 0.7;
      const ct = pick(["application/json", "application/json; charset=utf-8", "text/plain", "application/x-www-form-urlencoded", "", "application/json; charset=latin1", "multipart/form-data; boundary=x"]);
      const res = await t.request("POST", path, { key: admin ? t.adminKey : key, raw: pick(raws), headers: ct ? { "content-type": ct } : {} });
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      if (res.status >= 500) fails.push(`${path} ${ct} ${res.status} → ${(await res.text()).slice(0, 200)}`);
    }
    for (let i = 0; i < 500; i++) {
      const res = await t.request("POST", "/accounts", { key: t.adminKey, body: { name: pick(weird) } });
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      if (res.status >= 500) fails.push(`/accounts ${res.status} → ${(await res.text()).slice(0, 200)}`);
    }
    expect(statuses.get(202) ?? statuses.get(201) ?? 0).toBeGreaterThan(0); // some got through: the inputs reach the handlers
    expect(fails.slice(0, 5)).toEqual([]);
  }, 300_000);

  it("answers 400 to a NUL, a foreign cursor or a crafted cursor in any list's query, and 404 to a NUL id (each was a 500)", async () => {
    const crafted = Buffer.from(JSON.stringify(["2024-13-45T99:99:99", "x"])).toString("base64url");
    const nulKey = Buffer.from(JSON.stringify(["2024-01-01T00:00:00", "a\u0000b"])).toString("base64url");
    const bad400 = [
      "/messages?recipient=%00", "/messages?tag=k:%00", "/suppressions?email=a%00@x.org", `/suppressions?cursor=${crafted}`, `/suppressions?cursor=${nulKey}`,
      ...["/domains", "/api-keys", "/webhooks"].flatMap((l) => [`${l}?cursor=%00`, `${l}?cursor=zzzz`, `${l}?cursor=msg_01jd2x0c6v8k9m3n4p5q6r7s8t`]),
    ];
    for (const path of bad400) {
      const res = await t.json("GET", path, { key });
      expect([path, res.status, (res.body as { type: string }).type]).toEqual([path, 400, "urn:postline:problem:malformed-request"]);
    }
    for (const l of ["/domains", "/api-keys", "/webhooks"]) expect((await t.json("GET", `${l}?cursor=%00`, { key })).body).toMatchObject({ errors: [{ path: "cursor" }] });
    expect((await t.json("GET", "/accounts?cursor=%00", { key: t.adminKey })).status).toBe(400);
    for (const path of ["/suppressions/a%00b", "/api-keys/%00", "/webhooks/%00", "/domains/%00"]) {
      expect([path, (await t.json("DELETE", path, { key })).status]).toEqual([path, 404]);
    }
    for (const path of ["/messages/%00", "/messages/%00/events"]) expect([path, (await t.json("GET", path, { key })).status]).toEqual([path, 404]);
  });

  it("refuses control characters in account and API key names with 422 (a NUL was a 500)", async () => {
    for (const name of ["\u0000", "a\u0000b", "line\r\nbreak", "\u001b[31m"]) {
      expect((await t.json("POST", "/api-keys", { key, body: { name, scopes: ["send"] } })).status).toBe(422);
      expect((await t.json("POST", "/accounts", { key: t.adminKey, body: { name } })).status).toBe(422);
    }
    expect((await t.json("POST", "/api-keys", { key, body: { name: "  CI key é  ", scopes: ["send"] } })).body).toMatchObject({ name: "CI key é" });
  });
});
