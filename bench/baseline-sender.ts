/**
 * The baseline for bench/delivery.ts: the wire limit of the same delivery without a database.
 * A minimal pipelined SMTP sender on raw node:net that pushes `BASE_COUNT` copies of one
 * composed message (the bytes Postline would send) to the sink over `BASE_CONNECTIONS`
 * connections, each reused for message after message:
 *
 *   greeting, EHLO once; then per message one write "RSET (after the first) + MAIL + RCPT + DATA"
 *   (RFC 2920 pipelining: 4 replies, one round trip), the dot-stuffed data in one write, its reply.
 *
 * Recipients are u<i>@d<i mod 20>.bench, as in the Postline run. No DNS, no TLS, no parsing
 * beyond "which reply ended and what its code was". The data is encoded once (encodeData, the
 * same dot-stuffing Postline applies), which is what makes this a limit rather than a rival.
 *
 * Env: BASE_PORT (sink), BASE_COUNT, BASE_CONNECTIONS, BASE_DOMAINS, BASE_MESSAGE (file with the
 * raw message). Runs at once, reports {type:"done", sent, failed, ms, firstError} over IPC, exits.
 */
import fs from "node:fs";
import net from "node:net";
import { encodeData } from "../src/smtp/data.js";

const port = Number(process.env.BASE_PORT);
const count = Number(process.env.BASE_COUNT);
const connections = Number(process.env.BASE_CONNECTIONS);
const domains = Number(process.env.BASE_DOMAINS || 20);
const encoded = encodeData(fs.readFileSync(process.env.BASE_MESSAGE!));
if (!encoded.ok) throw new Error(encoded.reason);
const data = encoded.message.data;

let next = 0;
let sent = 0;
let failed = 0;
let firstError: string | null = null;

/** Reads replies off one socket: resolves each `reply()` with the code of the next complete reply. */
class Replies {
  private buf = "";
  private queue: ((code: number) => void)[] = [];
  private ready: number[] = [];

  feed(chunk: string): void {
    this.buf += chunk;
    let nl: number;
    while ((nl = this.buf.indexOf("\n")) >= 0) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      if (line.length >= 4 && line[3] === "-") continue; // a continuation line of a multiline reply
      const code = Number(line.slice(0, 3));
      const waiter = this.queue.shift();
      if (waiter) waiter(code);
      else this.ready.push(code);
    }
  }

  reply(): Promise<number> {
    const code = this.ready.shift();
    if (code !== undefined) return Promise.resolve(code);
    return new Promise((resolve) => this.queue.push(resolve));
  }

  fail(): void {
    for (const w of this.queue.splice(0)) w(0);
  }
}

async function worker(): Promise<void> {
  const sock = net.connect({ host: "127.0.0.1", port, noDelay: true });
  const replies = new Replies();
  sock.setEncoding("latin1");
  sock.on("data", (s: string) => replies.feed(s));
  sock.on("error", (err) => {
    firstError ??= err.message;
    replies.fail();
  });
  sock.on("close", () => replies.fail());
  const expect = async (ok: (code: number) => boolean, what: string) => {
    const code = await replies.reply();
    if (!ok(code)) throw new Error(`${what}: reply ${code}`);
  };
  try {
    await expect((c) => c === 220, "greeting");
    sock.write("EHLO baseline.bench\r\n");
    await expect((c) => c === 250, "EHLO");
    let first = true;
    for (let i = next++; i < count; i = next++) {
      sock.write(`${first ? "" : "RSET\r\n"}MAIL FROM:<bench@example.com>\r\nRCPT TO:<u${i}@d${i % domains}.bench>\r\nDATA\r\n`);
      if (!first) await expect((c) => c === 250, "RSET");
      first = false;
      await expect((c) => c === 250, "MAIL");
      await expect((c) => c === 250, "RCPT");
      await expect((c) => c === 354, "DATA");
      sock.write(data);
      try {
        await expect((c) => c === 250, "end of data");
        sent++;
      } catch (err) {
        failed++;
        throw err;
      }
    }
    sock.write("QUIT\r\n");
    await replies.reply();
  } catch (err) {
    firstError ??= err instanceof Error ? err.message : String(err);
  } finally {
    sock.destroy();
  }
}

const started = performance.now();
await Promise.all(Array.from({ length: connections }, () => worker()));
const ms = performance.now() - started;
failed += Math.max(0, count - sent - failed);
process.send!({ type: "done", sent, failed, ms, firstError, bytes: data.length });
process.disconnect();
