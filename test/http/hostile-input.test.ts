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
      const body = path === "/messages/batch" ? { messages: [b, pick([b, pick(weird)])] } : path === "/messages/raw" ? { from: b.from, to: b.to, raw: pick(["RnJvbTogYUBleGFtcGxlLmNvbQ0KDQpoaQ0K", Buffer.from(String(pick(weird))).toString("base64"), pick(weird)]) } : b;
      const res = await t.request("POST", path, { key, body, headers: random() < 0.1 ? { "idempotency-key": String(pick(weird)).replace(/[^\x20-\x7e]/g, "").slice(0, 300) || "k" } : {} });
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      if (res.status >= 500) fails.push(`${path} ${res.status} ${JSON.stringify(body).slice(0, 300)} → ${(await res.text()).slice(0, 200)}`);
    }
    expect(statuses.get(202) ?? statuses.get(201) ?? 0).toBeGreaterThan(0); // some got through: the inputs reach the handlers
    expect(fails.slice(0, 5)).toEqual([]);
  }, 300_000);

  it("never answers 500 to hostile bodies on the other routes", async () => {
    const fails: string[] = []; const statuses = new Map<number, number>();
    const routes: [string, string, () => unknown][] = [
      ["POST", "/webhooks", () => ({ url: pick([...weird, "https://hooks.example/x", "http://127.0.0.1:1/x", "ftp://x", "https://[::1]/x", "https://user:pw@hooks.example/"]), events: pick([["email.delivered"], [pick(weird)], pick(weird)]) })],
      ["POST", "/suppressions", () => ({ email: pick([...weird, "x@example.org"]), reason: pick([...weird, "manual"]), detail: pick(weird) })],
      ["POST", "/domains", () => ({ name: pick([...weird, "example.net", "xn--bcher-kva.example", "a.b"]), algorithm: pick([...weird, "ed25519-sha256"]) })],
      ["POST", "/api-keys", () => ({ name: pick(weird), scopes: pick([["send"], [pick(weird)], pick(weird)]) })],
      ["GET", `/messages?limit=${encodeURIComponent(String(pick(weird)))}&cursor=${encodeURIComponent(String(pick(weird)))}&status=${encodeURIComponent(String(pick(weird)))}&tag=${encodeURIComponent(String(pick(weird)))}&recipient=${encodeURIComponent(String(pick(weird)))}`, () => undefined],
      ["GET", `/suppressions?cursor=${encodeURIComponent(String(pick(weird)))}&email=${encodeURIComponent(String(pick(weird)))}`, () => undefined],
      ["DELETE", `/suppressions/${encodeURIComponent(String(pick(weird)))}`, () => undefined],
      ["GET", `/messages/${encodeURIComponent(String(pick(weird)))}`, () => undefined],
      ["POST", `/unsubscribe/${encodeURIComponent(String(pick(weird)))}`, () => undefined],
    ];
    for (let i = 0; i < 3000; i++) {
      const [method, path, body] = pick(routes);
      const b = body();
      const res = await t.request(method, path, { key, ...(b === undefined ? {} : { body: b }) });
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      if (res.status >= 500) fails.push(`${method} ${path} ${res.status} ${JSON.stringify(b)?.slice(0, 300)} → ${(await res.text()).slice(0, 200)}`);
    }
    expect(statuses.get(202) ?? statuses.get(201) ?? 0).toBeGreaterThan(0); // some got through: the inputs reach the handlers
    expect(fails.slice(0, 5)).toEqual([]);
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

  it("refuses control characters in account and API key names with 422 (a NUL was a 500)", async () => {
    for (const name of ["\u0000", "a\u0000b", "line\r\nbreak", "\u001b[31m"]) {
      expect((await t.json("POST", "/api-keys", { key, body: { name, scopes: ["send"] } })).status).toBe(422);
      expect((await t.json("POST", "/accounts", { key: t.adminKey, body: { name } })).status).toBe(422);
    }
    expect((await t.json("POST", "/api-keys", { key, body: { name: "  CI key é  ", scopes: ["send"] } })).body).toMatchObject({ name: "CI key é" });
  });
});
