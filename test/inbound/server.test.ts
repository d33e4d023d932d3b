import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { verpAddress } from "../../src/inbound/verp.js";
import { createLogger } from "../../src/lib/logger.js";
import { serviceSecret } from "../../src/lib/secret.js";
import { start, type Running } from "../../src/server.js";
import { scratchDatabase } from "../helpers/store.js";
import { smtpSend } from "./smtp-client.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function startWith(env: Record<string, string>, inboundPort?: number): Promise<Running> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "postline-inbound-"));
  const scratch = process.env.DATABASE_URL ? await scratchDatabase(process.env.DATABASE_URL) : undefined;
  const config = loadConfig({ LOG_LEVEL: "silent", PORT: "0", DATA_DIR: dataDir, SECRET_KEY: "s".repeat(40), ...(scratch ? { DATABASE_URL: scratch.url } : {}), ...env });
  const running = await start(config, createLogger("silent"), inboundPort === undefined ? {} : { inboundPort });
  cleanups.push(async () => {
    await running.stop();
    await scratch?.drop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });
  return running;
}

describe("the inbound listener in the process", { timeout: 60_000 }, () => {
  it("starts with the worker role when RETURN_PATH_DOMAIN is set, answers on its port, and closes on stop()", async () => {
    const running = await startWith({ ROLE: "worker", RETURN_PATH_DOMAIN: "bounces.postline.test" }, 0);
    expect(running.inboundPort).toEqual(expect.any(Number));
    const key = (await serviceSecret({ SECRET_KEY: "s".repeat(40), DATA_DIR: "." })).key("verp");
    const token = verpAddress(key, "rcpt_01jd2x0c6v8k9m3n4p5q6r7s8t", "bounces.postline.test");
    const x = await smtpSend(running.inboundPort!, { rcptTo: [`forged@bounces.postline.test`, token], data: "Subject: x\r\n\r\nx\r\n" });
    expect(x.rcpt).toEqual([expect.stringMatching(/^550 /), expect.stringMatching(/^250/)]);
    expect(x.end).toMatch(/^250 /);
    const port = running.inboundPort!;
    // Stopped here rather than after the test: its cleanup stops the process, then drops the
    // scratch database and the data directory (popping it alone left both behind).
    await cleanups.pop()!();
    expect((await smtpSend(port, { rcptTo: [token], data: "" }).catch((e: Error) => e)) instanceof Error).toBe(true);
  });

  it.each([
    ["without RETURN_PATH_DOMAIN", { ROLE: "worker" }, 0],
    ["with the api role", { ROLE: "api", RETURN_PATH_DOMAIN: "bounces.postline.test" }, 0],
    ["with INBOUND_SMTP_PORT=0", { ROLE: "worker", RETURN_PATH_DOMAIN: "bounces.postline.test", INBOUND_SMTP_PORT: "0" }, undefined],
  ])("does not start %s", async (_name, env, port) => {
    expect((await startWith(env as Record<string, string>, port)).inboundPort).toBeNull();
  });
});
