/**
 * Random tokens for boundaries and Message-IDs from a pooled buffer: one randomBytes call per
 * 4 KiB instead of one per token (a synchronous call into OpenSSL costs microseconds on the hot
 * path). Every byte is used once.
 */
import { randomBytes } from "node:crypto";

const POOL_SIZE = 4096;
let pool = Buffer.alloc(0);
let used = 0;

/** `bytes` random bytes as base64url (4 characters per 3 bytes). */
export function randomToken(bytes: number): string {
  if (used + bytes > pool.length) {
    pool = randomBytes(POOL_SIZE);
    used = 0;
  }
  const token = pool.toString("base64url", used, used + bytes);
  used += bytes;
  return token;
}
