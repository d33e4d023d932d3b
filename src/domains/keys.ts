/**
 * A sending domain's DKIM key: sealing at rest, and the decrypted key for the send path.
 * Generation and the DNS record are src/dkim/keys.ts's.
 */
import { createPrivateKey, randomBytes, type KeyObject } from "node:crypto";
import type { DkimAlgorithm } from "../dkim/keys.js";
import { open, seal, type ServiceSecret } from "../lib/secret.js";

export const DKIM_ALGORITHMS = ["rsa-sha256", "ed25519-sha256"] as const satisfies readonly DkimAlgorithm[];
export type { DkimAlgorithm };

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
