/**
 * A webhook receiver for tests: a real node:http server on 127.0.0.1 port 0 that records each
 * request (headers and the exact body bytes) and answers from a swappable function; it counts
 * TCP connections, so a test can prove nothing connected, or that connections were reused.
 */
import http, { type IncomingHttpHeaders } from "node:http";
import type net from "node:net";

export interface ReceivedHook {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface ReceiverAnswer {
  status: number;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Never answer (the connection stays open until close()). */
  hang?: boolean;
  /** Answer only after this many ms (a slow endpoint). */
  delayMs?: number;
  /** Send the status line and headers at once, the body only after this many ms. */
  bodyDelayMs?: number;
}

export interface Receiver {
  port: number;
  /** http://127.0.0.1:PORT */
  base: string;
  received: ReceivedHook[];
  connections(): number;
  answer(fn: (req: ReceivedHook, n: number) => ReceiverAnswer): void;
  close(): Promise<void>;
}

export async function startReceiver(fn: (req: ReceivedHook, n: number) => ReceiverAnswer = () => ({ status: 200, body: "ok" })): Promise<Receiver> {
  const received: ReceivedHook[] = [];
  const sockets = new Set<net.Socket>();
  let connections = 0;
  let respond = fn;
  const server = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on("data", (b: Buffer) => parts.push(b));
    req.on("end", () => {
      const hook = { method: req.method ?? "", url: req.url ?? "", headers: req.headers, body: Buffer.concat(parts).toString("utf8") };
      received.push(hook);
      const a = respond(hook, received.length);
      if (a.hang) return;
      const send = () => {
        res.writeHead(a.status, a.headers ?? {});
        if (!a.bodyDelayMs) return void res.end(a.body ?? "");
        res.flushHeaders();
        setTimeout(() => res.end(a.body ?? ""), a.bodyDelayMs);
      };
      if (a.delayMs) setTimeout(send, a.delayMs);
      else send();
    });
  });
  server.on("connection", (s: net.Socket) => {
    connections++;
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    base: `http://127.0.0.1:${port}`,
    received,
    connections: () => connections,
    answer: (f) => {
      respond = f;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Polls the async `cond` every 10 ms until it is truthy; fails after `ms` naming `what`. */
export async function until<T>(cond: () => Promise<T> | T, what: string, ms = 10_000): Promise<Exclude<T, false | 0 | "" | null | undefined>> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await cond();
    if (v) return v as Exclude<T, false | 0 | "" | null | undefined>;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
