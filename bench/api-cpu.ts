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
import { cpuSecondsOf, createScratchDb, freePort, spawnServer, waitReady } from "./lib.js";

const DATABASE_URL = process.env.DATABASE_URL || "postgres://postgres@127.0.0.1:5432/test";
const N = Number(process.env.BENCH_REQUESTS || 20_000);
const BODY = JSON.stringify({ from: "Alice <alice@example.com>", to: ["bob@example.org"], subject: "Hi", text: "Hello" });

/** CPU seconds of every PostgreSQL process (the benchmark runs alone on its server). */
const pgSeconds = () =>
  fs
    .readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        return fs.readFileSync(`/proc/${d}/comm`, "utf8").trim() === "postgres";
      } catch {
        return false; // exited meanwhile
      }
    })
    .reduce((sum, d) => sum + cpuSecondsOf(Number(d)), 0);

const db = await createScratchDb(DATABASE_URL);
const port = await freePort();
const adminKey = `pl_${randomBytes(32).toString("base64url")}`;
const baseline = process.env.BENCH_TARGET === "baseline";
const server = spawnServer(baseline ? "baseline" : "postline", port, process.execPath, [...(process.env.BENCH_NODE_ARGS?.split(" ").filter(Boolean) ?? []), ...(baseline ? ["--import", "tsx", "bench/baseline-server.ts"] : ["dist/main.js"])], {
  DATABASE_URL: db.url, PORT: String(port), HOST: "127.0.0.1", ROLE: "api", ADMIN_API_KEY: adminKey, LOG_LEVEL: "info", REQUIRE_VERIFIED_DOMAIN: "false",
});
try {
  await waitReady(server);
  let key = `pl_${"x".repeat(43)}`; // the baseline ignores it
  if (!baseline) {
    const res = await fetch(`${server.baseUrl}/accounts`, { method: "POST", headers: { authorization: `Bearer ${adminKey}`, "content-type": "application/json" }, body: JSON.stringify({ name: "bench" }) });
    key = ((await res.json()) as { api_key: { key: string } }).api_key.key;
  }
  const run = (amount: number) =>
    autocannon({ url: server.baseUrl + "/messages", method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${key}` }, body: BODY, connections: 64, amount });
  await run(5_000);
  const pid = server.child.pid!;
  const [n0, p0] = [cpuSecondsOf(pid), pgSeconds()];
  const r = await run(N);
  const [n1, p1] = [cpuSecondsOf(pid), pgSeconds()];
  const per = (seconds: number) => ((seconds * 1e6) / r["2xx"]).toFixed(0);
  console.log(`${baseline ? "baseline" : "Postline"}: ${r["2xx"]} of ${N} answered 2xx (p99 ${r.latency.p99} ms); ${per(n1 - n0)} µs CPU per message in the server process, ${per(p1 - p0)} µs in PostgreSQL`);
} finally {
  await server.stop();
  await db.drop();
}
