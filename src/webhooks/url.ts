/**
 * Webhook URL rules (pure). At creation: an absolute http(s) URL of at most 2048 characters,
 * without credentials; https unless the host is an IP literal inside DELIVERY_ALLOW_NETWORKS
 * or a name that may resolve inside it (checked again at each dispatch, see client.ts); an IP
 * literal the destination guard refuses is refused at once.
 */
import { isIP } from "node:net";
import { checkDestination, inAllowedNetworks } from "../dns/guard.js";

export const MAX_URL_LENGTH = 2048;

/** A URL taken apart for connecting: `host` without IPv6 brackets, the port filled in. */
export interface WebhookTarget {
  href: string;
  secure: boolean;
  host: string;
  port: number;
  /** Path and query: a fragment is for the client only (RFC 3986 §3.5), never sent. */
  path: string;
}

export type UrlCheck = { ok: true; target: WebhookTarget } | { ok: false; reason: string };

/** Parses a URL without policy beyond the syntax (used at dispatch for stored URLs too). */
export function parseWebhookUrl(raw: string): UrlCheck {
  if (raw.length > MAX_URL_LENGTH) return { ok: false, reason: `must be at most ${MAX_URL_LENGTH} characters` };
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return { ok: false, reason: "must be an absolute http:// or https:// URL" };
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") return { ok: false, reason: "must be an absolute http:// or https:// URL" };
  if (u.username || u.password) return { ok: false, reason: "must not contain credentials (user:password@)" };
  const host = u.hostname.replace(/^\[|\]$/g, "");
  if (!host) return { ok: false, reason: "must name a host" };
  const secure = u.protocol === "https:";
  return {
    ok: true,
    target: { href: u.href, secure, host, port: u.port ? Number(u.port) : secure ? 443 : 80, path: `${u.pathname}${u.search}` },
  };
}

/** The creation-time check: syntax, then the transport and address rules that need no DNS. */
export function checkWebhookUrl(raw: string, allowNetworks: readonly string[]): UrlCheck {
  const parsed = parseWebhookUrl(raw);
  if (!parsed.ok) return parsed;
  const { host, secure } = parsed.target;
  if (isIP(host) !== 0) {
    const verdict = checkDestination(host, allowNetworks);
    if (!verdict.ok) return { ok: false, reason: `refused destination: ${verdict.reason}` };
    if (!secure && !inAllowedNetworks(host, allowNetworks)) return { ok: false, reason: "must use https (http only to addresses in DELIVERY_ALLOW_NETWORKS)" };
  } else if (!secure && allowNetworks.length === 0) {
    // A name can only be allowed plain http when every address it resolves to is inside the
    // list; with no list no name ever is.
    return { ok: false, reason: "must use https (http only to addresses in DELIVERY_ALLOW_NETWORKS)" };
  }
  return parsed;
}
