import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestApp, type TestApp } from "../helpers/app.js";
import { documentOnlyYaml } from "../helpers/openapi.js";
import fs from "node:fs";

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp();
});
afterAll(() => t.close());

describe("health, docs and unknown routes", () => {
  it("answers /healthz and /readyz when the database is migrated", async () => {
    expect((await t.json("GET", "/healthz")).body).toEqual({ status: "ok" });
    const ready = await t.json("GET", "/readyz");
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({ status: "ready" });
  });

  it("serves the same OpenAPI document that is committed as openapi.yaml", async () => {
    const res = await t.request("GET", "/openapi.yaml");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/yaml/);
    const committed = fs.readFileSync(new URL("../../openapi.yaml", import.meta.url), "utf8");
    expect(await res.text()).toBe(committed);
    // Fails when a route changes without `npm run openapi`.
    expect(documentOnlyYaml()).toBe(committed);
    for (const path of ["/messages:", "/messages/{id}:", "/accounts:", "/api-keys:", "/api-keys/{id}:"]) expect(committed).toContain(`  ${path}`);
  });

  it("serves an interactive reference at /docs", async () => {
    const res = await t.request("GET", "/docs");
    expect(res.status).toBe(200);
    expect(await res.text()).toContain("/openapi.yaml");
  });

  it("answers unknown routes with 404 problem+json and echoes a request id", async () => {
    const res = await t.request("GET", "/nope", { headers: { "x-request-id": "abc-123" } });
    expect(res.status).toBe(404);
    expect(res.headers.get("content-type")).toBe("application/problem+json");
    expect(res.headers.get("x-request-id")).toBe("abc-123");
    expect(((await res.json()) as { request_id: string }).request_id).toBe("abc-123");
  });

  it("answers a known path with another method 405 problem+json with Allow (RFC 9110 §15.5.6), and stores nothing", async () => {
    const a = await t.account("methods");
    for (const [method, path, allow] of [
      ["PUT", "/messages", "GET, HEAD, POST"],
      ["PATCH", "/messages/msg_01jd2x0c6v8k9m3n4p5q6r7s8t", "GET, HEAD"],
      ["POST", "/healthz", "GET, HEAD"],
      ["PUT", "/suppressions/bob%40example.org", "DELETE"],
      ["GET", "/messages/msg_01jd2x0c6v8k9m3n4p5q6r7s8t/cancel", "POST"],
    ] as const) {
      const res = await t.request(method, path, { key: a.key, ...(method === "GET" ? {} : { body: {} }) });
      expect([method, path, res.status, res.headers.get("allow"), res.headers.get("content-type")]).toEqual([method, path, 405, allow, "application/problem+json"]);
      expect(await res.json()).toMatchObject({ type: "urn:postline:problem:method-not-allowed", status: 405 });
    }
    expect((await t.json("GET", "/messages", { key: a.key })).body.data).toEqual([]);
  });
});

describe("GET /metrics", () => {
  it("exposes request counters and the queue depth in Prometheus text format", async () => {
    const a = await t.account("metrics");
    await t.json("POST", "/messages", { key: a.key, body: { from: "a@example.com", to: "b@example.org", subject: "s", text: "t" } });
    const res = await t.request("GET", "/metrics");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    expect(text).toMatch(/^postline_http_requests_total\{method="POST",route="\/messages",status="202"\} [1-9]\d*$/m);
    expect(text).toMatch(/^postline_queue_recipients\{status="queued"\} [1-9]\d*$/m);
    expect(text).toContain("# TYPE postline_queue_recipients gauge");
  });
});
