import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { SECRET_FILE, loadSecret, open, seal, secretFromString } from "../../src/lib/secret.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const dirs: string[] = [];
const tempDir = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "postline-secret-"));
  dirs.push(d);
  return path.join(d, "data"); // not created yet: loadSecret must create it
};
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe("loadSecret", () => {
  it("uses SECRET_KEY when set and writes nothing", async () => {
    const dataDir = tempDir();
    const s = await loadSecret({ secretKey: "k".repeat(40), dataDir });
    expect(s.source).toBe("env");
    expect(fs.existsSync(dataDir)).toBe(false);
  });

  it("generates 32 random bytes (base64url) into DATA_DIR/secret.key with mode 0600, then reuses them", async () => {
    const dataDir = tempDir();
    const first = await loadSecret({ dataDir });
    const file = path.join(dataDir, SECRET_FILE);
    const text = fs.readFileSync(file, "utf8").trim();
    expect(Buffer.from(text, "base64url")).toHaveLength(32);
    expect(text).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(first.source).toBe("file");
    const again = await loadSecret({ dataDir });
    expect(again.key("verp").equals(first.key("verp"))).toBe(true);
    expect(fs.readdirSync(dataDir)).toEqual([SECRET_FILE]); // no temporary files left behind
  });

  it("gives the same sub-keys when secret.key's contents are moved into SECRET_KEY", async () => {
    const dataDir = tempDir();
    const fromFile = await loadSecret({ dataDir });
    const fromEnv = await loadSecret({ secretKey: fs.readFileSync(path.join(dataDir, SECRET_FILE), "utf8").trim(), dataDir: "/nonexistent" });
    expect(fromEnv.key("dkim-key-encryption").equals(fromFile.key("dkim-key-encryption"))).toBe(true);
  });

  it("agrees on one secret when many loads race on an empty DATA_DIR in one process", async () => {
    const dataDir = tempDir();
    const all = await Promise.all(Array.from({ length: 16 }, () => loadSecret({ dataDir })));
    const hex = new Set(all.map((s) => s.key("verp").toString("hex")));
    expect(hex.size).toBe(1);
    expect(fs.readdirSync(dataDir)).toEqual([SECRET_FILE]);
  });

  it("agrees on one secret when several processes start together on an empty DATA_DIR", async () => {
    const dataDir = tempDir();
    const script = `import { loadSecret } from "./src/lib/secret.ts"; const s = await loadSecret({ dataDir: process.argv[1] }); process.stdout.write(s.key("verp").toString("hex"));`;
    const run = () =>
      new Promise<string>((resolve, reject) => {
        const p = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script, dataDir], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
        let out = "";
        let err = "";
        p.stdout.on("data", (d: Buffer) => (out += d.toString()));
        p.stderr.on("data", (d: Buffer) => (err += d.toString()));
        p.once("exit", (code) => (code === 0 ? resolve(out) : reject(new Error(`exit ${code}: ${err}`))));
      });
    const outputs = await Promise.all([run(), run(), run(), run()]);
    expect(outputs[0]).toMatch(/^[0-9a-f]{64}$/);
    expect(new Set(outputs).size).toBe(1);
    expect(fs.readdirSync(dataDir)).toEqual([SECRET_FILE]);
  });

  it("refuses a damaged secret.key instead of replacing it", async () => {
    const dataDir = tempDir();
    fs.mkdirSync(dataDir, { recursive: true });
    fs.writeFileSync(path.join(dataDir, SECRET_FILE), "short\n");
    await expect(loadSecret({ dataDir })).rejects.toThrow(/damaged/);
    expect(fs.readFileSync(path.join(dataDir, SECRET_FILE), "utf8")).toBe("short\n");
  });
});

describe("sub-keys", () => {
  it("are 32 bytes, differ per purpose and per secret, and are stable", () => {
    const a = secretFromString("a".repeat(32));
    const b = secretFromString("b".repeat(32));
    expect(a.key("verp")).toHaveLength(32);
    expect(a.key("verp").equals(a.key("unsubscribe"))).toBe(false);
    expect(a.key("verp").equals(b.key("verp"))).toBe(false);
    expect(a.key("verp").equals(secretFromString("a".repeat(32)).key("verp"))).toBe(true);
  });
});

describe("seal / open", () => {
  const key = secretFromString("x".repeat(32)).key("dkim-key-encryption");
  const other = secretFromString("y".repeat(32)).key("dkim-key-encryption");

  it("round-trips, in the versioned v1.<nonce>.<ciphertext> form, with a new nonce each time", () => {
    const a = seal("-----BEGIN PRIVATE KEY-----", key, "domain:1");
    const b = seal("-----BEGIN PRIVATE KEY-----", key, "domain:1");
    expect(a).toMatch(/^v1\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+$/);
    expect(a).not.toBe(b);
    expect(a).not.toContain("PRIVATE");
    expect(open(a, key, "domain:1").toString()).toBe("-----BEGIN PRIVATE KEY-----");
  });

  it("refuses another key, another context, a changed byte, and unknown versions", () => {
    const sealed = seal("secret", key, "domain:1");
    expect(() => open(sealed, other, "domain:1")).toThrow();
    expect(() => open(sealed, key, "domain:2")).toThrow();
    const [v, nonce, body] = sealed.split(".") as [string, string, string];
    const bytes = Buffer.from(body, "base64url");
    bytes[0]! ^= 1;
    expect(() => open(`${v}.${nonce}.${bytes.toString("base64url")}`, key, "domain:1")).toThrow();
    expect(() => open(`v2.${nonce}.${body}`, key, "domain:1")).toThrow(/version/);
    expect(() => open("v1.abc", key)).toThrow();
  });
});
