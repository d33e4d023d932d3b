/**
 * A fast SMTP sink for bench/delivery.ts, run as a child process with an IPC channel.
 *
 * Raw node:net, 127.0.0.1, port 0. Accepts everything: EHLO advertises PIPELINING, 8BITMIME,
 * SMTPUTF8, SIZE and ENHANCEDSTATUSCODES; MAIL and RCPT get 250, DATA 354, the end of the data
 * 250, RSET/NOOP 250, QUIT 221. Pipelined commands are answered in order with one write per
 * received chunk. Message bodies are dropped: in DATA mode each chunk is only searched for
 * CRLF.CRLF (native indexOf, plus an 8-byte look across the chunk boundary), never split into
 * lines or turned into strings, so the sink stays far from being the bottleneck.
 *
 * Counts per phase (reset by the parent): completed transactions, recipients delivered
 * (accepted RCPTs of a transaction whose data ended), DATA bytes, connections; and, to tell a
 * lost message from a duplicate, how many recipient addresses arrived more than once.
 *
 * IPC: sends {type:"ready", port} once listening; answers {type:"stats"} and {type:"reset"}
 * (both echo the request's id). Exits on SIGTERM or when the parent goes away.
 */
import net from "node:net";

const TERMINATOR = Buffer.from("\r\n.\r\n");
const CRLF = Buffer.from("\r\n");
const LF = 0x0a;
const EHLO_REPLY =
  "250-sink.bench greets you\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-SIZE 52428800\r\n250 ENHANCEDSTATUSCODES\r\n";

let stats = fresh();
let seen = new Set<string>();

function fresh() {
  return { connections: 0, messages: 0, recipients: 0, bytes: 0, duplicates: 0, startedAt: Date.now(), lastAt: 0 };
}

class Connection {
  /** Between the 354 and the end of the data. */
  inData = false;
  /** Up to 4 bytes of data seen last, for a terminator split across chunks; starts as the CRLF of "DATA". */
  tail: Buffer = CRLF;
  dataBytes = 0;
  /** An unfinished command line from the previous chunk. */
  partial: Buffer | null = null;
  rcpts: string[] = [];
  replies = "";

  constructor(private readonly sock: net.Socket) {}

  onData(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length) {
      if (this.inData) {
        const end = this.endOfData(chunk, off);
        if (end < 0) {
          this.keepTail(chunk, off);
          this.dataBytes += chunk.length - off;
          off = chunk.length;
          break;
        }
        this.dataBytes += end - off;
        this.finishMessage();
        off = end;
        continue;
      }
      const nl = chunk.indexOf(LF, off);
      if (nl < 0) {
        const rest = chunk.subarray(off);
        this.partial = this.partial ? Buffer.concat([this.partial, rest]) : Buffer.from(rest);
        if (this.partial.length > 4096) return this.fail("500 5.5.2 line too long\r\n");
        break;
      }
      let line: string;
      if (this.partial) {
        line = Buffer.concat([this.partial, chunk.subarray(off, nl)]).toString("latin1");
        this.partial = null;
      } else line = chunk.toString("latin1", off, nl);
      off = nl + 1;
      if (line.endsWith("\r")) line = line.slice(0, -1);
      if (!this.command(line)) return;
    }
    this.flush();
  }

  /** Index just past the CRLF.CRLF that ends the data, or -1 when this chunk does not hold it. */
  private endOfData(chunk: Buffer, off: number): number {
    const t = this.tail.length;
    if (t > 0) {
      // A terminator starting in the bytes kept from the previous chunk.
      const joined = Buffer.concat([this.tail, chunk.subarray(off, off + 4)]);
      const i = joined.indexOf(TERMINATOR);
      if (i >= 0 && i < t) return off + i + TERMINATOR.length - t;
    }
    const j = chunk.indexOf(TERMINATOR, off);
    return j < 0 ? -1 : j + TERMINATOR.length;
  }

  private keepTail(chunk: Buffer, off: number): void {
    const rest = chunk.length - off;
    this.tail = rest >= 4 ? Buffer.from(chunk.subarray(chunk.length - 4)) : Buffer.concat([this.tail, chunk.subarray(off)]).subarray(-4);
  }

  private finishMessage(): void {
    this.inData = false;
    stats.messages++;
    stats.recipients += this.rcpts.length;
    stats.bytes += this.dataBytes - 3; // the ".\r\n" is not part of the message
    stats.lastAt = Date.now();
    for (const r of this.rcpts) {
      if (seen.has(r)) stats.duplicates++;
      else seen.add(r);
    }
    this.rcpts = [];
    this.replies += "250 2.0.0 accepted\r\n";
  }

  /** Handles one command line; false when the connection ends. */
  private command(line: string): boolean {
    const verb = line.slice(0, 4).toUpperCase();
    switch (verb) {
      case "EHLO":
        this.replies += EHLO_REPLY;
        break;
      case "HELO":
        this.replies += "250 sink.bench\r\n";
        break;
      case "MAIL":
        this.rcpts = [];
        this.replies += "250 2.1.0 ok\r\n";
        break;
      case "RCPT": {
        const lt = line.indexOf("<");
        const gt = line.indexOf(">", lt);
        this.rcpts.push(lt >= 0 && gt > lt ? line.slice(lt + 1, gt).toLowerCase() : line);
        this.replies += "250 2.1.5 ok\r\n";
        break;
      }
      case "DATA":
        this.inData = true;
        this.tail = CRLF;
        this.dataBytes = 0;
        this.replies += "354 end with <CRLF>.<CRLF>\r\n";
        break;
      case "RSET":
        this.rcpts = [];
        this.replies += "250 2.0.0 ok\r\n";
        break;
      case "NOOP":
        this.replies += "250 2.0.0 ok\r\n";
        break;
      case "QUIT":
        this.replies += "221 2.0.0 bye\r\n";
        this.flush();
        this.sock.end();
        return false;
      default:
        this.replies += "502 5.5.1 not implemented\r\n";
    }
    return true;
  }

  private flush(): void {
    if (this.replies) {
      this.sock.write(this.replies);
      this.replies = "";
    }
  }

  private fail(reply: string): void {
    this.sock.end(reply);
  }
}

const server = net.createServer({ noDelay: true }, (sock) => {
  stats.connections++;
  const conn = new Connection(sock);
  sock.on("data", (chunk: Buffer) => conn.onData(chunk));
  sock.on("error", () => sock.destroy());
  sock.write("220 sink.bench ESMTP ready\r\n");
});

process.on("message", (m: { type?: string; id?: number }) => {
  if (m.type === "stats") process.send!({ ...stats, type: "stats", id: m.id, distinct: seen.size });
  else if (m.type === "reset") {
    stats = fresh();
    seen = new Set();
    process.send!({ type: "reset", id: m.id });
  }
});
// The parent owns this process: without it there is nothing to do.
process.on("disconnect", () => process.exit(0));
process.on("SIGTERM", () => {
  server.close();
  process.exit(0);
});

server.listen(0, "127.0.0.1", () => {
  const { port } = server.address() as net.AddressInfo;
  process.send!({ type: "ready", port });
});
