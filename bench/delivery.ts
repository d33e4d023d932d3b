/**
 * Delivery benchmark (`npm run bench:delivery`).
 *
 * How fast the delivery engine (`node dist/main.js`, ROLE=worker) empties a queue of N messages
 * (default 20 000, ~5 KB text, one recipient each, over 20 domains d0.bench … d19.bench whose MX
 * is 127.0.0.1) into a fast SMTP sink on loopback (bench/sink.ts, a child process), against a
 * baseline that pushes the same bytes over the same number of connections with no database
 * (bench/baseline-sender.ts): the wire limit on this machine.
 *
 * Phases, each reported:
 *  1. Enqueue: the batch goes in through Postline's own `sendMessage` (compose + the one-statement
 *     insert of src/messages/insert.ts), 32 at a time, scheduled one day ahead so nothing is due.
 *  2. Baseline: the same composed bytes, pipelined, over min(DOMAIN_CONCURRENCY × 20, MAX_CONNECTIONS)
 *     reused connections.
 *  3. Throughput: the worker is started and left idle (LISTEN done, nothing due); then one
 *     transaction makes the whole batch due (each recipient at its created_at shifted to now, so
 *     due times are spaced as API traffic spaces them), refreshes the planner statistics (as
 *     autovacuum keeps them on a live system) and NOTIFYs, as an insert does. The clock starts
 *     when it has committed; it stops at the last delivered status committed (max(delivered_at));
 *     progress is polled every 100 ms. So the figure is the steady engine's (NOTIFY wake-up
 *     included), without Node's start-up and without competing with the enqueue.
 *     BENCH_CAMPAIGN=1: all due at one instant, statistics left from while the batch waited for
 *     tomorrow (a campaign scheduled ahead and analyzed by autovacuum meanwhile).
 *     During the run: CPU seconds of worker, its PostgreSQL backends, sink, this process and everything
 *     else on the machine (a shared machine makes the figures noisy), and a sample
 *     of what the worker's database sessions are doing every 100 ms (pg_stat_activity).
 *  4. Idle latency: 50 single messages, 50 ms apart, to the idle worker; accept → delivered is
 *     recipients.delivered_at − messages.created_at (both stamped by Postline); p50/p99.
 *  5. Worker RSS: the peak (VmHWM) of the worker above; then a fresh worker on a fresh database
 *     with 100 000 recipients queued for tomorrow (1 000 messages × 100 recipients via
 *     sendMessage), idle/polling for 5 s (BENCH_SKIP_RSS=1 skips this step).
 *
 * Exit 1 when the sink did not receive every message exactly once (or the database disagrees),
 * not for a missed target. Targets: ≥ 2 000 delivered/s, ≥ 25 % of the baseline, idle
 * accept→delivered p50 ≤ 50 ms, worker RSS ≤ 300 MB.
 *
 * Everything started is undone on every path (children SIGTERM'd, scratch databases dropped),
 * also on Ctrl-C.
 *
 * Env: DATABASE_URL, BENCH_MESSAGES (20000), BENCH_QUEUE_RSS (100000), BENCH_SKIP_RSS=1, BENCH_CAMPAIGN=1,
 * BENCH_DOMAIN_CONCURRENCY (10), BENCH_MAX_CONNECTIONS (100), BENCH_LOG_LEVEL (info),
 * BENCH_LOG_FILE=<path> (the worker's stdout log), BENCH_SKIP_BUILD=1,
 * BENCH_CPU_PROF=<dir> (the worker runs with --cpu-prof into <dir>), BENCH_WORKER_NODE_ARGS (more node flags
 * for the worker, e.g. "--trace-gc").
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import postgres from "postgres";
import { createAccount } from "../src/accounts/accounts.js";
import { openStore, type Store } from "../src/db/client.js";
import { QUEUE_CHANNEL, WEBHOOK_CHANNEL } from "../src/lib/channels.js";
import { sendMessage } from "../src/messages/send.js";
import type { SendMessageInput } from "../src/messages/schemas.js";
import { startDnsServer, type Zone } from "../test/helpers/dns-server.js";
import { buildDist, cleanups, cpuSecondsOf, createScratchDb, machineCpuSeconds, memoryOf, quantile, sleep, spawnChild, within, type Child, type ScratchDb } from "./lib.js";

const DATABASE_URL = process.env.DATABASE_URL || "postgres://postgres@127.0.0.1:5432/test";
const N = Number(process.env.BENCH_MESSAGES || 20_000);
const QUEUE_RSS = Number(process.env.BENCH_QUEUE_RSS || 100_000);
const SKIP_RSS = process.env.BENCH_SKIP_RSS === "1";
const CAMPAIGN = process.env.BENCH_CAMPAIGN === "1";
const DOMAINS = 20;
const DOMAIN_CONCURRENCY = Number(process.env.BENCH_DOMAIN_CONCURRENCY || 10);
const MAX_CONNECTIONS = Number(process.env.BENCH_MAX_CONNECTIONS || 100);
const LOG_LEVEL = process.env.BENCH_LOG_LEVEL || "info";
const ENQUEUE_CONCURRENCY = 32;
const LATENCY_COUNT = 50;
const LATENCY_GAP_MS = 50;
const RSS_IDLE_MS = 5_000;
const POLL_MS = 100;
const STALL_MS = 60_000;
const TARGET_RATE = 2_000;
const TARGET_RATIO = 0.25;
const TARGET_P50_MS = 50;
const TARGET_RSS = 300 * 1024 * 1024;
const FROM = "Bench <bench@example.com>";
const DAY_MS = 86_400_000;

const cpuProf = [
  ...(process.env.BENCH_CPU_PROF ? ["--cpu-prof", "--cpu-prof-dir", process.env.BENCH_CPU_PROF] : []),
  ...(process.env.BENCH_WORKER_NODE_ARGS?.split(" ").filter(Boolean) ?? []),
];
const tsx = ["--import", "tsx"];

const undo = cleanups();
const bail = (code: number, why: string) => {
  console.error(`\n${why}: cleaning up…`);
  void within(60_000, "cleanup", undo.run()).finally(() => process.exit(code));
};
process.on("SIGINT", () => bail(130, "interrupted"));
process.on("SIGTERM", () => bail(143, "terminated"));
setTimeout(() => bail(1, "benchmark watchdog"), (1_200 + N / 20 + QUEUE_RSS / 200) * 1000).unref();

// ─── Pieces ──────────────────────────────────────────────────────────────────────────────────

/** A scratch database, dropped by the cleanup even when the benchmark stops while creating it. */
async function scratchDb(): Promise<ScratchDb> {
  undo.check();
  const task = createScratchDb(DATABASE_URL);
  undo.push(async () => (await task.catch(() => null))?.drop());
  const db = await task;
  undo.check();
  return db;
}

function child(name: string, args: string[], env: Record<string, string>, opts: Parameters<typeof spawnChild>[4] = {}): Child {
  undo.check();
  const c = spawnChild(name, process.execPath, args, env, opts);
  undo.push(() => c.stop());
  return c;
}

async function openBenchStore(url: string): Promise<Store> {
  const store = await openStore({ url, poolSize: 16 });
  undo.push(() => store.close());
  return store;
}

/** ~5 KB of plain ASCII text in 72-character lines, different per message. */
function bodyText(i: number): string {
  const words = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua".split(" ");
  const lines = [`Benchmark message ${i}.`, ""];
  for (let l = 0; l < 68; l++) {
    let line = "";
    for (let w = (i + l) % words.length; line.length < 66; w = (w + 7) % words.length) line += (line ? " " : "") + words[w];
    lines.push(line);
  }
  return lines.join("\r\n") + "\r\n";
}

/** Runs `fn(i)` for i in [0, count) with `concurrency` in flight. */
async function forEachConcurrent(count: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      for (let i = next++; i < count; i = next++) {
        undo.check();
        await fn(i);
      }
    }),
  );
}

function send(store: Store, accountId: string, input: Omit<SendMessageInput, "from">) {
  return sendMessage(store, { from: FROM, ...input } as SendMessageInput, { accountId, maxMessageBytes: 20 * 1024 * 1024 });
}

/** Waits until the worker has LISTENed on the queue channel (its loop starts right after). */
async function waitListening(admin: postgres.Sql, worker: Child, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (worker.child.exitCode !== null) throw new Error(`worker exited (${worker.child.exitCode}) before it listened:\n${worker.stderrTail()}`);
    // One connection carries every LISTEN of the process; the webhook dispatcher's comes after
    // the worker's (src/server.ts), so either as the connection's last query means it is done.
    const [row] = await admin<{ n: number }[]>`
      select count(*)::int as n from pg_stat_activity
      where datname = current_database() and (query ilike ${`listen%${QUEUE_CHANNEL}%`} or query ilike ${`listen%${WEBHOOK_CHANNEL}%`})`;
    if (row!.n > 0) return;
    await sleep(50);
  }
  throw new Error(`the worker did not LISTEN within ${ms} ms:\n${worker.stderrTail()}`);
}

function startWorker(dbUrl: string, dnsAddress: string, sinkPort: number): Child {
  return child("worker", [...cpuProf, "dist/main.js"], {
    DATABASE_URL: dbUrl,
    ROLE: "worker",
    ADMIN_API_KEY: `pl_${randomBytes(32).toString("base64url")}`,
    DNS_SERVERS: dnsAddress,
    SMTP_PORT: String(sinkPort),
    DELIVERY_ALLOW_NETWORKS: "127.0.0.0/8",
    DOMAIN_CONCURRENCY: String(DOMAIN_CONCURRENCY),
    MAX_CONNECTIONS: String(MAX_CONNECTIONS),
    LOG_LEVEL,
    HELO_NAME: "postline.bench",
  }, { stdoutPath: process.env.BENCH_LOG_FILE });
}

interface SinkStats {
  connections: number;
  messages: number;
  recipients: number;
  distinct: number;
  duplicates: number;
  bytes: number;
  startedAt: number;
  lastAt: number;
}

/** What the worker's database sessions were doing, sampled (a poor man's active session history). */
function classify(query: string): string {
  const q = query.toLowerCase();
  if (q.startsWith("with picked")) return "claimDue (claim.ts)";
  if (q.includes("min(next_attempt_at)")) return "nextDueAt (claim.ts)";
  if (q.startsWith("select id, account_id, mail_from, raw")) return "loadMessages (worker.ts)";
  if (q.startsWith("with input")) return "outcomes: update recipients";
  if (q.startsWith("insert into attempts")) return "outcomes: insert attempts";
  if (q.startsWith("insert into events")) return "outcomes: insert events";
  if (q.includes("array_agg(status)")) return "outcomes: read statuses";
  if (q.startsWith("update messages m set status")) return "outcomes: update messages";
  if (q.startsWith("begin")) return "BEGIN";
  if (q.startsWith("commit")) return "COMMIT";
  if (q.includes("set locked_until")) return "extendLeases (lease.ts)";
  if (q.includes("set status = case")) return "release/reap (lease.ts)";
  return `other: ${q.slice(0, 50)}`;
}

// ─── Phases ──────────────────────────────────────────────────────────────────────────────────

async function enqueueBatch(store: Store, accountId: string, count: number, scheduledAt: string): Promise<number> {
  const started = performance.now();
  let done = 0;
  const progress = setInterval(() => process.stdout.write(`\r  enqueued ${done}/${count}…`), 1_000);
  try {
    await forEachConcurrent(count, ENQUEUE_CONCURRENCY, async (i) => {
      await send(store, accountId, { to: `u${i}@d${i % DOMAINS}.bench`, subject: `Delivery benchmark ${i}`, text: bodyText(i), scheduled_at: scheduledAt });
      done++;
    });
  } finally {
    clearInterval(progress);
    process.stdout.write("\r");
  }
  return (performance.now() - started) / 1000;
}

async function runBaseline(sink: Child, sinkPort: number, rawFile: string, connections: number) {
  await sink.ask({ type: "reset" });
  const base = child("baseline", [...tsx, "bench/baseline-sender.ts"], {
    BASE_PORT: String(sinkPort),
    BASE_COUNT: String(N),
    BASE_CONNECTIONS: String(connections),
    BASE_DOMAINS: String(DOMAINS),
    BASE_MESSAGE: rawFile,
  }, { ipc: true });
  const done = await base.waitFor<{ sent: number; failed: number; ms: number; firstError: string | null; bytes: number }>("done", 600_000);
  await base.stop();
  const seen = await sink.ask<SinkStats>({ type: "stats" });
  return { ...done, rate: done.sent / (done.ms / 1000), sink: seen };
}

interface Throughput {
  seconds: number;
  rate: number;
  delivered: number;
  other: Record<string, number>;
  firstMs: number;
  steadyRate: number;
  batches: number;
  sink: SinkStats;
  sinkDoneMs: number;
  cpu: { wall: number; worker: number; postgres: number; sink: number; bench: number; others: number; load: number };
  sessions: Map<string, number>;
  samples: number;
  stalled: boolean;
}

async function runThroughput(admin: postgres.Sql, worker: Child, sink: Child): Promise<Throughput> {
  const pid = worker.child.pid!;
  const sinkPid = sink.child.pid!;
  // PostgreSQL CPU is counted over the worker's backends only (the server is shared with others).
  const backends = async () =>
    (await admin<{ pid: number }[]>`select pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()`).map((r) => r.pid);
  const pgCpu0 = new Map((await backends()).map((p) => [p, cpuSecondsOf(p)]));
  const cpu0 = { worker: cpuSecondsOf(pid), sink: cpuSecondsOf(sinkPid), bench: process.cpuUsage(), machine: machineCpuSeconds() };

  // One transaction makes the batch due and wakes the worker (its NOTIFY is delivered at commit,
  // as insert.ts's is). Each recipient becomes due at its created_at shifted so that the newest is
  // due now: the due times keep the spacing they would have had if each message had been accepted
  // due (API traffic), and the planner statistics are refreshed in the same transaction, as
  // autovacuum keeps them on a live system. BENCH_CAMPAIGN=1 instead makes all due at one instant
  // with the statistics left as they were while the batch waited for tomorrow (a campaign
  // scheduled for 9:00, analyzed by autovacuum in the meantime).
  const releasedAt = new Date();
  const released = await admin.begin(async (tx) => {
    const [row] = await tx<{ n: number }[]>`
      with shift as (
        select ${releasedAt}::timestamptz - max(created_at) as d from recipients where status = 'queued'
      ), r as (
        update recipients set next_attempt_at = ${CAMPAIGN ? tx`${releasedAt}::timestamptz` : tx`created_at + (select d from shift)`}
        where status = 'queued' returning 1
      )
      select (select count(*) from r)::int as n`;
    if (!CAMPAIGN) await tx`analyze recipients`;
    await tx`select pg_notify(${QUEUE_CHANNEL}, '')`;
    return row!;
  });
  const t0 = Date.now();
  console.log(`  released ${released.n} recipients (transaction took ${t0 - releasedAt.getTime()} ms); measuring from its commit…`);

  const sessions = new Map<string, number>();
  let samples = 0;
  let last = -1;
  let lastChange = Date.now();
  let stalled = false;
  let lastPrint = 0;
  // Progress comes from the sink over IPC while messages are still arriving there: counting
  // the recipients table every 100 ms would cost PostgreSQL CPU on the machine under test. The
  // database is asked only once the sink has them all (or has stopped seeing new ones), until
  // the last outcome is committed.
  let sinkSeen = 0;
  let sinkChange = Date.now();
  for (;;) {
    undo.check();
    if (worker.child.exitCode !== null) throw new Error(`the worker exited (${worker.child.exitCode}) during the run:\n${worker.stderrTail()}`);
    const { recipients: atSink } = await sink.ask<SinkStats>({ type: "stats" });
    if (atSink !== sinkSeen) (sinkSeen = atSink), (sinkChange = Date.now());
    const fromSink = atSink < N && Date.now() - sinkChange < 2_000;
    const counts = fromSink
      ? null
      : (
          await admin<{ delivered: number; final: number; sending: number; deferred: number }[]>`
            select count(*) filter (where status = 'delivered')::int as delivered,
                   count(*) filter (where status in ('delivered', 'bounced', 'failed'))::int as final,
                   count(*) filter (where status = 'sending')::int as sending,
                   count(*) filter (where status = 'deferred')::int as deferred
            from recipients`
        )[0]!;
    const activity = await admin<{ state: string; wait: string | null; query: string }[]>`
      select state, wait_event_type || ':' || wait_event as wait, left(query, 80) as query from pg_stat_activity
      where datname = current_database() and pid <> pg_backend_pid() and state <> 'idle'`;
    samples++;
    for (const a of activity) {
      const what = a.state === "idle in transaction" ? "idle in transaction (waiting for the worker)" : classify(a.query.trim());
      const key = a.wait && a.state === "active" ? `${what} [wait ${a.wait}]` : what;
      sessions.set(key, (sessions.get(key) ?? 0) + 1);
    }
    if (Date.now() - lastPrint >= 1_000) {
      lastPrint = Date.now();
      const state = counts ? `delivered ${counts.delivered}/${N}, sending ${counts.sending}, deferred ${counts.deferred}` : `at the sink ${atSink}/${N}`;
      process.stdout.write(`\r  ${((Date.now() - t0) / 1000).toFixed(1)} s: ${state}   `);
    }
    if (counts) {
      if (counts.final >= N) break;
      if (counts.final !== last) {
        last = counts.final;
        lastChange = Date.now();
      } else if (Date.now() - lastChange > (counts.deferred > 0 ? 15_000 : STALL_MS)) {
        stalled = true;
        break;
      }
    }
    await sleep(counts && atSink >= N ? 20 : POLL_MS);
  }
  const benchCpu = process.cpuUsage(cpu0.bench);
  const cpu = {
    wall: (Date.now() - t0) / 1000,
    worker: cpuSecondsOf(pid) - cpu0.worker,
    postgres: (await backends()).reduce((sum, p) => sum + cpuSecondsOf(p) - (pgCpu0.get(p) ?? 0), 0),
    sink: cpuSecondsOf(sinkPid) - cpu0.sink,
    bench: (benchCpu.user + benchCpu.system) / 1e6,
    others: 0,
    load: os.loadavg()[0]!,
  };
  // Whatever else ran on the machine meanwhile (other people's tests make the figures noisy).
  cpu.others = Math.max(0, machineCpuSeconds() - cpu0.machine - cpu.worker - cpu.postgres - cpu.sink - cpu.bench);
  process.stdout.write("\n");

  const [f] = await admin<{ delivered: number; last: Date | null; first: Date | null; p10: Date | null; p90: Date | null; batches: number }[]>`
    select count(*)::int as delivered, max(delivered_at) as last, min(delivered_at) as first,
           percentile_disc(0.1) within group (order by delivered_at) as p10,
           percentile_disc(0.9) within group (order by delivered_at) as p90,
           count(distinct delivered_at)::int as batches
    from recipients where status = 'delivered'`;
  const others = await admin<{ status: string; n: number }[]>`
    select status, count(*)::int as n from recipients where status <> 'delivered' group by status`;
  const fin = f!;
  const seconds = fin.last ? (fin.last.getTime() - t0) / 1000 : NaN;
  const steadySpan = fin.p10 && fin.p90 ? (fin.p90.getTime() - fin.p10.getTime()) / 1000 : NaN;
  const sinkStats = await sink.ask<SinkStats>({ type: "stats" });
  return {
    seconds,
    rate: fin.delivered / seconds,
    delivered: fin.delivered,
    other: Object.fromEntries(others.map((o) => [o.status, o.n])),
    firstMs: fin.first ? fin.first.getTime() - t0 : NaN,
    steadyRate: (0.8 * fin.delivered) / steadySpan,
    batches: fin.batches,
    sink: sinkStats,
    sinkDoneMs: sinkStats.lastAt - t0,
    cpu,
    sessions,
    samples,
    stalled,
  };
}

async function runLatency(store: Store, accountId: string, admin: postgres.Sql) {
  const ids: string[] = [];
  for (let i = 0; i < LATENCY_COUNT; i++) {
    undo.check();
    const { result } = await send(store, accountId, { to: `lat${i}@d${i % DOMAINS}.bench`, subject: `Latency ${i}`, text: bodyText(i) });
    ids.push(result.id);
    await sleep(LATENCY_GAP_MS);
  }
  const deadline = Date.now() + 60_000;
  let rows: { ms: number | null; status: string }[] = [];
  while (Date.now() < deadline) {
    undo.check();
    rows = await admin<{ ms: number | null; status: string }[]>`
      select r.status, (extract(epoch from (r.delivered_at - m.created_at)) * 1000)::float8 as ms
      from recipients r join messages m on m.id = r.message_id where m.id = any(${ids})`;
    if (rows.length === ids.length && rows.every((r) => r.status === "delivered" || r.status === "bounced" || r.status === "failed")) break;
    await sleep(POLL_MS);
  }
  const ms = rows.filter((r) => r.status === "delivered" && r.ms !== null).map((r) => r.ms!).sort((a, b) => a - b);
  return { ms, delivered: ms.length };
}

async function runQueueRss(dnsAddress: string, sinkPort: number) {
  const db = await scratchDb();
  const store = await openBenchStore(db.url);
  await store.migrate();
  const account = await createAccount(store.db, "bench-rss");
  const perMessage = 100;
  const messages = Math.ceil(QUEUE_RSS / perMessage);
  const tomorrow = new Date(Date.now() + DAY_MS).toISOString();
  const started = performance.now();
  await forEachConcurrent(messages, ENQUEUE_CONCURRENCY, async (j) => {
    const n = Math.min(perMessage, QUEUE_RSS - j * perMessage);
    const to = Array.from({ length: n }, (_, k) => `q${j}-${k}@d${k % DOMAINS}.bench`);
    await send(store, account.id, { to, subject: `Queued ${j}`, text: bodyText(j), scheduled_at: tomorrow });
  });
  const enqueueS = (performance.now() - started) / 1000;
  await store.close();
  const admin = postgres(db.url, { max: 1, onnotice: () => {} });
  undo.push(() => admin.end({ timeout: 5 }));
  const [q] = await admin<{ n: number }[]>`select count(*)::int as n from recipients where status = 'queued'`;
  console.log(`  ${q!.n} recipients queued for tomorrow (${messages} messages × ${perMessage}) in ${enqueueS.toFixed(1)} s; starting a fresh worker…`);
  const worker = startWorker(db.url, dnsAddress, sinkPort);
  await waitListening(admin, worker);
  let peakSampled = 0;
  const until = Date.now() + RSS_IDLE_MS;
  while (Date.now() < until) {
    undo.check();
    peakSampled = Math.max(peakSampled, memoryOf(worker.child.pid!)?.rss ?? 0);
    await sleep(POLL_MS);
  }
  const mem = memoryOf(worker.child.pid!);
  await worker.stop();
  const [still] = await admin<{ n: number }[]>`select count(*)::int as n from recipients where status = 'queued'`;
  return { queued: q!.n, stillQueued: still!.n, peak: Math.max(mem?.peak ?? 0, peakSampled), rss: mem?.rss ?? 0 };
}

// ─── Main ────────────────────────────────────────────────────────────────────────────────────

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MB`;
const mark = (ok: boolean) => (ok ? "PASS" : "MISS");

async function main(): Promise<number> {
  if (!(Number.isInteger(N) && N >= 100)) throw new Error(`BENCH_MESSAGES must be an integer ≥ 100 (got ${process.env.BENCH_MESSAGES})`);
  const connections = Math.min(DOMAIN_CONCURRENCY * DOMAINS, MAX_CONNECTIONS);
  const cpus = os.cpus();
  console.log(`Postline delivery benchmark — ${N} messages (~5 KB, 1 recipient) over ${DOMAINS} domains to a loopback sink`);
  console.log(`Worker: DOMAIN_CONCURRENCY=${DOMAIN_CONCURRENCY}, MAX_CONNECTIONS=${MAX_CONNECTIONS}, LOG_LEVEL=${LOG_LEVEL}; baseline: ${connections} connections`);
  console.log(`Machine: ${cpus.length} cores (${cpus[0]?.model.trim() ?? "?"}), node ${process.version}, ${os.platform()} ${os.release()}`);
  console.log("PostgreSQL, worker, sink and this process share the machine.\n");

  buildDist();

  // DNS: every dN.bench has one MX, mx.dN.bench → 127.0.0.1 (the sink; SMTP_PORT gives the port).
  const zone: Zone = {};
  for (let d = 0; d < DOMAINS; d++) {
    zone[`d${d}.bench`] = { MX: [{ preference: 10, exchange: `mx.d${d}.bench` }] };
    zone[`mx.d${d}.bench`] = { A: ["127.0.0.1"] };
  }
  const dns = await startDnsServer(zone);
  undo.push(() => dns.close());

  const sink = child("sink", [...tsx, "bench/sink.ts"], {}, { ipc: true });
  const { port: sinkPort } = await sink.waitFor<{ port: number }>("ready", 30_000);

  // 1. Enqueue, nothing due yet.
  console.log(`1. Enqueue ${N} messages through sendMessage (${ENQUEUE_CONCURRENCY} concurrent), scheduled for tomorrow:`);
  const db = await scratchDb();
  let store = await openBenchStore(db.url);
  await store.migrate();
  const account = await createAccount(store.db, "bench");
  const enqueueS = await enqueueBatch(store, account.id, N, new Date(Date.now() + DAY_MS).toISOString());
  await store.close(); // the worker's sessions are then the only other ones on this database
  const admin = postgres(db.url, { max: 1, onnotice: () => {}, connection: { application_name: "bench-delivery" } });
  undo.push(() => admin.end({ timeout: 5 }));
  // Statistics as autovacuum would have gathered them by now (the batch is due tomorrow).
  await admin`analyze recipients`;
  await admin`analyze messages`;
  const [sample] = await admin<{ raw: Buffer; avg: number }[]>`
    select (select raw from messages limit 1) as raw, (select avg(size)::float8 from messages) as avg`;
  const rawFile = path.join(os.tmpdir(), `postline-bench-${randomBytes(4).toString("hex")}.eml`);
  fs.writeFileSync(rawFile, sample!.raw);
  undo.push(async () => fs.rmSync(rawFile, { force: true }));
  console.log(`  ${N} messages in ${enqueueS.toFixed(1)} s (${(N / enqueueS).toFixed(0)}/s); average size ${sample!.avg.toFixed(0)} bytes\n`);

  // 2. Baseline.
  console.log(`2. Baseline: pipelined sender, no database, ${connections} connections, the same bytes:`);
  const base = await runBaseline(sink, sinkPort, rawFile, connections);
  console.log(`  ${base.sent} sent in ${(base.ms / 1000).toFixed(2)} s = ${base.rate.toFixed(0)} msg/s` + (base.firstError ? ` (first error: ${base.firstError})` : ""));
  console.log(`  sink: ${base.sink.recipients} recipients, ${base.sink.connections} connections, ${mb(base.sink.bytes)}\n`);

  // 3. Throughput.
  console.log(`3. Postline: worker started idle, then the batch made due in one NOTIFYing transaction${CAMPAIGN ? " (campaign shape: one due time, statistics from before)" : ""}:`);
  await sink.ask({ type: "reset" });
  const worker = startWorker(db.url, dns.address, sinkPort);
  await waitListening(admin, worker);
  await sleep(1_000); // idle: its loop has found nothing due and sleeps until NOTIFY
  const run = await runThroughput(admin, worker, sink);
  console.log(`  ${run.delivered} delivered in ${run.seconds.toFixed(2)} s = ${run.rate.toFixed(0)} msg/s` +
    ` (first after ${run.firstMs.toFixed(0)} ms; middle 80 % at ${run.steadyRate.toFixed(0)} msg/s; ${run.batches} outcome batches, ~${(run.delivered / run.batches).toFixed(0)} per batch)`);
  console.log(`  sink: ${run.sink.recipients} recipients (${run.sink.distinct} distinct, ${run.sink.duplicates} repeated), ${run.sink.connections} connections, last at +${(run.sinkDoneMs / 1000).toFixed(2)} s`);
  if (Object.keys(run.other).length) console.log(`  not delivered: ${JSON.stringify(run.other)}${run.stalled ? " (no progress: gave up waiting)" : ""}`);
  const core = (s: number) => `${s.toFixed(1)} s (${((s / run.cpu.wall) * 100).toFixed(0)} % of a core)`;
  console.log(`  CPU over ${run.cpu.wall.toFixed(1)} s wall, ${cpus.length} cores: worker ${core(run.cpu.worker)}, its PostgreSQL backends ${core(run.cpu.postgres)}, sink ${core(run.cpu.sink)}, this process ${core(run.cpu.bench)}; other processes ${core(run.cpu.others)} (load average ${run.cpu.load.toFixed(1)})`);
  console.log(`  worker's PostgreSQL sessions, sampled every ${POLL_MS} ms (average sessions busy):`);
  for (const [what, n] of [...run.sessions.entries()].sort((a, b) => b[1] - a[1]).slice(0, 12))
    console.log(`    ${(n / run.samples).toFixed(2).padStart(5)}  ${what}`);
  console.log();

  // 4. Idle latency.
  console.log(`4. Idle latency: ${LATENCY_COUNT} single messages, ${LATENCY_GAP_MS} ms apart:`);
  await sink.ask({ type: "reset" });
  store = await openBenchStore(db.url);
  const lat = await runLatency(store, account.id, admin);
  await store.close();
  const latSink = await sink.ask<SinkStats>({ type: "stats" });
  const p50 = quantile(lat.ms, 0.5);
  const p99 = quantile(lat.ms, 0.99);
  console.log(`  accept → delivered: p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, min ${quantile(lat.ms, 0).toFixed(1)}, max ${quantile(lat.ms, 1).toFixed(1)} (${lat.delivered}/${LATENCY_COUNT} delivered; sink got ${latSink.recipients})`);
  const workerMem = memoryOf(worker.child.pid!);
  await worker.stop();
  console.log(`  worker peak RSS over phases 3–4: ${workerMem ? mb(workerMem.peak) : "?"}\n`);

  // 5. RSS with a deep queue.
  let queue: Awaited<ReturnType<typeof runQueueRss>> | null = null;
  if (!SKIP_RSS) {
    console.log(`5. Worker RSS with ${QUEUE_RSS} recipients queued (due tomorrow), ${RSS_IDLE_MS / 1000} s idle:`);
    queue = await runQueueRss(dns.address, sinkPort);
    console.log(`  peak RSS ${mb(queue.peak)} (RSS at the end ${mb(queue.rss)}); ${queue.stillQueued} still queued\n`);
  } else console.log("5. Worker RSS with a deep queue: skipped (BENCH_SKIP_RSS=1)\n");

  // Summary.
  const ratio = run.rate / base.rate;
  const peakRss = Math.max(workerMem?.peak ?? 0, queue?.peak ?? 0);
  console.log("Summary");
  console.log(`  baseline (wire limit)   ${base.rate.toFixed(0).padStart(7)} msg/s`);
  console.log(`  Postline delivered      ${run.rate.toFixed(0).padStart(7)} msg/s   (${(ratio * 100).toFixed(1)} % of baseline)`);
  console.log(`  Target ≥ ${TARGET_RATE} delivered/s:           ${mark(run.rate >= TARGET_RATE)} (${run.rate.toFixed(0)})`);
  console.log(`  Target ≥ ${TARGET_RATIO * 100} % of baseline:             ${mark(ratio >= TARGET_RATIO)} (${(ratio * 100).toFixed(1)} %)`);
  console.log(`  Target idle p50 ≤ ${TARGET_P50_MS} ms:             ${mark(p50 <= TARGET_P50_MS)} (p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms)`);
  console.log(`  Target worker RSS ≤ ${mb(TARGET_RSS)}:        ${mark(peakRss > 0 && peakRss <= TARGET_RSS)} (run ${workerMem ? mb(workerMem.peak) : "?"}` +
    `${queue ? `, ${queue.queued} queued ${mb(queue.peak)}` : ""})`);

  const failures = [
    run.sink.recipients !== N && `the sink received ${run.sink.recipients} recipients in the throughput run, not ${N}`,
    run.sink.duplicates > 0 && `${run.sink.duplicates} recipients were delivered more than once`,
    run.delivered !== N && `${run.delivered} recipients are 'delivered' in the database, not ${N}`,
    latSink.recipients !== LATENCY_COUNT && `the sink received ${latSink.recipients} of ${LATENCY_COUNT} latency messages`,
    lat.delivered !== LATENCY_COUNT && `${lat.delivered} of ${LATENCY_COUNT} latency messages are 'delivered'`,
    base.sent !== N && `the baseline sent ${base.sent} of ${N}`,
  ].filter((f): f is string => typeof f === "string");
  for (const f of failures) console.error(`FAIL: ${f}`);
  return failures.length ? 1 : 0;
}

let code = 1;
try {
  code = await main();
} catch (err) {
  if (!undo.stopping) console.error(`\nbenchmark failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
}
await within(60_000, "cleanup", undo.run()).catch((err: unknown) => console.error(String(err)));
process.exit(code);
