import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { newWebhookSecret, secretKey, signatureHeaders } from "../../src/webhooks/sign.js";

describe("webhook signatures", () => {
  it("makes whsec_ secrets of 32 random bytes", () => {
    const a = newWebhookSecret();
    expect(a).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(secretKey(a)).toHaveLength(32);
    expect(newWebhookSecret()).not.toBe(a);
  });

  it("signs so that the standardwebhooks library verifies the body", () => {
    const secret = newWebhookSecret();
    const body = JSON.stringify({ type: "email.delivered", created_at: "2026-11-23T10:00:00.000Z", data: { email: "bob@example.org", text: "ünïcode" } });
    const headers = signatureHeaders(secretKey(secret), "evt_01jd2abc", Date.now() / 1000, body);
    expect(headers["webhook-signature"]).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
    expect(new Webhook(secret).verify(body, { ...headers })).toEqual(JSON.parse(body));
  });

  it("gives a signature that a tampered body, id or timestamp fails", () => {
    const secret = newWebhookSecret();
    const body = '{"type":"email.bounced"}';
    const ts = Math.floor(Date.now() / 1000);
    const headers = signatureHeaders(secretKey(secret), "evt_1", ts, body);
    const wh = new Webhook(secret);
    expect(() => wh.verify('{"type":"email.delivered"}', { ...headers })).toThrow(/signature/i);
    expect(() => wh.verify(body, { ...headers, "webhook-id": "evt_2" })).toThrow(/signature/i);
    expect(() => wh.verify(body, { ...headers, "webhook-timestamp": String(ts + 1) })).toThrow(/signature/i);
    expect(() => new Webhook(newWebhookSecret()).verify(body, { ...headers })).toThrow(/signature/i);
  });

  it("matches the Standard Webhooks reference signature for a fixed input", () => {
    const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const wh = new Webhook(secret);
    const body = '{"test": 2432232314}';
    const expected = wh.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", new Date(1614265330 * 1000), body);
    expect(signatureHeaders(secretKey(secret), "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)["webhook-signature"]).toBe(expected);
  });
});
