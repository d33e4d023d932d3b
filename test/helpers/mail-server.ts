/**
 * A real receiving SMTP server for delivery tests (smtp-server on loopback): records every
 * accepted transaction byte for byte, and answers per a small script.
 */
import { SMTPServer, type SMTPServerOptions } from "smtp-server";

export interface Received {
  from: string;
  to: string[];
  data: Buffer;
  tls: boolean;
}

export interface MailServerScript {
  /**
   * Reply for RCPT TO: return a code to refuse (e.g. 550, 451), or undefined to accept. `count`:
   * RCPTs of this address so far (1-based); `accepted`: recipients already accepted in this transaction.
   */
  rcpt?: (address: string, count: number, accepted: number) => { code: number; text: string } | undefined;
  /** Reply after DATA: a code to refuse, or undefined to accept. `n` counts DATA commands so far (1-based). */
  data?: (n: number, rcpts: string[]) => { code: number; text: string } | undefined;
  /** Never answer the DATA end (a hang) — always, or for the n-th DATA only. */
  hangData?: boolean | ((n: number) => boolean);
  /** Answer the end of DATA only after this many ms. */
  dataDelayMs?: number;
  /** Destroy the socket in the middle of DATA on the n-th transaction. */
  dropMidData?: (n: number) => boolean;
  /** Called as each connection is accepted (its `open` already counts it). */
  connect?: () => void;
}

export interface MailServer {
  port: number;
  host: string;
  received: Received[];
  transactions: number;
  /** TCP connections accepted. */
  readonly connections: number;
  /** Connections open now: accepted, and neither QUIT (answered 221) nor closed. */
  readonly open: number;
  /** DATA commands seen (accepted or not). */
  readonly dataSeen: number;
  server: SMTPServer;
  close(): Promise<void>;
}

const refusal = (code: number, text: string) => Object.assign(new Error(text), { responseCode: code });

export async function startMailServer(
  opts: { host?: string; port?: number; script?: MailServerScript; options?: Partial<SMTPServerOptions> } = {},
): Promise<MailServer> {
  const received: Received[] = [];
  const rcptCounts = new Map<string, number>();
  let dataCount = 0;
  const state = { transactions: 0, connections: 0 };
  const script = opts.script ?? {};
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["AUTH"],
    logger: false,
    hideSTARTTLS: true,
    size: 50 * 1024 * 1024,
    ...opts.options,
    onConnect(_session, cb) {
      state.connections++;
      script.connect?.();
      cb();
    },
    onRcptTo(address, session, cb) {
      const n = (rcptCounts.get(address.address) ?? 0) + 1;
      rcptCounts.set(address.address, n);
      const r = script.rcpt?.(address.address, n, session.envelope.rcptTo.length);
      cb(r ? refusal(r.code, r.text) : undefined);
    },
    onData(stream, session, cb) {
      dataCount++;
      const n = dataCount;
      const chunks: Buffer[] = [];
      let bytes = 0;
      stream.on("data", (c: Buffer) => {
        chunks.push(c);
        bytes += c.length;
        if (script.dropMidData?.(n) && bytes > 0) {
          // smtp-server keeps its connections in a Set; the one with this session's id is ours.
          const conns = (server as unknown as { connections: Set<{ id: string; _socket: { destroy(): void } }> }).connections;
          for (const conn of conns) if (conn.id === session.id) conn._socket.destroy();
        }
      });
      stream.on("end", () => {
        if (script.hangData === true || (typeof script.hangData === "function" && script.hangData(n))) return; // never answer
        const rcpts = session.envelope.rcptTo.map((r) => r.address);
        const r = script.data?.(n, rcpts);
        if (r) return cb(refusal(r.code, r.text));
        const accept = () => {
          state.transactions++;
          received.push({ from: session.envelope.mailFrom ? session.envelope.mailFrom.address : "", to: rcpts, data: Buffer.concat(chunks), tls: Boolean(session.secure) });
          cb(null);
        };
        if (script.dataDelayMs) setTimeout(accept, script.dataDelayMs);
        else accept();
      });
    },
  });
  const host = opts.host ?? "127.0.0.1";
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, host, () => resolve());
  });
  server.on("error", () => {}); // client resets are not test failures
  const port = (server.server.address() as { port: number }).port;
  return {
    port,
    host,
    received,
    get transactions() {
      return state.transactions;
    },
    get connections() {
      return state.connections;
    },
    get open() {
      // smtp-server drops a connection from this set when it answers QUIT or the socket closes.
      return (server as unknown as { connections: Set<unknown> }).connections.size;
    },
    get dataSeen() {
      return dataCount;
    },
    server,
    close: () =>
      new Promise<void>((resolve) => {
        // Do not wait the library's 30 s for open (e.g. hung) connections.
        const conns = (server as unknown as { connections: Set<{ _socket: { destroy(): void } }> }).connections;
        for (const conn of conns) conn._socket.destroy();
        server.close(() => resolve());
      }),
  };
}
