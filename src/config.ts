/**
 * The only reader of process.env. One zod schema turns the environment into a typed, frozen
 * Config; a wrong value becomes one ConfigError line naming the variable (SPEC.md "Configuration").
 */
import os from "node:os";
import net from "node:net";
import { z } from "zod";
import { parseCidrs } from "./dns/guard.js";
import { parseBytes, parseDuration } from "./lib/duration.js";
import { API_KEY_FORMAT } from "./lib/ids.js";

// Decimal digits only: z.coerce.number would read " " as 0 (a random port), "0x10" as 16, "1e3" as 1000.
const port = (min: number) =>
  z
    .string()
    .regex(/^\d{1,5}$/, "must be an integer")
    .transform(Number)
    .pipe(z.number().min(min, `must be ≥ ${min}`).max(65535, "must be ≤ 65535"));

/** A URL that `new URL` reads, with a valid port, and whose user and password decode (else the variable is named). */
const urlWith = (protocols: RegExp, message: string) =>
  z.string().refine((v) => {
    try {
      const u = new URL(v);
      decodeURIComponent(u.username);
      decodeURIComponent(u.password);
      return protocols.test(u.protocol) && u.hostname !== "";
    } catch {
      return false;
    }
  }, message);

const duration = (def: string) =>
  z
    .string()
    .default(def)
    .transform((v, ctx) => {
      const ms = parseDuration(v);
      if (ms === null || ms <= 0) {
        ctx.addIssue({ code: "custom", message: `"${v}" is not a duration like 30s, 5m, 2h or 5d` });
        return z.NEVER;
      }
      return ms;
    });

/** A byte size like 20MB, at least 1 KB. */
const size = (def: string) =>
  z
    .string()
    .default(def)
    .transform((v, ctx) => {
      const n = parseBytes(v);
      if (n === null || n < 1024) {
        ctx.addIssue({ code: "custom", message: `"${v}" is not a size like ${def} (at least 1KB)` });
        return z.NEVER;
      }
      return n;
    });

const bool = (def: boolean) =>
  z
    .enum(["true", "false", "1", "0", "yes", "no"], { message: "must be true or false" })
    .default(def ? "true" : "false")
    .transform((v) => v === "true" || v === "1" || v === "yes");

/** `ip[:port]` or `[ipv6]:port`, comma-separated. */
const dnsServers = z
  .string()
  .optional()
  .transform((v, ctx) => {
    if (v === undefined || v.trim() === "") return [] as string[];
    const out: string[] = [];
    for (const raw of v.split(",").map((s) => s.trim())) {
      const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(raw) ?? /^([^:]+)(?::(\d+))?$/.exec(raw);
      const host = m ? m[1]! : raw;
      const p = m?.[2] ? Number(m[2]) : 53;
      if (!net.isIP(host) || p < 1 || p > 65535) {
        ctx.addIssue({ code: "custom", message: `"${raw}" is not ip[:port]` });
        return z.NEVER;
      }
      out.push(net.isIPv6(host) ? `[${host}]:${p}` : `${host}:${p}`);
    }
    return out;
  });

const cidrList = z
  .string()
  .optional()
  .transform((v, ctx) => {
    if (v === undefined || v.trim() === "") return [] as string[];
    const out: string[] = [];
    for (const raw of v.split(",").map((s) => s.trim())) {
      // The guard's own parser, so that what is accepted here is what it checks against.
      const parsed = parseCidrs([raw]);
      if (!parsed.ok) {
        ctx.addIssue({ code: "custom", message: `"${raw}" is not a CIDR like 127.0.0.0/8` });
        return z.NEVER;
      }
      out.push(`${raw.split("/")[0]}/${parsed.cidrs[0]![1]}`);
    }
    return out;
  });

const envSchema = z.object({
  PORT: port(0).default(3000),
  HOST: z.string().min(1).default("127.0.0.1"),
  DATABASE_URL: z
    .string()
    .optional()
    .transform((v) => (v === "" ? undefined : v))
    .pipe(urlWith(/^postgres(ql)?:$/, "must be a postgres:// or postgresql:// URL (host, a port ≤ 65535, %-encoded user and password)").optional()),
  DATA_DIR: z.string().min(1).default("./data"),
  ROLE: z.enum(["api", "worker", "all"], { message: "must be api, worker or all" }).default("all"),
  ADMIN_API_KEY: z
    .string()
    .regex(API_KEY_FORMAT, "must be pl_ followed by 32–128 characters of [A-Za-z0-9_-]")
    .optional(),
  HELO_NAME: z
    .string()
    .regex(/^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$/, "must be a host name (letters, digits, dots, hyphens)")
    .default(os.hostname()),
  DNS_SERVERS: dnsServers,
  SMTP_PORT: port(1).default(25),
  RELAY_URL: urlWith(/^smtps?:$/, "must be smtp://user:pass@host:port or smtps://… (a port ≤ 65535, %-encoded user and password)").optional(),
  DELIVERY_ALLOW_NETWORKS: cidrList,
  RETRY_SCHEDULE: z
    .string()
    .default("5m,10m,20m,40m,1h,2h,4h")
    .transform((v, ctx) => {
      const list = v.split(",").map((s) => parseDuration(s));
      if (list.length === 0 || list.some((x) => x === null || x <= 0)) {
        ctx.addIssue({ code: "custom", message: `"${v}" is not a comma-separated list of durations` });
        return z.NEVER;
      }
      return list as number[];
    }),
  MAX_QUEUE_LIFETIME: duration("5d"),
  RETURN_PATH_DOMAIN: z
    .string()
    .regex(/^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/i, "must be a domain name")
    .optional(),
  INBOUND_SMTP_HOST: z.string().min(1).default("127.0.0.1"),
  INBOUND_SMTP_PORT: port(0).default(2525),
  REQUIRE_VERIFIED_DOMAIN: bool(true),
  DOMAIN_CONCURRENCY: z.coerce.number({ message: "must be an integer" }).int("must be an integer").min(1, "must be ≥ 1").max(1000).default(10),
  MAX_CONNECTIONS: z.coerce.number({ message: "must be an integer" }).int("must be an integer").min(1, "must be ≥ 1").max(10_000).default(100),
  DELIVERY_LEASE: duration("2m"),
  MAX_MESSAGE_BYTES: size("20MB"),
  /** Webhooks: a delivery not answered 2xx within this time is marked failed (issue #5). */
  WEBHOOK_RETRY_LIFETIME: duration("24h"),
  /** Webhooks: first retry delay; each next one doubles (capped at 1 h), with jitter. */
  WEBHOOK_RETRY_BASE: duration("30s"),
  /** Webhooks: deadline of one POST, connect to end of the answer. */
  WEBHOOK_TIMEOUT: duration("10s"),
  /** Webhooks: POSTs in flight at once to one endpoint, per process. */
  WEBHOOK_CONCURRENCY: z.coerce.number({ message: "must be an integer" }).int("must be an integer").min(1, "must be ≥ 1").max(1000).default(16),
  /** Inbound listener: largest message accepted (SIZE and a hard cut-off while reading). */
  INBOUND_MAX_BYTES: size("10MB"),
  PUBLIC_URL: urlWith(/^https?:$/, "must be an http(s) URL").optional(),
  SECRET_KEY: z.string().min(32, "must be at least 32 characters").optional(),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
});

export type Config = Readonly<
  Omit<z.infer<typeof envSchema>, "PUBLIC_URL"> & { PUBLIC_URL: string; relay: RelayConfig | undefined }
>;

/** RELAY_URL taken apart: smtps:// means implicit TLS (port 465 by default), smtp:// STARTTLS (587). */
export interface RelayConfig {
  host: string;
  port: number;
  implicitTls: boolean;
  auth?: { user: string; pass: string };
}

function parseRelay(url: string | undefined): RelayConfig | undefined {
  if (!url) return undefined;
  const u = new URL(url);
  const implicitTls = u.protocol === "smtps:";
  const host = u.hostname.replace(/^\[|\]$/g, "");
  const auth = u.username ? { user: decodeURIComponent(u.username), pass: decodeURIComponent(u.password) } : undefined;
  return { host, port: u.port ? Number(u.port) : implicitTls ? 465 : 587, implicitTls, auth };
}

/** A configuration error: `message` is one line naming the variable and what is wrong. */
export class ConfigError extends Error {}

/** Parses the environment (process.env by default) into a frozen Config, or throws ConfigError. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  // Empty strings mean "unset" for optional variables, as in most twelve-factor tools.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ""));
  const result = envSchema.safeParse(cleaned);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const name = String(issue.path[0] ?? "environment");
    const shown = cleaned[name] === undefined || /KEY|URL/.test(name) ? "" : ` (got ${JSON.stringify(cleaned[name])})`;
    throw new ConfigError(`invalid ${name}: ${issue.message}${shown}`);
  }
  const c = result.data;
  const publicHost = c.HOST === "0.0.0.0" || c.HOST === "::" ? "localhost" : c.HOST;
  return Object.freeze({ ...c, PUBLIC_URL: c.PUBLIC_URL ?? `http://${publicHost}:${c.PORT}`, relay: parseRelay(c.RELAY_URL) });
}
