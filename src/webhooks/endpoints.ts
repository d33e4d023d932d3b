/**
 * What the dispatcher needs of an endpoint to POST to it: its URL taken apart and its signing
 * key, opened once per endpoint rather than once per event (AES-GCM and base64 each time would
 * be wasted work at thousands of events a second).
 */
import type { ServiceSecret } from "../lib/secret.js";
import { secretKey } from "./sign.js";
import { parseWebhookUrl, type WebhookTarget } from "./url.js";
import { openSecret } from "./webhooks.js";

export type Endpoint = { ok: true; target: WebhookTarget; key: Buffer } | { ok: false; reason: string };

const MAX_CACHED = 10_000;

export function endpointCache(secret: ServiceSecret) {
  const cache = new Map<string, { url: string; sealed: string; endpoint: Endpoint }>();

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
    /** The endpoint of a claimed delivery (rebuilt when its URL or sealed secret differ from the cached one). */
    get(d: { webhookId: string; url: string; secretSealed: string }): Endpoint {
      const hit = cache.get(d.webhookId);
      if (hit && hit.url === d.url && hit.sealed === d.secretSealed) return hit.endpoint;
      const endpoint = build(d.webhookId, d.url, d.secretSealed);
      if (cache.size >= MAX_CACHED) cache.clear();
      cache.set(d.webhookId, { url: d.url, sealed: d.secretSealed, endpoint });
      return endpoint;
    },
  };
}
