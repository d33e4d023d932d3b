/**
 * The guarded HTTP client webhooks are POSTed with. Per try: resolve the host with our own
 * resolver (DNS_SERVERS), run every address through the destination guard, connect to the
 * checked IP literal (Host header and SNI stay the URL's host; certificates verified as usual),
 * never follow a redirect, one deadline from resolution to the end of the answer, and read at
 * most the first KB of the answer. Connections are kept alive and reused per endpoint.
 * Every outcome is a value (CONVENTIONS.md #4).
 */
import http from "node:http";
import https from "node:https";
import { isIP, isIPv6 } from "node:net";
import tls from "node:tls";
import { allowedAddresses } from "../dns/allowed-addresses.js";
import { inAllowedNetworks } from "../dns/guard.js";
import type { Resolver } from "../dns/types.js";
import type { WebhookTarget } from "./url.js";

/** The most of an answer's body that is read and recorded. */
export const MAX_RESPONSE_BYTES = 1024;

export interface WebhookClientOptions {
  resolver: Resolver;
  /** DELIVERY_ALLOW_NETWORKS. */
  allowNetworks: readonly string[];
  /** One deadline per try, from resolution to the end of the answer. */
  timeoutMs: number;
  /** Extra trusted root added to Node's bundled ones (tests). */
  ca?: string | Buffer;
  /** Connections kept per pool, i.e. per endpoint (WEBHOOK_CONCURRENCY). Default 16. */
  maxSockets?: number;
  userAgent?: string;
}

export type PostResult =
  /** An HTTP answer, whatever its status; `body` is at most MAX_RESPONSE_BYTES of it. */
  | { kind: "answered"; status: number; body: string; durationMs: number }
  /** No answer: refused destination, DNS failure, connection error, TLS error, timeout. */
  | { kind: "error"; error: string; durationMs: number };

export interface WebhookClient {
  /**
   * POSTs `body`. `pool` names the kept-alive connections it may use (the dispatcher: the
   * endpoint's id), so a hanging endpoint holds only its own, never another endpoint's at the
   * same host and port; without one, requests to the same host and port share theirs.
   */
  post(target: WebhookTarget, body: string | Buffer, headers: Record<string, string>, pool?: string): Promise<PostResult>;
  /** Closes every kept-alive connection. */
  close(): void;
}

export function createWebhookClient(o: WebhookClientOptions): WebhookClient {
  const agents = new Map<string, http.Agent>();
  // A secure context rather than `ca`: https.Agent names its pools by every TLS option, and a
  // `ca` of all bundled roots would make that name hundreds of KB long on every request.
  const secureContext = o.ca === undefined ? undefined : tls.createSecureContext({ ca: [...tls.rootCertificates, o.ca] });
  const userAgent = o.userAgent ?? "Postline-Webhooks/0.1";

  // Idle sockets are dropped after 4 s, before the 5 s keep-alive of common servers (Node's
  // included), so a request rarely meets a socket the server is closing.
  const agentFor = (t: WebhookTarget, pool: string | undefined) => {
    const key = `${pool ?? ""} ${t.secure ? "s" : "p"} ${t.host} ${t.port}`;
    let agent = agents.get(key);
    if (!agent) {
      const opts = { keepAlive: true, maxSockets: o.maxSockets ?? 16, timeout: 4_000, scheduling: "lifo" as const };
      agent = t.secure ? new https.Agent(opts) : new http.Agent(opts);
      agents.set(key, agent);
    }
    return agent;
  };

  /**
   * Deadlines: one periodic sweep over the requests in flight rather than a timer per request
   * (a Timeout set and cleared per POST costs more than the sweep), so a deadline is kept to
   * within a twentieth of WEBHOOK_TIMEOUT (at most 250 ms late). The sweep runs only while
   * requests are in flight and never keeps the process alive.
   */
  const inFlight = new Set<{ deadline: number; expire: () => void }>();
  const sweepMs = Math.min(250, Math.max(5, Math.floor(o.timeoutMs / 20)));
  let sweeper: NodeJS.Timeout | null = null;
  const sweep = () => {
    if (inFlight.size === 0) {
      clearInterval(sweeper!);
      sweeper = null;
      return;
    }
    const t = performance.now();
    for (const r of inFlight) if (r.deadline <= t) r.expire();
  };
  const track = (r: { deadline: number; expire: () => void }) => {
    inFlight.add(r);
    if (sweeper === null) (sweeper = setInterval(sweep, sweepMs)).unref();
  };

  // Per client, not per POST: closures made per request are not free either.
  const left = (started: number) => Math.max(1, Math.round(started + o.timeoutMs - performance.now()));
  const elapsed = (started: number) => Math.round(performance.now() - started);

  /** The guard's verdict on an IP-literal host depends on nothing else: worked out once per host. */
  const literals = new Map<string, { ip: string } | { error: string }>();

  /** The address to connect to, or why there is none. */
  const destination = async (t: WebhookTarget): Promise<{ ip: string } | { error: string }> => {
    const dest = await allowedAddresses(o.resolver, t.host, o.allowNetworks);
    if (!dest.ok) return { error: dest.reason };
    // Plain http only when every address of the host is inside DELIVERY_ALLOW_NETWORKS.
    if (!t.secure && (dest.refused.length > 0 || !dest.ips.every((ip) => inAllowedNetworks(ip, o.allowNetworks))))
      return { error: `refused plain http to ${t.host}: only addresses in DELIVERY_ALLOW_NETWORKS may be reached without https` };
    return { ip: dest.ips[0]! };
  };

  const send = (t: WebhookTarget, ip: string, body: string | Buffer, headers: Record<string, string>, leftMs: number, pool: string | undefined) =>
    new Promise<{ status: number; body: string } | { error: string; retryable: boolean }>((resolve) => {
      let settled = false;
      const finish = (r: { status: number; body: string } | { error: string; retryable: boolean }) => {
        if (settled) return;
        settled = true;
        inFlight.delete(deadline);
        resolve(r);
      };
      const name = isIPv6(t.host) ? `[${t.host}]` : t.host;
      const options: https.RequestOptions = {
        host: ip, // the literal the guard checked; Node does not resolve IP literals
        port: t.port,
        method: "POST",
        path: t.path,
        agent: agentFor(t, pool),
        headers: {
          host: t.port === (t.secure ? 443 : 80) ? name : `${name}:${t.port}`,
          "content-type": "application/json",
          "content-length": String(Buffer.byteLength(body)),
          "user-agent": userAgent,
        },
      };
      // Copied in, not spread ({ ...headers, … } costs microseconds per request in V8).
      const all = options.headers as Record<string, string>;
      for (const k in headers) all[k] = headers[k]!;
      if (t.secure) {
        // SNI carries names only (RFC 6066 §3); an IP-literal URL is checked against the IP SAN.
        if (isIP(t.host)) options.servername = "";
        else options.servername = t.host;
        options.rejectUnauthorized = true;
        options.checkServerIdentity = (_host, cert) => tls.checkServerIdentity(t.host, cert);
        if (secureContext) Object.assign(options, { secureContext });
      }
      const req = (t.secure ? https : http).request(options);
      // The answer so far: once its status line has arrived, the deadline ends the reading, not
      // the answer (a 2xx whose body trickles is a 2xx; recording a timeout would POST it again).
      let answer: { status: number; chunks: Buffer[] } | null = null;
      const answered = (a: { status: number; chunks: Buffer[] }) => {
        const text = a.chunks.length === 0 ? "" : Buffer.concat(a.chunks).subarray(0, MAX_RESPONSE_BYTES).toString("utf8");
        finish({ status: a.status, body: text.replace(/\0/g, "") }); // PostgreSQL text holds no NUL
      };
      const deadline = {
        deadline: performance.now() + leftMs,
        expire: () => {
          if (answer) answered(answer);
          else finish({ error: `timeout: no complete answer within ${o.timeoutMs} ms`, retryable: false });
          req.destroy();
        },
      };
      track(deadline);
      req.on("error", (err: NodeJS.ErrnoException) => {
        // A kept-alive socket the server closed meanwhile: nothing reached it, so one more
        // request on a fresh connection is safe (Node's http docs recommend exactly this).
        finish({ error: err.message || String(err.code), retryable: req.reusedSocket && err.code === "ECONNRESET" });
      });
      req.on("response", (res) => {
        const a: { status: number; chunks: Buffer[] } = { status: res.statusCode ?? 0, chunks: [] };
        answer = a;
        let size = 0;
        const done = () => answered(a);
        res.on("data", (chunk: Buffer) => {
          a.chunks.push(chunk);
          size += chunk.length;
          if (size >= MAX_RESPONSE_BYTES && !res.complete) {
            // Enough: stop reading; the connection is not reused.
            done();
            res.destroy();
          }
        });
        res.on("end", done);
        res.on("error", done);
        res.on("close", done); // ended early by the server: what arrived is what is recorded
      });
      req.end(body);
    });

  return {
    async post(t, body, headers, pool) {
      const started = performance.now();
      let dest: { ip: string } | { error: string };
      if (isIP(t.host)) {
        // An IP literal needs no look-up, so no deadline for one (a timer per POST is not free).
        const key = `${t.secure ? "s" : "p"} ${t.host}`;
        const known = literals.get(key);
        if (known) dest = known;
        else {
          dest = await destination(t);
          if (literals.size >= 10_000) literals.clear();
          literals.set(key, dest);
        }
      } else {
        let timer: NodeJS.Timeout | undefined;
        try {
          dest = await Promise.race([
            destination(t),
            new Promise<{ error: string }>((r) => (timer = setTimeout(() => r({ error: `timeout: ${t.host} not resolved within ${o.timeoutMs} ms` }), o.timeoutMs))),
          ]);
        } finally {
          clearTimeout(timer);
        }
      }
      if ("error" in dest) return { kind: "error", error: dest.error, durationMs: elapsed(started) };
      let r = await send(t, dest.ip, body, headers, left(started), pool);
      if ("retryable" in r && r.retryable) r = await send(t, dest.ip, body, headers, left(started), pool);
      if ("error" in r) return { kind: "error", error: r.error, durationMs: elapsed(started) };
      return { kind: "answered", status: r.status, body: r.body, durationMs: elapsed(started) };
    },
    close() {
      if (sweeper) clearInterval(sweeper);
      sweeper = null;
      for (const a of agents.values()) a.destroy();
      agents.clear();
    },
  };
}
