/**
 * Helpers for the benchmarks: scratch PostgreSQL databases, free ports, child servers that
 * stop cleanly, a bounded readiness poll, and one autocannon run.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import autocannon, { type Result } from "autocannon";
import postgres from "postgres";

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Builds dist/ with `npm run build` unless BENCH_SKIP_BUILD=1: the benchmarks measure the production build. */
export function buildDist(): void {
  if (process.env.BENCH_SKIP_BUILD === "1") return;
  console.log("Building (npm run build)…");
  const b = spawnSync("npm", ["run", "build", "--silent"], { stdio: "inherit", timeout: 300_000 });
  if (b.status !== 0) throw new Error(`npm run build failed (${b.status ?? b.signal ?? b.error?.message})`);
}

/**
 * A module of the production build (dist/, after buildDist), typed as its source:
 * `fromDist<typeof import("../src/x.js")>("x.js")`. What runs in a benchmark's own process is
 * then what `node dist/main.js` runs; tsx's transform of src/ adds a `__name` call for every
 * closure created, which showed up at several µs per event in bench:webhooks' profile.
 */
export function fromDist<T>(modulePath: string): Promise<T> {
  return import(new URL(`../dist/${modulePath}`, import.meta.url).href) as Promise<T>;
}

/** Rejects with `what timed out` when `p` takes longer than `ms`. */
export async function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A port nobody listens on right now (bind port 0, read it, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** Runs `fn` with a one-connection client on the server's maintenance URL. */
async function withAdmin<T>(url: string, fn: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const sql = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 10 });
  try {
    return await fn(sql);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

export interface ScratchDb {
  name: string;
  url: string;
  drop(): Promise<void>;
}

/**
 * Creates `bench_<hex>` on the server of `baseUrl`; `drop()` removes it (forcing out any session),
 * unless BENCH_KEEP_DB=1 (to inspect the data afterwards, e.g. EXPLAIN a statement on it).
 */
export async function createScratchDb(baseUrl: string): Promise<ScratchDb> {
  const name = `bench_${randomBytes(6).toString("hex")}`;
  await withAdmin(baseUrl, (sql) => sql`create database ${sql(name)}`);
  const u = new URL(baseUrl);
  u.pathname = `/${name}`;
  let dropped = false;
  return {
    name,
    url: u.toString(),
    drop: async () => {
      if (dropped || process.env.BENCH_KEEP_DB === "1") return;
      dropped = true;
      await withAdmin(baseUrl, (sql) => sql`drop database if exists ${sql(name)} with (force)`);
    },
  };
}

/** Counts rows of `table` in the database at `url`. */
export async function countRows(url: string, table: string): Promise<number> {
  return withAdmin(url, async (sql) => {
    const [row] = await sql<{ n: string }[]>`select count(*)::text as n from ${sql(table)}`;
    return Number(row!.n);
  });
}

export interface Server {
  name: string;
  baseUrl: string;
  child: ChildProcess;
  /** The last lines the child wrote to stderr (shown when something fails). */
  stderrTail(): string;
  /** SIGTERM, wait up to `ms` for exit, then SIGKILL. Safe to call twice. */
  stop(ms?: number): Promise<void>;
}

/** Spawns a server whose stdout goes to `stdoutPath` (default /dev/null) and whose stderr is forwarded with a prefix. */
export function spawnServer(name: string, port: number, cmd: string, args: string[], env: Record<string, string>, stdoutPath = "/dev/null"): Server {
  const out = fs.openSync(stdoutPath, "w");
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ["ignore", out, "pipe"] });
  fs.closeSync(out);
  const tail: string[] = [];
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
    for (const line of chunk.split("\n").filter(Boolean)) {
      tail.push(line);
      if (tail.length > 20) tail.shift();
      process.stderr.write(`[${name}] ${line}\n`);
    }
  });
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once("exit", () => resolve());
  });
  return {
    name,
    baseUrl: `http://127.0.0.1:${port}`,
    child,
    stderrTail: () => tail.join("\n"),
    stop: async (ms = 10_000) => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      const done = await Promise.race([exited.then(() => true), sleep(ms).then(() => false)]);
      if (!done) {
        child.kill("SIGKILL");
        await within(5_000, `${name} exit after SIGKILL`, exited);
      }
    },
  };
}

/** Polls GET `${server.baseUrl}/readyz` until 200; fails if the child exits or `ms` pass. */
export async function waitReady(server: Server, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (server.child.exitCode !== null) throw new Error(`${server.name} exited (${server.child.exitCode}) before ready:\n${server.stderrTail()}`);
    try {
      const res = await fetch(`${server.baseUrl}/readyz`, { signal: AbortSignal.timeout(1_000) });
      await res.arrayBuffer();
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  throw new Error(`${server.name} was not ready within ${ms} ms:\n${server.stderrTail()}`);
}

export interface Load {
  path: string;
  headers: Record<string, string>;
  body: string;
  connections: number;
}

/** One autocannon run of `seconds` against `server`. */
export async function drive(server: Server, load: Load, seconds: number): Promise<Result> {
  const run = autocannon({
    url: server.baseUrl + load.path,
    method: "POST",
    headers: load.headers,
    body: load.body,
    connections: load.connections,
    duration: seconds,
    timeout: 10,
  });
  return within((seconds + 30) * 1000, `autocannon against ${server.name}`, run);
}

// ─── Additions for bench/delivery.ts: children with an IPC channel, /proc readings, cleanup ───

export interface Child {
  name: string;
  child: ChildProcess;
  /** The last lines the child wrote to stderr (shown when something fails). */
  stderrTail(): string;
  /** SIGTERM, wait up to `ms` for exit, then SIGKILL. Safe to call twice. */
  stop(ms?: number): Promise<void>;
  /** Sends `msg` with a fresh `id` over IPC and resolves with the child's message carrying the same id. */
  ask<T>(msg: Record<string, unknown>, ms?: number): Promise<T>;
  /** Resolves with the next IPC message of `type`; rejects when the child exits first or `ms` pass. */
  waitFor<T>(type: string, ms?: number): Promise<T>;
}

export interface ChildOptions {
  /** Adds an IPC channel (process.send in the child). */
  ipc?: boolean;
  /** Each stdout line goes here (stdout is piped); otherwise stdout goes to `stdoutPath` or /dev/null. */
  onStdoutLine?: (line: string) => void;
  stdoutPath?: string;
}

/** Spawns a child whose stderr is forwarded with a prefix, optionally with IPC and a stdout line hook. */
export function spawnChild(name: string, cmd: string, args: string[], env: Record<string, string>, opts: ChildOptions = {}): Child {
  const out = opts.onStdoutLine ? "pipe" : fs.openSync(opts.stdoutPath ?? "/dev/null", "w");
  const stdio: ("ignore" | "pipe" | "ipc" | number)[] = ["ignore", out, "pipe"];
  if (opts.ipc) stdio.push("ipc");
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio });
  if (typeof out === "number") fs.closeSync(out);
  const tail: string[] = [];
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
    for (const line of chunk.split("\n").filter(Boolean)) {
      tail.push(line);
      if (tail.length > 20) tail.shift();
      process.stderr.write(`[${name}] ${line}\n`);
    }
  });
  if (opts.onStdoutLine) {
    const hook = opts.onStdoutLine;
    let partial = "";
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      const lines = (partial + chunk).split("\n");
      partial = lines.pop()!;
      for (const line of lines) if (line) hook(line);
    });
  }
  child.on("error", (err) => process.stderr.write(`[${name}] spawn error: ${err.message}\n`));
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once("exit", () => resolve());
  });
  let nextId = 1;
  const waitFor = <T>(match: (m: Record<string, unknown>) => boolean, what: string, ms: number): Promise<T> =>
    within(
      ms,
      `${name}: ${what}`,
      new Promise<T>((resolve, reject) => {
        const onMessage = (m: unknown) => {
          if (typeof m !== "object" || m === null || !match(m as Record<string, unknown>)) return;
          child.off("message", onMessage);
          child.off("exit", onExit);
          resolve(m as T);
        };
        const onExit = (code: number | null, signal: string | null) => {
          child.off("message", onMessage);
          reject(new Error(`${name} exited (${code ?? signal}) while waiting for ${what}:\n${tail.join("\n")}`));
        };
        child.on("message", onMessage);
        child.once("exit", onExit);
      }),
    );
  return {
    name,
    child,
    stderrTail: () => tail.join("\n"),
    stop: async (ms = 10_000) => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      const done = await Promise.race([exited.then(() => true), sleep(ms).then(() => false)]);
      if (!done) {
        child.kill("SIGKILL");
        await within(5_000, `${name} exit after SIGKILL`, exited);
      }
    },
    ask: <T>(msg: Record<string, unknown>, ms = 10_000) => {
      const id = nextId++;
      const reply = waitFor<T>((m) => m.id === id, `answer to ${String(msg.type)}`, ms);
      child.send({ ...msg, id });
      return reply;
    },
    waitFor: <T>(type: string, ms = 30_000) => waitFor<T>((m) => m.type === type, `message "${type}"`, ms),
  };
}

/** VmRSS and VmHWM (peak RSS) of a live process in bytes, from /proc/<pid>/status; null once it is gone. */
export function memoryOf(pid: number): { rss: number; peak: number } | null {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN) * 1024;
    return { rss: kb("VmRSS"), peak: kb("VmHWM") };
  } catch {
    return null;
  }
}

/** Linux reports CPU time in clock ticks; USER_HZ is 100 on every mainstream kernel build. */
const CLOCK_TICKS = 100;

/** User + system CPU seconds a process has used so far (0 when it is gone or unreadable). */
export function cpuSecondsOf(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the ")" that closes the command name: state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

/** The value at quantile `q` (0…1) of an ascending array, nearest rank. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

export interface Cleanups {
  /** Registers an undo step; steps run in reverse order. */
  push(fn: () => Promise<void>): void;
  /** Runs every registered step once (later calls share the first run). */
  run(): Promise<void>;
  /** True once `run` has been called: long steps should stop early. */
  readonly stopping: boolean;
  /** Throws "stopping" once cleanup has begun, so nothing new gets started. */
  check(): void;
}

/** A registry of undo steps, run in reverse order whatever happens (as bench/api.ts does inline). */
export function cleanups(): Cleanups {
  const steps: (() => Promise<void>)[] = [];
  let stopping = false;
  let running: Promise<void> | null = null;
  return {
    push: (fn) => void steps.push(fn),
    run: () => {
      stopping = true;
      running ??= (async () => {
        for (let fn = steps.pop(); fn; fn = steps.pop()) await fn().catch((err: unknown) => console.error(`cleanup: ${String(err)}`));
      })();
      return running;
    },
    get stopping() {
      return stopping;
    },
    check: () => {
      if (stopping) throw new Error("stopping");
    },
  };
}

/** Busy CPU seconds of the whole machine so far (all cores: /proc/stat minus idle and iowait). */
export function machineCpuSeconds(): number {
  const line = fs.readFileSync("/proc/stat", "utf8").split("\n", 1)[0]!;
  const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number);
  return (user! + nice! + system! + irq! + softirq! + steal!) / CLOCK_TICKS;
}
