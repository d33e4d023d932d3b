/**
 * DKIM keys: generation (RSA 2048 per RFC 8301 §3.2, Ed25519 per RFC 8463), the DNS TXT record
 * that publishes the public half (RFC 6376 §3.6.1), and a cache of parsed private keys — parsing
 * a PEM costs far more than an Ed25519 signature, so each PEM is parsed once.
 */
import { createPrivateKey, createPublicKey, generateKeyPair, type KeyObject } from "node:crypto";
import { promisify } from "node:util";

export type DkimAlgorithm = "rsa-sha256" | "ed25519-sha256";
export type DkimKeyType = "rsa" | "ed25519";

export interface DkimKeyPair {
  algorithm: DkimAlgorithm;
  /** PKCS#8 PEM; keep it secret (stored encrypted, never returned by the API). */
  privateKey: string;
  /** The `p=` value: base64 SubjectPublicKeyInfo (RSA) or the raw 32-byte key (Ed25519, RFC 8463 §4.2). */
  publicKey: string;
  /** The TXT record value for `<selector>._domainkey.<domain>`, e.g. `v=DKIM1; k=rsa; p=…`. */
  dnsRecord: string;
}

const generate = promisify(generateKeyPair);

/** Generates a key pair off the event loop (RSA 2048 takes tens of milliseconds). */
export async function generateDkimKey(kind: DkimKeyType | DkimAlgorithm): Promise<DkimKeyPair> {
  const type: DkimKeyType = kind === "rsa" || kind === "rsa-sha256" ? "rsa" : "ed25519";
  const { privateKey } =
    type === "rsa"
      ? await generate("rsa", { modulusLength: 2048, publicExponent: 0x10001 })
      : await generate("ed25519", {});
  const pem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  const publicKey = dkimPublicKey(privateKey);
  return {
    algorithm: type === "rsa" ? "rsa-sha256" : "ed25519-sha256",
    privateKey: pem,
    publicKey,
    dnsRecord: `v=DKIM1; k=${type}; p=${publicKey}`,
  };
}

/** The public half of `key` (Node 20's createPublicKey refuses a KeyObject that is already public). */
function publicHalf(key: string | KeyObject): KeyObject {
  return typeof key !== "string" && key.type === "public" ? key : createPublicKey(key);
}

/** The `p=` value for the public half of `key` (private or public, PEM or KeyObject). */
export function dkimPublicKey(key: string | KeyObject): string {
  const pub = publicHalf(key);
  const spki = pub.export({ type: "spki", format: "der" });
  // RFC 8463 §4.2: Ed25519 keys are published raw; the SPKI DER form is a 12-octet prefix + 32 octets.
  return (pub.asymmetricKeyType === "ed25519" ? spki.subarray(spki.length - 32) : spki).toString("base64");
}

/** The TXT record value publishing the public half of `key`. */
export function dkimTxtRecord(key: string | KeyObject): string {
  const type = publicHalf(key).asymmetricKeyType === "ed25519" ? "ed25519" : "rsa";
  return `v=DKIM1; k=${type}; p=${dkimPublicKey(key)}`;
}

const cache = new Map<string, KeyObject>();
const CACHE_LIMIT = 1000;

/** The parsed private key for `key` (PEM strings parsed once; least recently used evicted). */
export function privateKeyObject(key: string | KeyObject): KeyObject {
  if (typeof key !== "string") return key;
  let parsed = cache.get(key);
  if (parsed) {
    cache.delete(key); // re-insert: Map order is the recency order
  } else {
    parsed = createPrivateKey(key);
    if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value!);
  }
  cache.set(key, parsed);
  return parsed;
}
