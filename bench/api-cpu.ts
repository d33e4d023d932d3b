/**
 * CPU cost of one POST /messages (`npm run bench:api-cpu`): CPU microseconds that Postline's
 * process (user + system, from /proc) and its PostgreSQL backends spend per accepted message
 * at 64 connections, a fixed number of requests. Steadier than req/s on a shared machine, so
 * it is the figure to compare changes by; bench:api stays the judged throughput figure.
 * BENCH_TARGET=baseline measures bench/baseline-server.ts the same way; BENCH_NODE_ARGS adds
 * node flags (e.g. --cpu-prof); BENCH_REQUESTS (20000).
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import autocannon from "autocannon";
import { createScratchDb, freePort, spawnServer, waitReady } from "./lib.js";

const DATABASE_URL = process.env.DATABASE_URL || "postgres://postgres@127.0.0.1:5432/test";
const N = Number(process.env.BENCH_REQUESTS || 20_000);
const BODY = JSON.stringify({ from: "Alice <alice@example.com>", to: ["bob@example.org"], subject: "Hi", text: "Hello" });

const ticks = (pid: number) => {
  const f = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return Number(f[11]) + Number(f[12]); // utime + stime, clock ticks (100 Hz)
};
const pgTicks = () => {
  let t = 0;
  for (const d of fs.readdirSync("/proc").filter((x) => /^\d+$/.test(x))) {
    try {
      if (fs.readFileSync(`/proc/${d}/comm`, "utf8").trim() === "postgres") t += ticks(Number(d));
    } catch {}
  }
  return t;
};

const db = await createScratchDb(DATABASE_URL);
const port = await freePort();
const adminKey = `pl_${randomBytes(32).toString("base64url")}`;
const baseline = process.env.BENCH_TARGET === "baseline";
const server = spawnServer("postline", port, process.execPath, [...(process.env.BENCH_NODE_ARGS?.split(" ").filter(Boolean) ?? []), ...(baseline ? ["--import", "tsx", "bench/baseline-server.ts"] : ["dist/main.js"])], {
  DATABASE_URL: db.url, PORT: String(port), HOST: "127.0.0.1", ROLE: "api", ADMIN_API_KEY: adminKey, LOG_LEVEL: "info", REQUIRE_VERIFIED_DOMAIN: "false",
});
try {
  await waitReady(server);
  const res = await fetch(`${server.baseUrl}/accounts`, { method: "POST", headers: { authorization: `Bearer ${adminKey}`, "content-type": "application/json" }, body: JSON.stringify({ name: "bench" }) });
  const key = baseline ? "x" : ((await res.json()) as { api_key: { key: string } }).api_key.key;
  const run = (amount: number) =>
    autocannon({ url: server.baseUrl + "/messages", method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${key}` }, body: BODY, connections: 64, amount });
  await run(5_000);
  const pid = server.child.pid!;
  const [n0, p0, t0] = [ticks(pid), pgTicks(), performance.now()];
  const r = await run(N);
  const [n1, p1, t1] = [ticks(pid), pgTicks(), performance.now()];
  const per = (t: number) => ((t * 10_000) / r["2xx"]).toFixed(0);
  console.log(`${r["2xx"]} accepted in ${((t1 - t0) / 1000).toFixed(1)} s (${((r["2xx"] * 1000) / (t1 - t0)).toFixed(0)}/s, p99 ${r.latency.p99} ms): Postline ${per(n1 - n0)} µs CPU per message, PostgreSQL ${per(p1 - p0)} µs`);
} finally {
  await server.stop();
  await db.drop();
}
