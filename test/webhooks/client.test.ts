import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createResolver } from "../../src/dns/resolver.js";
import { createWebhookClient, MAX_RESPONSE_BYTES, type WebhookClientOptions } from "../../src/webhooks/client.js";
import { parseWebhookUrl, type WebhookTarget } from "../../src/webhooks/url.js";
import { startDnsServer, type DnsServer } from "../helpers/dns-server.js";
import { startHttpsServer, testCertificateAuthority, type RunningHttpsServer, type TestCertificateAuthority } from "../helpers/https-server.js";
import { startReceiver, type Receiver } from "../helpers/webhook-receiver.js";

let dns: DnsServer;
let rx: Receiver;
let ca: TestCertificateAuthority;
let tlsServer: RunningHttpsServer;
beforeAll(async () => {
  dns = await startDnsServer({
    "hooks.test": { A: ["127.0.0.1"] },
    "split.test": { A: ["127.0.0.1", "8.8.8.8"] },
    "public.test": { A: ["8.8.8.8"] },
    "secure.test": { A: ["127.0.0.1"] },
  });
  rx = await startReceiver();
  ca = testCertificateAuthority();
  tlsServer = await startHttpsServer(ca.issue(["secure.test"]), () => ({ status: 204 }));
});
afterAll(async () => {
  await rx?.close();
  await tlsServer?.close();
  await dns?.close();
});

const target = (url: string): WebhookTarget => {
  const p = parseWebhookUrl(url);
  if (!p.ok) throw new Error(p.reason);
  return p.target;
};
const client = (o: Partial<WebhookClientOptions> = {}) =>
  createWebhookClient({ resolver: createResolver({ servers: [dns.address], timeoutMs: 500 }), allowNetworks: ["127.0.0.0/8"], timeoutMs: 2_000, ...o });

describe("the webhook HTTP client", () => {
  it("POSTs the body with the given headers and reuses one kept-alive connection", async () => {
    rx.answer(() => ({ status: 200, body: "thanks" }));
    const c = client();
    const before = rx.connections();
    const n = rx.received.length;
    for (let i = 0; i < 3; i++) {
      const r = await c.post(target(`${rx.base}/hook?i=${i}`), `{"i":${i}}`, { "webhook-id": `evt_${i}` });
      expect(r).toMatchObject({ kind: "answered", status: 200, body: "thanks" });
    }
    c.close();
    expect(rx.connections() - before).toBe(1);
    const got = rx.received.slice(n);
    expect(got.map((g) => [g.method, g.url, g.body, g.headers["webhook-id"], g.headers["content-type"]])).toEqual([0, 1, 2].map((i) => ["POST", `/hook?i=${i}`, `{"i":${i}}`, `evt_${i}`, "application/json"]));
    expect(got[0]!.headers.host).toBe(`127.0.0.1:${rx.port}`);
    expect(got[0]!.headers["user-agent"]).toMatch(/Postline/);
  });

  it("keeps only the first KB of a large answer", async () => {
    rx.answer(() => ({ status: 500, body: "x".repeat(100_000) }));
    const c = client();
    const r = await c.post(target(`${rx.base}/big`), "{}", {});
    c.close();
    expect(r.kind).toBe("answered");
    if (r.kind === "answered") expect(r.body).toHaveLength(MAX_RESPONSE_BYTES);
  });

  it("does not follow a redirect", async () => {
    rx.answer((req) => (req.url === "/moved" ? { status: 301, headers: { location: `${rx.base}/elsewhere` } } : { status: 200 }));
    const c = client();
    const n = rx.received.length;
    const r = await c.post(target(`${rx.base}/moved`), "{}", {});
    c.close();
    expect(r).toMatchObject({ kind: "answered", status: 301 });
    expect(rx.received.slice(n).map((g) => g.url)).toEqual(["/moved"]);
  });

  it("gives up at the deadline when the receiver never answers", async () => {
    rx.answer(() => ({ status: 200, hang: true }));
    const c = client({ timeoutMs: 150 });
    const r = await c.post(target(`${rx.base}/hang`), "{}", {});
    c.close();
    expect(r).toMatchObject({ kind: "error", error: expect.stringMatching(/timeout/) });
    expect(r.durationMs).toBeGreaterThanOrEqual(140);
    expect(r.durationMs).toBeLessThan(1_500);
    rx.answer(() => ({ status: 200 }));
  });

  it("refuses a private address outside DELIVERY_ALLOW_NETWORKS without connecting", async () => {
    const c = client({ allowNetworks: [] });
    const before = rx.connections();
    const r1 = await c.post(target(`https://127.0.0.1:${rx.port}/x`), "{}", {});
    const r2 = await c.post(target(`https://hooks.test:${rx.port}/x`), "{}", {});
    c.close();
    expect(r1).toMatchObject({ kind: "error", error: expect.stringMatching(/refused to connect to 127\.0\.0\.1: 127\.0\.0\.1 is a loopback address/) });
    expect(r2).toMatchObject({ kind: "error", error: expect.stringMatching(/refused to connect to hooks\.test/) });
    expect(rx.connections()).toBe(before);
  });

  it("allows plain http to a name only when every address it resolves to is inside the allow list", async () => {
    const c = client();
    const before = rx.connections();
    expect(await c.post(target(`http://hooks.test:${rx.port}/x`), "{}", {})).toMatchObject({ kind: "answered", status: 200 });
    const split = await c.post(target(`http://split.test:${rx.port}/x`), "{}", {});
    const pub = await c.post(target(`http://public.test:${rx.port}/x`), "{}", {});
    c.close();
    expect(split).toMatchObject({ kind: "error", error: expect.stringMatching(/plain http/) });
    expect(pub).toMatchObject({ kind: "error", error: expect.stringMatching(/plain http/) });
    expect(rx.connections() - before).toBe(1);
    expect(rx.received.at(-1)!.headers.host).toBe(`hooks.test:${rx.port}`);
  });

  it("speaks https to the checked address with the URL's name as SNI and verifies the certificate", async () => {
    const ok = client({ ca: ca.cert });
    const r = await ok.post(target(`https://secure.test:${tlsServer.port}/tls`), "{}", {});
    ok.close();
    expect(r).toMatchObject({ kind: "answered", status: 204 });
    expect(tlsServer.requests.at(-1)).toMatchObject({ servername: "secure.test", host: `secure.test:${tlsServer.port}`, url: "/tls" });

    const untrusted = client();
    const bad = await untrusted.post(target(`https://secure.test:${tlsServer.port}/tls`), "{}", {});
    untrusted.close();
    expect(bad).toMatchObject({ kind: "error", error: expect.stringMatching(/certificate/i) });
  });

  it("says when the host does not resolve", async () => {
    const c = client();
    const r = await c.post(target("https://nowhere.test/x"), "{}", {});
    c.close();
    expect(r).toMatchObject({ kind: "error", error: expect.stringMatching(/nowhere\.test has no address/) });
  });
});
