/**
 * Helpers for the benchmarks: scratch PostgreSQL databases, free ports, child servers that
 * stop cleanly, a bounded readiness poll, and one autocannon run.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import autocannon, { type Result } from "autocannon";
import postgres from "postgres";

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

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

/** Creates `bench_<hex>` on the server of `baseUrl`; `drop()` removes it (forcing out any session). */
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
      if (dropped) return;
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
