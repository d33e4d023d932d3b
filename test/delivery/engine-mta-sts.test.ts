import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMtaStsFetcher } from "../../src/delivery/mta-sts.js";
import { createResolver } from "../../src/dns/resolver.js";
import { engineHarness, type EngineHarness } from "../helpers/engine.js";
import { startHttpsServer, testCertificateAuthority, type RunningHttpsServer, type TestCertificateAuthority } from "../helpers/https-server.js";
import { startMailServer } from "../helpers/mail-server.js";
import { testCertificate } from "../helpers/smtp-servers.js";

let h: EngineHarness;
let ca: TestCertificateAuthority;
let https: RunningHttpsServer;
const policies: Record<string, string> = {};

beforeAll(async () => {
  h = await engineHarness();
  ca = testCertificateAuthority();
  https = await startHttpsServer(ca.issue(["mta-sts.enforced.example", "mta-sts.mismatch.example", "mta-sts.badcert.example"]), (req) => ({
    status: 200,
    headers: { "content-type": "text/plain" },
    body: policies[String(req.headers.host).replace(/:\d+$/, "")] ?? "",
  }));
});
afterAll(async () => {
  await https.close();
  await h.close();
});

/** A domain with an enforce policy naming `mxPattern`, and its MX mx.<domain> on 127.0.0.1. */
function publishEnforced(domain: string, mxPattern: string) {
  policies[`mta-sts.${domain}`] = `version: STSv1\r\nmode: enforce\r\nmx: ${mxPattern}\r\nmax_age: 86400\r\n`;
  h.publish({
    [domain]: { MX: [{ preference: 10, exchange: `mx.${domain}` }] },
    [`mx.${domain}`]: { A: ["127.0.0.1"] },
    [`_mta-sts.${domain}`]: { TXT: ["v=STSv1; id=20261123"] },
    [`mta-sts.${domain}`]: { A: ["127.0.0.1"] },
  });
}

function worker(smtpPort: number) {
  const resolver = createResolver({ servers: [h.dns.address], timeoutMs: 500 });
  const mtaSts = createMtaStsFetcher({ resolver, allowNetworks: ["127.0.0.0/8"], httpsPort: https.port, ca: ca.cert });
  return h.worker({ smtpPort, deliver: { resolver, mtaSts, tlsCa: ca.cert } });
}

describe("MTA-STS in the engine", () => {
  it("delivers over verified TLS to an MX the enforce policy names", async () => {
    const mx = await startMailServer({ options: { hideSTARTTLS: false, ...ca.issue(["mx.enforced.example"]) } });
    publishEnforced("enforced.example", "mx.enforced.example");
    const w = await worker(mx.port);
    const m = await h.send({ to: "user@enforced.example" });
    const [r] = await h.settle(m.id);
    expect(r).toMatchObject({ status: "delivered", tls: { version: expect.stringMatching(/^TLSv1\.[23]$/) } });
    expect(mx.received[0]!.tls).toBe(true);
    await w.stop();
    await mx.close();
  });

  it("defers without connecting when the policy names no MX of the domain", async () => {
    const mx = await startMailServer({ options: { hideSTARTTLS: false, ...ca.issue(["mx.mismatch.example"]) } });
    publishEnforced("mismatch.example", "*.elsewhere.example");
    const w = await worker(mx.port);
    const m = await h.send({ to: "user@mismatch.example" });
    const [r] = await h.settle(m.id, ["deferred"]);
    expect(r).toMatchObject({ lastEnhanced: "4.7.5" });
    expect(r!.lastText).toMatch(/MTA-STS/);
    expect(mx.connections).toBe(0);
    await w.stop();
    await mx.close();
  });

  it("defers, and never retries in plain text, when the MX certificate does not verify", async () => {
    const selfSigned = testCertificate(["mx.badcert.example"]);
    const mx = await startMailServer({ options: { hideSTARTTLS: false, key: selfSigned.key, cert: selfSigned.cert } });
    publishEnforced("badcert.example", "mx.badcert.example");
    const w = await worker(mx.port);
    const m = await h.send({ to: "user@badcert.example" });
    const [r] = await h.settle(m.id, ["deferred"]);
    expect(r!.tls).toBeNull();
    expect(mx.received).toHaveLength(0);
    expect(mx.connections).toBe(1); // no second, plain-text connection
    await w.stop();
    await mx.close();
  });
});
