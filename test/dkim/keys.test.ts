/**
 * Key generation and the published DNS record: RSA 2048 with the SubjectPublicKeyInfo in p=
 * (RFC 6376 §3.6.1), Ed25519 with the raw 32-byte key (RFC 8463 §4.2); PEMs parse once.
 */
import { createPrivateKey, createPublicKey, sign, verify } from "node:crypto";
import { describe, expect, it } from "vitest";
import { dkimTxtRecord, generateDkimKey, privateKeyObject } from "../../src/dkim/keys.js";

describe("generateDkimKey", () => {
  it("makes a 2048-bit RSA key and its v=DKIM1; k=rsa record", async () => {
    const key = await generateDkimKey("rsa");
    expect(key.algorithm).toBe("rsa-sha256");
    expect(key.privateKey).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(key.dnsRecord).toBe(`v=DKIM1; k=rsa; p=${key.publicKey}`);
    const pub = createPublicKey({ key: Buffer.from(key.publicKey, "base64"), format: "der", type: "spki" });
    expect(pub.asymmetricKeyDetails?.modulusLength).toBe(2048);
    const signature = sign("sha256", Buffer.from("x"), key.privateKey);
    expect(verify("sha256", Buffer.from("x"), pub, signature)).toBe(true);
  });

  it("makes an Ed25519 key whose record carries the raw 32-byte public key", async () => {
    const key = await generateDkimKey("ed25519");
    expect(key.algorithm).toBe("ed25519-sha256");
    expect(key.dnsRecord).toMatch(/^v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}=$/);
    const raw = Buffer.from(key.publicKey, "base64");
    expect(raw).toHaveLength(32);
    const spki = Buffer.concat([Buffer.from("302a300506032b6570032100", "hex"), raw]);
    const pub = createPublicKey({ key: spki, format: "der", type: "spki" });
    expect(verify(null, Buffer.from("x"), pub, sign(null, Buffer.from("x"), key.privateKey))).toBe(true);
  });

  it("takes the algorithm name as well as the key type", async () => {
    expect((await generateDkimKey("ed25519-sha256")).dnsRecord).toMatch(/^v=DKIM1; k=ed25519; /);
  });

  it("derives the same record again from the stored private key or the public key", async () => {
    for (const type of ["rsa", "ed25519"] as const) {
      const key = await generateDkimKey(type);
      expect(dkimTxtRecord(key.privateKey)).toBe(key.dnsRecord);
      expect(dkimTxtRecord(createPrivateKey(key.privateKey))).toBe(key.dnsRecord);
      expect(dkimTxtRecord(createPublicKey(key.privateKey))).toBe(key.dnsRecord);
    }
  });
});

describe("privateKeyObject", () => {
  it("parses a PEM once and hands back the same KeyObject after that", async () => {
    const key = await generateDkimKey("ed25519");
    const first = privateKeyObject(key.privateKey);
    expect(privateKeyObject(key.privateKey)).toBe(first);
    expect(privateKeyObject(first)).toBe(first);
  });
});
