/**
 * The loopback webhook receiver for bench/webhooks.ts, run as a child process with an IPC
 * channel: node:http on 127.0.0.1 port 0, answering every POST 200 with an empty body at once
 * once its body has arrived. Counts requests, distinct webhook-ids (a repeat is a duplicate
 * delivery) and, for signed requests, verifies one in SAMPLE with the standardwebhooks package.
 *
 * IPC: sends {type:"ready", port}; answers {type:"secret", secret}, {type:"stats"} and
 * {type:"reset"} (each echoing the request's id). Exits on SIGTERM or when the parent goes away.
 */
import http from "node:http";
import { Webhook } from "standardwebhooks";

const SAMPLE = 100;
let stats = fresh();
let seen = new Set<string>();
let verifier: Webhook | null = null;

function fresh() {
  return { requests: 0, distinct: 0, duplicates: 0, unsigned: 0, verified: 0, badSignatures: 0, connections: 0, lastAt: 0 };
}

const server = http.createServer((req, res) => {
  const parts: Buffer[] = [];
  req.on("data", (b: Buffer) => parts.push(b));
  req.on("end", () => {
    stats.requests++;
    stats.lastAt = Date.now();
    const id = req.headers["webhook-id"];
    if (typeof id !== "string") stats.unsigned++;
    else {
      if (seen.has(id)) stats.duplicates++;
      else (seen.add(id), stats.distinct++);
      if (verifier && stats.requests % SAMPLE === 1) {
        try {
          verifier.verify(Buffer.concat(parts).toString("utf8"), req.headers as Record<string, string>);
          stats.verified++;
        } catch {
          stats.badSignatures++;
        }
      }
    }
    res.writeHead(200, { "content-length": "0" });
    res.end();
  });
});
server.on("connection", () => stats.connections++);
server.keepAliveTimeout = 30_000;

process.on("message", (m: { type: string; id?: number; secret?: string }) => {
  if (m.type === "secret") verifier = new Webhook(m.secret!);
  if (m.type === "reset") {
    stats = fresh();
    seen = new Set();
  }
  process.send!({ ...(m.type === "stats" ? stats : {}), id: m.id, type: m.type });
});
process.on("disconnect", () => process.exit(0));
process.on("SIGTERM", () => process.exit(0));

server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  process.send!({ type: "ready", port: typeof address === "object" && address ? address.port : 0 });
});
