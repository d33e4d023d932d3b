/** Runs Postline's real entry point (src/main.ts through tsx) as a child process and reads its output. */
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

export interface Child {
  proc: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the first match of `re` in stdout, or rejects after `ms`. */
  waitFor(re: RegExp, ms?: number): Promise<RegExpMatchArray>;
  exited(): Promise<number | null>;
}

export function runMain(env: Record<string, string>): Child {
  const proc = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  proc.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  proc.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const exit = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
  return {
    proc,
    stdout: () => out,
    stderr: () => err,
    exited: () => exit,
    waitFor: (re, ms = 30_000) =>
      new Promise((resolve, reject) => {
        const deadline = Date.now() + ms;
        const tick = () => {
          const m = out.match(re);
          if (m) return resolve(m);
          if (proc.exitCode !== null) return reject(new Error(`exited ${proc.exitCode} before ${re}: ${err}`));
          if (Date.now() > deadline) return reject(new Error(`timed out waiting for ${re}; stdout: ${out.slice(-2000)} stderr: ${err}`));
          setTimeout(tick, 25);
        };
        tick();
      }),
  };
}
