/**
 * A small raw SMTP client for the inbound listener's tests, on a real socket: every reply is
 * returned as received, the message bytes go out exactly as given (dot-stuffed, nothing else
 * changed: bare CR and NUL stay), and large bodies are written with backpressure.
 */
import net from "node:net";

export interface SmtpExchange {
  greeting: string;
  ehlo: string;
  mail: string;
  rcpt: string[];
  /** The 354 (or refusal) to DATA; null when no RCPT was accepted. */
  data: string | null;
  /** The reply after the final dot; null when DATA was not reached or the connection closed. */
  end: string | null;
}

export interface SendOptions {
  mailFrom?: string;
  /** Extra MAIL FROM parameters, e.g. `SIZE=52428800`. */
  mailParams?: string;
  rcptTo: string[];
  data: Buffer | string;
}

/** Opens a session, answers nothing but what it is asked, returns every reply. */
export async function smtpSend(port: number, o: SendOptions): Promise<SmtpExchange> {
  const c = await connect(port);
  try {
    const greeting = await c.reply();
    const ehlo = await c.command("EHLO client.test");
    const mail = await c.command(`MAIL FROM:<${o.mailFrom ?? ""}>${o.mailParams ? ` ${o.mailParams}` : ""}`);
    const rcpt: string[] = [];
    for (const r of o.rcptTo) rcpt.push(await c.command(`RCPT TO:<${r}>`));
    let data: string | null = null;
    let end: string | null = null;
    if (mail.startsWith("250") && rcpt.some((r) => r.startsWith("250"))) {
      data = await c.command("DATA");
      if (data.startsWith("354")) {
        await c.write(stuff(typeof o.data === "string" ? Buffer.from(o.data, "latin1") : o.data));
        end = await c.reply();
      }
    }
    await c.command("QUIT").catch(() => "");
    return { greeting, ehlo, mail, rcpt, data, end };
  } finally {
    c.socket.destroy();
  }
}

/** RFC 5321 §4.5.2: a leading "." is doubled; the data ends with CRLF "." CRLF. */
function stuff(data: Buffer): Buffer {
  const s = data.toString("latin1").replace(/(^|\n)\./g, "$1..");
  return Buffer.from(`${s}${s.endsWith("\r\n") ? "" : "\r\n"}.\r\n`, "latin1");
}

interface Conn {
  socket: net.Socket;
  reply(): Promise<string>;
  command(line: string): Promise<string>;
  write(bytes: Buffer): Promise<void>;
  /** True once the server closed the connection (or it broke). */
  isClosed(): boolean;
}

/** A connection with a reply reader (multi-line replies joined with "\n"). */
export async function connect(port: number): Promise<Conn> {
  const socket = net.connect(port, "127.0.0.1");
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  socket.on("error", () => {});
  let buf = "";
  let closed = false;
  let wake: (() => void) | null = null;
  socket.on("data", (d: Buffer) => {
    buf += d.toString("latin1");
    wake?.();
  });
  socket.on("close", () => {
    closed = true;
    wake?.();
  });
  const reply = async (): Promise<string> => {
    for (;;) {
      const m = /^(?:\d{3}-[^\n]*\n)*\d{3}(?: [^\n]*)?\r?\n/.exec(buf);
      if (m) {
        buf = buf.slice(m[0].length);
        return m[0].trim().replace(/\r\n/g, "\n");
      }
      if (closed) return "closed";
      await new Promise<void>((r) => (wake = r));
      wake = null;
    }
  };
  const write = async (bytes: Buffer) => {
    // 64 KB at a time, waiting for the kernel buffer to drain: a 50 MB body never sits in memory twice.
    for (let i = 0; i < bytes.length && !closed; i += 65_536) {
      if (socket.write(bytes.subarray(i, i + 65_536))) continue;
      await new Promise<void>((resolve) => {
        const done = () => {
          socket.off("drain", done).off("close", done);
          resolve();
        };
        socket.on("drain", done).on("close", done);
      });
    }
  };
  return {
    socket,
    reply,
    write,
    isClosed: () => closed,
    async command(line) {
      if (closed) return "closed";
      socket.write(`${line}\r\n`);
      return reply();
    },
  };
}
