/**
 * API throughput benchmark (`npm run bench:api`).
 *
 * Measures how many POST /messages per second Postline accepts (2xx per second) and its p50/p99
 * latency under 64 concurrent keep-alive connections, against a baseline on the same stack: a
 * bare Hono + postgres.js server that inserts the body as one jsonb row (bench/baseline-server.ts).
 * The ratio shows what Postline's own work costs — auth look-up, validation, MIME composition,
 * a transaction writing the message and recipient rows, and one access-log line per request.
 *
 * Each server gets a scratch database on the PostgreSQL of DATABASE_URL (dropped at the end,
 * also on failure or Ctrl-C) and runs alone: baseline first, then Postline, each with a 2 s
 * warm-up that is not measured. Afterwards the messages rows in Postline's database are counted
 * to check no accepted message was lost. Exit 1 when more than 0.1 % of Postline's answers are
 * not 202, or a message is missing; the targets (≥ 50 % of baseline, p99 ≤ 30 ms) are reported.
 *
 * Env: DATABASE_URL, BENCH_DURATION (s, default 10), BENCH_LOG_LEVEL (default info),
 * BENCH_SKIP_BUILD=1, BENCH_CPU_PROF=<dir> (runs both servers with --cpu-prof into <dir>),
 * BENCH_LOG_FILE=<path> (Postline's stdout log goes there instead of /dev/null).
 */
import { randomBytes } from "node:crypto";
import os from "node:os";
import type { Result } from "autocannon";
import { buildDist, countRows, createScratchDb, drive, freePort, spawnServer, waitReady, within, type Load, type ScratchDb, type Server } from "./lib.js";

const DATABASE_URL = process.env.DATABASE_URL || "postgres://postgres@127.0.0.1:5432/test";
const DURATION = Number(process.env.BENCH_DURATION || 10);
const WARMUP = 2;
const CONNECTIONS = 64;
const LOG_LEVEL = process.env.BENCH_LOG_LEVEL || "info";
const TARGET_RATIO = 0.5;
const TARGET_P99_MS = 30;
const MAX_ERROR_SHARE = 0.001;

const cpuProf = process.env.BENCH_CPU_PROF ? ["--cpu-prof", "--cpu-prof-dir", process.env.BENCH_CPU_PROF] : [];
const BODY = JSON.stringify({ from: "Alice <alice@example.com>", to: ["bob@example.org"], subject: "Hi", text: "Hello" });

// Everything started is registered here and undone in reverse order, whatever happens.
const cleanups: (() => Promise<void>)[] = [];
const creating = new Set<Promise<unknown>>(); // scratch databases being created right now
let stopping = false;
let cleaning: Promise<void> | null = null;
function cleanup(): Promise<void> {
  stopping = true;
  cleaning ??= (async () => {
    await Promise.allSettled([...creating]);
    for (let fn = cleanups.pop(); fn; fn = cleanups.pop()) await fn().catch((err: unknown) => console.error(`cleanup: ${String(err)}`));
  })();
  return cleaning;
}
const bail = (code: number, why: string) => {
  console.error(`\n${why}: cleaning up…`);
  void within(30_000, "cleanup", cleanup()).finally(() => process.exit(code));
};
process.on("SIGINT", () => bail(130, "interrupted"));
process.on("SIGTERM", () => bail(143, "terminated"));
setTimeout(() => bail(1, "benchmark watchdog"), ((DURATION + WARMUP) * 2 + 300) * 1000).unref();

function checkNotStopping() {
  if (stopping) throw new Error("stopping");
}

async function scratchDb(): Promise<ScratchDb> {
  checkNotStopping();
  // Registered before the promise settles, so a cleanup that waits for `creating` drops it too.
  const task = createScratchDb(DATABASE_URL).then((db) => (cleanups.push(db.drop), db));
  creating.add(task);
  const db = await task.finally(() => creating.delete(task));
  checkNotStopping();
  return db;
}

function start(name: string, port: number, args: string[], env: Record<string, string>, stdoutPath?: string): Server {
  checkNotStopping();
  const server = spawnServer(name, port, process.execPath, args, env, stdoutPath);
  cleanups.push(() => server.stop());
  return server;
}

/** Warm-up, then the measured run; both results are returned. */
async function measure(server: Server, load: Load): Promise<{ warm: Result; run: Result }> {
  console.log(`  ${server.name}: warm-up ${WARMUP} s…`);
  const warm = await drive(server, load, WARMUP);
  checkNotStopping();
  console.log(`  ${server.name}: measuring ${DURATION} s with ${CONNECTIONS} connections…`);
  const run = await drive(server, load, DURATION);
  checkNotStopping();
  return { warm, run };
}

const answered = (r: Result) => Object.values(r.statusCodeStats).reduce((n, s) => n + s.count, 0);
const rps = (r: Result) => r["2xx"] / r.duration;
const codes = (r: Result) =>
  Object.entries(r.statusCodeStats)
    .map(([code, s]) => `${code}×${s.count}`)
    .join(", ");

async function runBaseline(load: Load) {
  const db = await scratchDb();
  const port = await freePort();
  const server = start("baseline", port, [...cpuProf, "--import", "tsx", "bench/baseline-server.ts"], {
    DATABASE_URL: db.url,
    PORT: String(port),
    HOST: "127.0.0.1",
  });
  await waitReady(server);
  const result = await measure(server, load);
  await server.stop();
  return result;
}

async function runPostline(load: Omit<Load, "headers">) {
  const db = await scratchDb();
  const port = await freePort();
  const adminKey = `pl_${randomBytes(32).toString("base64url")}`;
  // The bench account owns no sending domain: without REQUIRE_VERIFIED_DOMAIN=false every answer
  // would be 422. Messages therefore go unsigned (the domain look-up still runs); DKIM signing
  // is measured by bench:compose.
  const env = { DATABASE_URL: db.url, PORT: String(port), HOST: "127.0.0.1", ROLE: "api", ADMIN_API_KEY: adminKey, LOG_LEVEL, REQUIRE_VERIFIED_DOMAIN: "false" };
  const server = start("postline", port, [...cpuProf, "dist/main.js"], env, process.env.BENCH_LOG_FILE);
  await waitReady(server);

  const res = await fetch(`${server.baseUrl}/accounts`, {
    method: "POST",
    headers: { authorization: `Bearer ${adminKey}`, "content-type": "application/json" },
    body: JSON.stringify({ name: "bench" }),
    signal: AbortSignal.timeout(10_000),
  });
  const account = (await res.json()) as { api_key?: { key?: string } };
  if (res.status !== 201 || !account.api_key?.key) throw new Error(`POST /accounts answered ${res.status}: ${JSON.stringify(account)}`);

  const result = await measure(server, { ...load, headers: { "content-type": "application/json", authorization: `Bearer ${account.api_key.key}` } });
  await server.stop(); // graceful: in-flight requests finish before the count
  const stored = await countRows(db.url, "messages");
  return { ...result, stored };
}

async function main(): Promise<number> {
  if (!(DURATION >= 1)) throw new Error(`BENCH_DURATION must be a number of seconds ≥ 1 (got ${process.env.BENCH_DURATION})`);
  const cpus = os.cpus();
  console.log(`Postline API benchmark — POST /messages, ${CONNECTIONS} connections, ${DURATION} s (+${WARMUP} s warm-up), LOG_LEVEL=${LOG_LEVEL}`);
  console.log(`Machine: ${cpus.length} cores (${cpus[0]?.model.trim() ?? "?"}), node ${process.version}, ${os.platform()} ${os.release()}`);
  console.log("Order: baseline first, then Postline (one server at a time; PostgreSQL and autocannon share the machine)\n");
  if (DURATION < 10) console.log(`note: BENCH_DURATION=${DURATION} is below the default 10 s; figures are noisier\n`);

  buildDist();

  const load = { path: "/messages", body: BODY, connections: CONNECTIONS };
  console.log("Baseline (bare Hono + postgres.js insert):");
  // The baseline gets the same headers; it ignores Authorization.
  const base = await runBaseline({ ...load, headers: { "content-type": "application/json", authorization: `Bearer pl_${"x".repeat(43)}` } });
  console.log("Postline (node dist/main.js, ROLE=api):");
  const pl = await runPostline(load);

  const row = (name: string, r: Result) =>
    `  ${name.padEnd(9)} ${rps(r).toFixed(0).padStart(8)} req/s   p50 ${String(r.latency.p50).padStart(4)} ms   p99 ${String(r.latency.p99).padStart(4)} ms   ` +
    `(${r["2xx"]} 2xx in ${r.duration.toFixed(1)} s; non-2xx ${r.non2xx}, errors ${r.errors}, timeouts ${r.timeouts}; ${codes(r)})`;
  const ratio = rps(pl.run) / rps(base.run);
  const plNon202 = [pl.warm, pl.run].reduce((n, r) => n + answered(r) - (r.statusCodeStats["202"]?.count ?? 0) + r.errors, 0);
  const plTotal = [pl.warm, pl.run].reduce((n, r) => n + answered(r) + r.errors, 0);
  const accepted = pl.warm["2xx"] + pl.run["2xx"];
  const mark = (ok: boolean) => (ok ? "PASS" : "MISS");

  console.log("\nResults (2xx per second over the measured run; latency of all answers):");
  console.log(row("baseline", base.run));
  console.log(row("postline", pl.run));
  console.log(`\n  Postline / baseline throughput: ${(ratio * 100).toFixed(1)} %`);
  console.log(`  Target ≥ 50 % of baseline throughput: ${mark(ratio >= TARGET_RATIO)}`);
  console.log(`  Target p99 ≤ ${TARGET_P99_MS} ms: ${mark(pl.run.latency.p99 <= TARGET_P99_MS)} (p99 ${pl.run.latency.p99} ms)`);
  console.log(`  Messages stored: ${pl.stored} rows ≥ ${accepted} accepted (warm-up + run): ${pl.stored >= accepted ? "OK" : "LOST MESSAGES"}`);
  console.log(`  Postline non-202 answers or errors: ${plNon202} of ${plTotal} (${((plNon202 / Math.max(plTotal, 1)) * 100).toFixed(3)} %, limit 0.1 %)`);
  if (base.run.non2xx || base.run.errors) console.log(`  warning: the baseline had ${base.run.non2xx} non-2xx and ${base.run.errors} errors`);

  const failures = [
    plNon202 > plTotal * MAX_ERROR_SHARE && "more than 0.1 % of Postline's answers were not 202",
    pl.stored < accepted && "fewer messages stored than accepted",
    base.run["2xx"] === 0 && "the baseline accepted nothing",
  ].filter((f): f is string => typeof f === "string");
  for (const f of failures) console.error(`FAIL: ${f}`);
  return failures.length ? 1 : 0;
}

let code = 1;
try {
  code = await main();
} catch (err) {
  if (!stopping) console.error(`\nbenchmark failed: ${err instanceof Error ? err.message : String(err)}`);
}
await within(30_000, "cleanup", cleanup()).catch((err: unknown) => console.error(String(err)));
process.exit(code);
