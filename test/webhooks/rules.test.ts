import { describe, expect, it } from "vitest";
import { tryOutcome } from "../../src/webhooks/outcome.js";
import { nextWebhookRetry } from "../../src/webhooks/retry.js";
import { checkWebhookUrl } from "../../src/webhooks/url.js";

describe("webhook URL rules", () => {
  const allow = ["127.0.0.0/8"];
  it.each([
    ["https://hooks.example.com/postline?x=1", [], { host: "hooks.example.com", port: 443, path: "/postline?x=1", secure: true }],
    ["https://hooks.example.com:8443/", [], { port: 8443, path: "/" }],
    ["http://127.0.0.1:9000/hook", allow, { host: "127.0.0.1", port: 9000, secure: false }],
    ["http://[::1]:9000/hook", ["::1/128"], { host: "::1", port: 9000 }],
    ["http://hooks.internal/x", allow, { host: "hooks.internal", port: 80 }],
    ["https://127.0.0.1/x", allow, { host: "127.0.0.1" }],
    ["https://203.0.114.7/x#frag", [], { path: "/x" }],
  ] as const)("accepts %s (allow %j)", (url, allowList, expected) => {
    const r = checkWebhookUrl(url, allowList);
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.target).toMatchObject(expected);
  });

  it.each([
    ["hooks.example.com/x", [], /absolute http/],
    ["ftp://hooks.example.com/x", [], /absolute http/],
    ["https://user:pw@hooks.example.com/x", [], /credentials/],
    [`https://hooks.example.com/${"a".repeat(2048)}`, [], /2048/],
    ["http://hooks.example.com/x", [], /https/],
    ["http://203.0.114.7/x", allow, /https/],
    ["http://127.0.0.1/x", [], /loopback/],
    ["https://10.1.2.3/x", [], /private/],
    ["https://[::ffff:169.254.169.254]/latest", [], /link-local/],
  ] as const)("refuses %s (allow %j)", (url, allowList, reason) => {
    const r = checkWebhookUrl(url, allowList);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(reason);
  });
});

describe("webhook retry schedule", () => {
  const policy = { baseMs: 30_000, lifetimeMs: 24 * 3600_000 };
  const t0 = new Date("2026-11-23T10:00:00Z");
  const delay = (attempts: number, random: number) => {
    const r = nextWebhookRetry(policy, attempts, t0, t0, () => random);
    return r.kind === "retry" ? r.at.getTime() - t0.getTime() : r.kind;
  };

  it.each([
    [1, 0, 30_000],
    [2, 0, 60_000],
    [3, 0, 120_000],
    [7, 0, 1_920_000],
    [8, 0, 3_600_000], // 30 s × 2^7 = 64 min: capped
    [50, 0, 3_600_000],
    [2000, 0, 3_600_000],
    [1, 1, 24_000],
    [50, 1, 2_880_000],
  ])("after %i tries (jitter %d) waits %i ms", (attempts, random, ms) => {
    expect(delay(attempts, random)).toBe(ms);
  });

  it("gives up once the next try would fall after the lifetime since the event", () => {
    const eventAt = new Date(t0.getTime() - policy.lifetimeMs + 10_000);
    expect(nextWebhookRetry(policy, 1, eventAt, t0, () => 0)).toEqual({ kind: "expire" });
    expect(nextWebhookRetry(policy, 1, eventAt, t0, () => 1)).toEqual({ kind: "expire" });
    expect(nextWebhookRetry({ ...policy, lifetimeMs: policy.lifetimeMs + 30_000 }, 1, eventAt, t0, () => 0).kind).toBe("retry");
  });
});

describe("what a try's result means", () => {
  const policy = { baseMs: 30_000, lifetimeMs: 24 * 3600_000 };
  const now = new Date("2026-11-23T10:00:00Z");
  const d = { seq: 7, attempts: 2, eventAt: new Date(now.getTime() - 60_000) };
  const old = { ...d, eventAt: new Date(now.getTime() - policy.lifetimeMs) };
  it.each([
    [d, { kind: "answered", status: 204, body: "", durationMs: 3 }, { status: "succeeded", statusCode: 204, error: null, nextAttemptAt: null }],
    [d, { kind: "answered", status: 500, body: "oops", durationMs: 3 }, { status: "pending", statusCode: 500, response: "oops", error: null, nextAttemptAt: new Date(now.getTime() + 120_000) }],
    [d, { kind: "answered", status: 301, body: "", durationMs: 3 }, { status: "pending", statusCode: 301, error: "HTTP 301: redirects are not followed" }],
    [d, { kind: "error", error: "timeout: no complete answer within 10000 ms", durationMs: 10_000 }, { status: "pending", statusCode: null, response: null, error: expect.stringMatching(/timeout/) }],
    [old, { kind: "answered", status: 503, body: "", durationMs: 3 }, { status: "failed", nextAttemptAt: null, error: "HTTP 503; no 2xx within the retry lifetime" }],
    [old, { kind: "error", error: "connect ECONNREFUSED 127.0.0.1:9", durationMs: 1 }, { status: "failed", error: "connect ECONNREFUSED 127.0.0.1:9; no 2xx within the retry lifetime" }],
  ] as const)("%# → %j", (delivery, result, expected) => {
    expect(tryOutcome(delivery, result, now, policy, now, () => 0)).toMatchObject({ seq: 7, startedAt: now, durationMs: result.durationMs, ...expected });
  });
});
