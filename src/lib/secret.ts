/**
 * The service secret (SPEC.md "Configuration", SECRET_KEY) and what is built on it: sub-keys
 * derived per purpose with HKDF (RFC 5869) and authenticated encryption of small values at rest
 * with AES-256-GCM.
 *
 * The secret is SECRET_KEY when set, else the contents of DATA_DIR/secret.key, generated on the
 * first start (32 random bytes, base64url). Either way it is used as a string: copying
 * secret.key into SECRET_KEY gives the same sub-keys, so a deployment can move from one to the
 * other without re-encrypting anything. Losing it makes every sealed value unreadable.
 *
 * Depends on nothing of the app (CONVENTIONS.md: lib/).
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";

/** Every use of the secret has its own sub-key; add a purpose here, never reuse one. */
export const SECRET_PURPOSES = ["dkim-key-encryption", "verp", "unsubscribe", "webhook-secret-encryption"] as const;
export type SecretPurpose = (typeof SECRET_PURPOSES)[number];

export interface ServiceSecret {
  /** Where the secret came from (for a start-up log line; the secret itself is never logged). */
  readonly source: "env" | "file";
  /** The 32-byte sub-key for `purpose` (HKDF-SHA256, memoised). */
  key(purpose: SecretPurpose): Buffer;
}

export const SECRET_FILE = "secret.key";
/** SECRET_KEY's own minimum (config.ts); a shorter secret.key is treated as damaged. */
const MIN_SECRET_LENGTH = 32;
const HKDF_SALT = Buffer.from("postline/v1", "utf8");

/** Builds the ServiceSecret for a secret string (SECRET_KEY or the contents of secret.key). */
export function secretFromString(secret: string, source: ServiceSecret["source"] = "env"): ServiceSecret {
  if (secret.length < MIN_SECRET_LENGTH) throw new Error(`the service secret must be at least ${MIN_SECRET_LENGTH} characters`);
  const ikm = Buffer.from(secret, "utf8");
  const derived = new Map<SecretPurpose, Buffer>();
  return {
    source,
    key(purpose) {
      let k = derived.get(purpose);
      if (!k) {
        k = Buffer.from(hkdfSync("sha256", ikm, HKDF_SALT, `postline ${purpose}`, 32));
        derived.set(purpose, k);
      }
      return k;
    },
  };
}

/**
 * SECRET_KEY when given, else DATA_DIR/secret.key, created when absent. Creation is atomic and
 * never overwrites: the new secret goes to a temporary file (mode 0600) that is then hard-linked
 * to secret.key, which fails when another process got there first; everyone then reads back
 * whatever secret.key holds, so concurrent first starts agree on one secret.
 */
export async function loadSecret(opts: { secretKey?: string; dataDir: string }): Promise<ServiceSecret> {
  if (opts.secretKey) return secretFromString(opts.secretKey, "env");
  const file = path.join(opts.dataDir, SECRET_FILE);
  const existing = await readSecretFile(file);
  if (existing !== null) return secretFromString(existing, "file");

  await fs.mkdir(opts.dataDir, { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`;
  const handle = await fs.open(tmp, "wx", 0o600);
  try {
    await handle.writeFile(`${randomBytes(32).toString("base64url")}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await fs.link(tmp, file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // EEXIST: another process won the race, and its secret is the one. Other errors: a
    // file system without hard links; O_EXCL creation is the next best atomic step.
    if (code !== "EEXIST") await fs.copyFile(tmp, file, fs.constants.COPYFILE_EXCL).catch(ignoreExists);
  } finally {
    await fs.unlink(tmp).catch(() => {});
  }
  const secret = await readSecretFile(file);
  if (secret === null) throw new Error(`${file} could not be created`);
  return secretFromString(secret, "file");
}

function ignoreExists(err: unknown): void {
  if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
}

async function readSecretFile(file: string): Promise<string | null> {
  let text: string;
  try {
    text = await fs.readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw err;
  }
  const secret = text.trim();
  if (secret.length < MIN_SECRET_LENGTH) {
    // Never regenerate over it: whatever it once held may have sealed data.
    throw new Error(`${file} is damaged (shorter than ${MIN_SECRET_LENGTH} characters); restore it or set SECRET_KEY`);
  }
  return secret;
}

const loaded = new Map<string, Promise<ServiceSecret>>();

/** loadSecret for a configuration, once per process (every caller shares the same promise). */
export function serviceSecret(config: { readonly SECRET_KEY?: string | undefined; readonly DATA_DIR: string }): Promise<ServiceSecret> {
  const id = config.SECRET_KEY ? `env\0${config.SECRET_KEY}` : `file\0${path.resolve(config.DATA_DIR)}`;
  let p = loaded.get(id);
  if (!p) {
    p = loadSecret({ secretKey: config.SECRET_KEY, dataDir: config.DATA_DIR });
    // A failed load (e.g. an unwritable DATA_DIR) is tried again on the next call.
    p.catch(() => loaded.delete(id));
    loaded.set(id, p);
  }
  return p;
}

/*
 * Sealed format, version 1: `v1.<nonce>.<ciphertext‖tag>`, both base64url; AES-256-GCM with a
 * random 96-bit nonce (NIST SP 800-38D §8.2.2: random nonces are fine well below 2^32 seals
 * per key) and a 128-bit tag. The version prefix lets a later format coexist with this one.
 */
const VERSION = "v1";
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

/**
 * Encrypts and authenticates `plaintext` with a 32-byte key. `context` (e.g. the owning row's
 * id) is bound as additional data: the sealed value only opens with the same context, so it
 * cannot be moved to another row.
 */
export function seal(plaintext: string | Buffer, key: Buffer, context = ""): string {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv("aes-256-gcm", key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(`${VERSION}|${context}`, "utf8"));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  return `${VERSION}.${nonce.toString("base64url")}.${body.toString("base64url")}`;
}

/** Reverses `seal`. Throws when the value is malformed, the key or context differs, or a byte was changed. */
export function open(sealed: string, key: Buffer, context = ""): Buffer {
  const [version, nonceText, bodyText, extra] = sealed.split(".");
  if (version !== VERSION || nonceText === undefined || bodyText === undefined || extra !== undefined) {
    throw new Error("not a sealed value of a known version");
  }
  const nonce = Buffer.from(nonceText, "base64url");
  const body = Buffer.from(bodyText, "base64url");
  if (nonce.length !== NONCE_BYTES || body.length < TAG_BYTES) throw new Error("sealed value is truncated");
  const decipher = createDecipheriv("aes-256-gcm", key, nonce, { authTagLength: TAG_BYTES });
  decipher.setAAD(Buffer.from(`${VERSION}|${context}`, "utf8"));
  decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
  return Buffer.concat([decipher.update(body.subarray(0, body.length - TAG_BYTES)), decipher.final()]);
}
