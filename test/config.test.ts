import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../src/config.js";

describe("loadConfig", () => {
  it("gives SPEC.md's defaults for an empty environment", () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      PORT: 3000,
      HOST: "127.0.0.1",
      DATA_DIR: "./data",
      ROLE: "all",
      SMTP_PORT: 25,
      DNS_SERVERS: [],
      DELIVERY_ALLOW_NETWORKS: [],
      RETRY_SCHEDULE: [300_000, 600_000, 1_200_000, 2_400_000, 3_600_000, 7_200_000, 14_400_000],
      MAX_QUEUE_LIFETIME: 5 * 86_400_000,
      INBOUND_SMTP_HOST: "127.0.0.1",
      INBOUND_SMTP_PORT: 2525,
      REQUIRE_VERIFIED_DOMAIN: true,
      DOMAIN_CONCURRENCY: 10,
      MAX_MESSAGE_BYTES: 20 * 1024 * 1024,
      PUBLIC_URL: "http://127.0.0.1:3000",
      LOG_LEVEL: "info",
      MAX_CONNECTIONS: 100,
      // Issue #5: retried for up to 24 h, first retry after 30 s, 10 s a try, 16 at once per endpoint.
      WEBHOOK_RETRY_LIFETIME: 86_400_000,
      WEBHOOK_RETRY_BASE: 30_000,
      WEBHOOK_TIMEOUT: 10_000,
      WEBHOOK_CONCURRENCY: 16,
      INBOUND_MAX_BYTES: 10 * 1024 * 1024,
    });
    expect(c.DATABASE_URL).toBeUndefined();
    expect(Object.isFrozen(c)).toBe(true);
  });

  it("parses lists, durations and sizes", () => {
    const c = loadConfig({
      DNS_SERVERS: "127.0.0.1:5353, ::1",
      DELIVERY_ALLOW_NETWORKS: "127.0.0.0/8,::1/128",
      RETRY_SCHEDULE: "1s,500ms",
      MAX_QUEUE_LIFETIME: "2h",
      MAX_MESSAGE_BYTES: "512KB",
      REQUIRE_VERIFIED_DOMAIN: "false",
      HOST: "0.0.0.0",
      PORT: "8080",
    });
    expect(c.DNS_SERVERS).toEqual(["127.0.0.1:5353", "[::1]:53"]);
    expect(c.DELIVERY_ALLOW_NETWORKS).toEqual(["127.0.0.0/8", "::1/128"]);
    expect(c.RETRY_SCHEDULE).toEqual([1000, 500]);
    expect(c.MAX_QUEUE_LIFETIME).toBe(7_200_000);
    expect(c.MAX_MESSAGE_BYTES).toBe(524_288);
    expect(c.REQUIRE_VERIFIED_DOMAIN).toBe(false);
    expect(c.PUBLIC_URL).toBe("http://localhost:8080");
    const w = loadConfig({ WEBHOOK_RETRY_LIFETIME: "3d", WEBHOOK_RETRY_BASE: "5s", WEBHOOK_TIMEOUT: "2500ms", WEBHOOK_CONCURRENCY: "4", INBOUND_MAX_BYTES: "1MB" });
    expect([w.WEBHOOK_RETRY_LIFETIME, w.WEBHOOK_RETRY_BASE, w.WEBHOOK_TIMEOUT, w.WEBHOOK_CONCURRENCY, w.INBOUND_MAX_BYTES]).toEqual([3 * 86_400_000, 5_000, 2_500, 4, 1_048_576]);
  });

  const bad: [Record<string, string>, RegExp][] = [
    [{ PORT: "http" }, /^invalid PORT: .*integer/],
    [{ PORT: "70000" }, /^invalid PORT: must be ≤ 65535/],
    [{ ROLE: "both" }, /^invalid ROLE: must be api, worker or all/],
    [{ DATABASE_URL: "mysql://x" }, /^invalid DATABASE_URL: must be a postgres:\/\/ or postgresql:\/\/ URL/],
    // Each used to pass the schema and then stop with a bare "Invalid URL" or "URI malformed".
    [{ DATABASE_URL: "postgres://u@127.0.0.1:99999/db" }, /^invalid DATABASE_URL: /],
    [{ DATABASE_URL: "postgres://u:Re%zz@127.0.0.1/db" }, /^invalid DATABASE_URL: /],
    [{ RELAY_URL: "smtp://u:p@127.0.0.1:99999" }, /^invalid RELAY_URL: /],
    [{ RELAY_URL: "smtp://u:Re%zz@relay.example" }, /^invalid RELAY_URL: /],
    [{ PUBLIC_URL: "ftp://mail.example.com" }, /^invalid PUBLIC_URL: must be an http\(s\) URL/],
    [{ PUBLIC_URL: "javascript:alert(1)" }, /^invalid PUBLIC_URL: /],
    [{ PORT: " " }, /^invalid PORT: must be an integer/], // was 0: a random port
    [{ PORT: "0x10" }, /^invalid PORT: must be an integer/],
    [{ SMTP_PORT: "1e3" }, /^invalid SMTP_PORT: must be an integer/],
    [{ DNS_SERVERS: "dns.google" }, /^invalid DNS_SERVERS: "dns.google" is not ip\[:port\]/],
    [{ DELIVERY_ALLOW_NETWORKS: "10.0.0.0/33" }, /^invalid DELIVERY_ALLOW_NETWORKS/],
    [{ DELIVERY_ALLOW_NETWORKS: "10.0.0.0/" }, /^invalid DELIVERY_ALLOW_NETWORKS/], // was read as /0: the guard off
    [{ DELIVERY_ALLOW_NETWORKS: "fd00::/ " }, /^invalid DELIVERY_ALLOW_NETWORKS/],
    [{ DELIVERY_ALLOW_NETWORKS: "10.0.0.0/+8" }, /^invalid DELIVERY_ALLOW_NETWORKS/],
    [{ RETRY_SCHEDULE: "5m,soon" }, /^invalid RETRY_SCHEDULE/],
    [{ MAX_QUEUE_LIFETIME: "forever" }, /^invalid MAX_QUEUE_LIFETIME/],
    [{ MAX_MESSAGE_BYTES: "lots" }, /^invalid MAX_MESSAGE_BYTES/],
    [{ REQUIRE_VERIFIED_DOMAIN: "maybe" }, /^invalid REQUIRE_VERIFIED_DOMAIN: must be true or false/],
    [{ ADMIN_API_KEY: "secret" }, /^invalid ADMIN_API_KEY: must be pl_/],
    [{ ADMIN_API_KEY: `pl_${"a".repeat(129)}` }, /^invalid ADMIN_API_KEY: must be pl_ followed by 32–128/], // longer could never authenticate
    [{ HELO_NAME: "bad name\r\n" }, /^invalid HELO_NAME/],
    [{ LOG_LEVEL: "loud" }, /^invalid LOG_LEVEL/],
    [{ RELAY_URL: "http://x" }, /^invalid RELAY_URL/],
    [{ DOMAIN_CONCURRENCY: "0" }, /^invalid DOMAIN_CONCURRENCY/],
  ];
  for (const [env, message] of bad) {
    it(`stops with one line naming ${Object.keys(env)[0]} for ${JSON.stringify(Object.values(env)[0])}`, () => {
      let err: unknown;
      try {
        loadConfig(env);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(message);
      expect((err as Error).message).not.toContain("\n");
    });
  }

  it("never echoes secret values in its error", () => {
    expect(() => loadConfig({ ADMIN_API_KEY: "pl_short-secret" })).toThrow(/^invalid ADMIN_API_KEY: [^"]*$/);
  });
});
