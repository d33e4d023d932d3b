import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { newId } from "../../src/lib/ids.js";
import { parseVerpAddress, verpAddress, verpToken } from "../../src/inbound/verp.js";

const key = randomBytes(32);
const DOMAIN = "bounces.postline.test";

describe("VERP addresses", () => {
  it("round-trips a recipient id for both kinds", () => {
    const id = newId("recipient");
    expect(parseVerpAddress(key, verpAddress(key, id, DOMAIN), DOMAIN)).toEqual({ ok: true, kind: "bounce", recipientId: id });
    expect(parseVerpAddress(key, verpAddress(key, id, DOMAIN, "unsubscribe"), DOMAIN)).toEqual({ ok: true, kind: "unsubscribe", recipientId: id });
  });

  it("signs the tag: a bounce address turned into an unsubscribe one (or back) does not verify", () => {
    const id = newId("recipient");
    const bounce = verpAddress(key, id, DOMAIN);
    const unsubscribe = verpAddress(key, id, DOMAIN, "unsubscribe");
    // A co-recipient sees the transaction's return path (its first recipient's) and could try this.
    expect(parseVerpAddress(key, bounce.replace(/^b\+/, "u+"), DOMAIN)).toEqual({ ok: false, reason: "the token does not verify" });
    expect(parseVerpAddress(key, unsubscribe.replace(/^u\+/, "b+"), DOMAIN)).toEqual({ ok: false, reason: "the token does not verify" });
    expect(bounce.slice(2)).not.toBe(unsubscribe.slice(2));
  });

  it("keeps the local part within RFC 5321 §4.5.3.1.1's 64 octets", () => {
    const address = verpAddress(key, newId("recipient"), DOMAIN);
    const local = address.slice(0, address.indexOf("@"));
    expect(local).toHaveLength(45);
    expect(local.length).toBeLessThanOrEqual(64);
    expect(local).toMatch(/^b\+[0-9a-z]{26}-[0-9a-z]{16}$/);
  });

  it("verifies case-insensitively (MTAs may change the local part's case)", () => {
    const id = newId("recipient");
    const address = verpAddress(key, id, DOMAIN);
    expect(parseVerpAddress(key, address.toUpperCase(), DOMAIN)).toEqual({ ok: true, kind: "bounce", recipientId: id });
    expect(parseVerpAddress(key, address, DOMAIN.toUpperCase())).toMatchObject({ ok: true });
  });

  it("refuses a tampered token, another key, another recipient's mac, another domain and other shapes", () => {
    const id = newId("recipient");
    const address = verpAddress(key, id, DOMAIN);
    const at = address.indexOf("@");
    const flip = (s: string, i: number) => `${s.slice(0, i)}${s[i] === "a" ? "b" : "a"}${s.slice(i + 1)}`;
    expect(parseVerpAddress(key, flip(address, at - 1), DOMAIN)).toEqual({ ok: false, reason: "the token does not verify" });
    expect(parseVerpAddress(key, flip(address, 3), DOMAIN)).toEqual({ ok: false, reason: "the token does not verify" });
    expect(parseVerpAddress(randomBytes(32), address, DOMAIN)).toMatchObject({ ok: false, reason: "the token does not verify" });
    const [body2, mac2] = verpToken(key, newId("recipient")).split("-") as [string, string];
    expect(parseVerpAddress(key, `b+${id.slice(5)}-${mac2}@${DOMAIN}`, DOMAIN)).toMatchObject({ ok: false });
    expect(body2).toHaveLength(26);
    expect(parseVerpAddress(key, address.replace(DOMAIN, "evil.example"), DOMAIN)).toEqual({ ok: false, reason: "not the return-path domain" });
    expect(parseVerpAddress(key, `x${address.slice(1)}`, DOMAIN)).toMatchObject({ ok: false, reason: "not a Postline return-path address" });
    expect(parseVerpAddress(key, `postmaster@${DOMAIN}`, DOMAIN)).toMatchObject({ ok: false });
    expect(parseVerpAddress(key, "no-at-sign", DOMAIN)).toEqual({ ok: false, reason: "not an address" });
    expect(parseVerpAddress(key, `${address.slice(0, at)}x${address.slice(at)}`, DOMAIN)).toMatchObject({ ok: false });
  });

  it("refuses to build a token for something that is no recipient id", () => {
    expect(() => verpToken(key, "msg_123")).toThrow(/not a recipient id/);
  });
});
