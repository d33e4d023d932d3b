/**
 * What the dispatcher needs of an endpoint to POST to it: its URL taken apart and its signing
 * key, opened once per endpoint rather than once per event (AES-GCM and base64 each time would
 * be wasted work at thousands of events a second). Loaded by id, for the endpoints of a claim
 * not seen before: an endpoint never changes after it is created (there is no update; a deleted
 * one takes its deliveries with it), so the claim need not carry its URL and sealed secret on
 * every row.
 */
import { sql } from "drizzle-orm";
import { pgArray } from "../db/arrays.js";
import type { Store } from "../db/client.js";
import type { ServiceSecret } from "../lib/secret.js";
import { secretKey } from "./sign.js";
import { parseWebhookUrl, type WebhookTarget } from "./url.js";
import { openSecret } from "./webhooks.js";

export type Endpoint = { ok: true; target: WebhookTarget; key: Buffer } | { ok: false; reason: string };

const MAX_CACHED = 10_000;

export function endpointCache(secret: ServiceSecret, store: Store) {
  const cache = new Map<string, Endpoint>();

  const build = (webhookId: string, url: string, sealed: string): Endpoint => {
    const parsed = parseWebhookUrl(url);
    if (!parsed.ok) return { ok: false, reason: `invalid webhook url: ${parsed.reason}` };
    try {
      return { ok: true, target: parsed.target, key: secretKey(openSecret(secret, webhookId, sealed)) };
    } catch {
      // Never the secret or the sealed value in the message.
      return { ok: false, reason: "the endpoint's signing secret cannot be opened (was SECRET_KEY changed?); nothing was sent" };
    }
  };

  return {
    /**
     * The endpoints of these ids, loading the ones not cached in one statement. An id with no
     * row any more (deleted meanwhile) gets an endpoint that says so.
     */
    async get(ids: Iterable<string>): Promise<Map<string, Endpoint>> {
      const out = new Map<string, Endpoint>();
      const missing = new Set<string>();
      for (const id of ids) {
        const hit = cache.get(id);
        if (hit) out.set(id, hit);
        else missing.add(id);
      }
      if (missing.size === 0) return out;
      const rows = await store.rows<{ id: string; url: string; secret_sealed: string }>(
        sql`select id, url, secret_sealed from webhooks where id = any(${pgArray([...missing])}::text[])`,
      );
      if (cache.size + missing.size > MAX_CACHED) cache.clear();
      for (const r of rows) cache.set(r.id, build(r.id, r.url, r.secret_sealed));
      for (const id of missing) out.set(id, cache.get(id) ?? { ok: false, reason: "the endpoint was deleted" });
      return out;
    },
  };
}
