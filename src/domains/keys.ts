/**
 * A sending domain's DKIM key: generation, sealing at rest, and the decrypted key for the send
 * path. Generated with node:crypto directly (RSA 2048 per RFC 8301 §3.2; Ed25519 per RFC 8463).
 */
import { createPrivateKey, createPublicKey, generateKeyPair, randomBytes, type KeyObject } from "node:crypto";
import { promisify } from "node:util";
import { open, seal, type ServiceSecret } from "../lib/secret.js";

export const DKIM_ALGORITHMS = ["rsa-sha256", "ed25519-sha256"] as const;
export type DkimAlgorithm = (typeof DKIM_ALGORITHMS)[number];

const generate = promisify(generateKeyPair);

export interface GeneratedKey {
  /** PKCS#8 PEM. Secret: seal it before it goes anywhere. */
  privateKeyPem: string;
  /** The TXT value for `<selector>._domainkey.<name>`. */
  dkimRecord: string;
}

/** Generates a key pair in the thread pool (RSA 2048 takes tens to hundreds of milliseconds). */
export async function generateDkimKey(algorithm: DkimAlgorithm): Promise<GeneratedKey> {
  const { privateKey, publicKey } =
    algorithm === "rsa-sha256" ? await generate("rsa", { modulusLength: 2048, publicExponent: 0x10001 }) : await generate("ed25519", {});
  return { privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(), dkimRecord: dkimRecordFor(publicKey) };
}

/**
 * `v=DKIM1; k=rsa; p=<base64 SubjectPublicKeyInfo DER>` (RFC 6376 §3.6.1), or for Ed25519
 * `k=ed25519; p=<base64 of the raw 32-byte key>` (RFC 8463 §4.2: the last 32 octets of the SPKI).
 */
export function dkimRecordFor(key: KeyObject | string): string {
  // Node 20's createPublicKey refuses a KeyObject that is already public.
  const pub = typeof key !== "string" && key.type === "public" ? key : createPublicKey(key);
  const spki = pub.export({ type: "spki", format: "der" });
  if (pub.asymmetricKeyType === "ed25519") return `v=DKIM1; k=ed25519; p=${spki.subarray(spki.length - 32).toString("base64")}`;
  return `v=DKIM1; k=rsa; p=${spki.toString("base64")}`;
}

/** A selector unique to the domain: `pl` + 8 random base32 characters, e.g. `pl7k2mq9xa`. */
export function newSelector(): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz234567";
  return `pl${[...randomBytes(8)].map((b) => alphabet[b & 31]).join("")}`;
}

/** The sealed-value context binds a private key to its domain row (it cannot be moved to another). */
const sealContext = (domainId: string) => `domain:${domainId}`;

export function sealPrivateKey(secret: ServiceSecret, domainId: string, pem: string): string {
  return seal(pem, secret.key("dkim-key-encryption"), sealContext(domainId));
}

export interface UnsealedKey {
  privateKeyPem: string;
  /** Parsed once: createPrivateKey costs far more than an Ed25519 signature. */
  privateKey: KeyObject;
}

/*
 * Decrypted keys by domain id. An entry is used only while the row still holds the same sealed
 * value, and rows are read on every call, so a domain deleted by another process stops signing
 * at once; deleteDomain also drops the entry here. Bounded: the oldest entry goes first.
 */
const MAX_CACHED_KEYS = 1000;
const cache = new Map<string, { sealed: string; key: UnsealedKey }>();

/** The decrypted key of a domain row, from the cache when the row's sealed value is unchanged. */
export function unsealPrivateKey(secret: ServiceSecret, row: { id: string; privateKeySealed: string }): UnsealedKey {
  const hit = cache.get(row.id);
  if (hit && hit.sealed === row.privateKeySealed) return hit.key;
  const privateKeyPem = open(row.privateKeySealed, secret.key("dkim-key-encryption"), sealContext(row.id)).toString("utf8");
  const key = { privateKeyPem, privateKey: createPrivateKey(privateKeyPem) };
  cache.delete(row.id);
  if (cache.size >= MAX_CACHED_KEYS) cache.delete(cache.keys().next().value!);
  cache.set(row.id, { sealed: row.privateKeySealed, key });
  return key;
}

/** Drops a domain's decrypted key from this process's cache. */
export function forgetPrivateKey(domainId: string): void {
  cache.delete(domainId);
}
