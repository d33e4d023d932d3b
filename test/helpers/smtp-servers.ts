/**
 * Real SMTP peers for the client's tests, all on 127.0.0.1 port 0:
 * - `startSmtpServer`: an `smtp-server` instance that records what it received;
 * - `scriptedServer`: a raw `net` server driven by a script with byte-exact replies that can be
 *   written in separate pieces, and a log of which lines arrived before which reply;
 * - `testCertificate`: a self-signed certificate made with the `openssl` CLI at test time.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import { SMTPServer, type SMTPServerDataStream, type SMTPServerOptions } from "smtp-server";

export interface TestCertificate {
  key: string;
  cert: string;
}

/** A self-signed EC certificate for `mx.test` and 127.0.0.1, valid for a day. */
export function testCertificate(names: string[] = ["mx.test"]): TestCertificate {
  const dir = mkdtempSync(join(tmpdir(), "postline-smtp-cert-"));
  try {
    const san = [...names.map((n) => `DNS:${n}`), "IP:127.0.0.1"].join(",");
    execFileSync("openssl", [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
      "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"), "-days", "1",
      "-subj", `/CN=${names[0] ?? "mx.test"}`, "-addext", `subjectAltName=${san}`,
    ], { stdio: "ignore" });
    return { key: readFileSync(join(dir, "key.pem"), "utf8"), cert: readFileSync(join(dir, "cert.pem"), "utf8") };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Waits until `cond()` is truthy, polling every 10 ms, failing after `ms`. */
export async function waitUntil<T>(cond: () => T, ms = 5000, what = "condition"): Promise<NonNullable<T>> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = cond();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Reads a whole smtp-server data stream. */
export function readStream(stream: SMTPServerDataStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    stream.on("data", (b: Buffer) => parts.push(b));
    stream.on("end", () => resolve(Buffer.concat(parts)));
    stream.on("error", reject);
  });
}

export interface ReceivedMail {
  from: string;
  to: string[];
  data: Buffer;
  /** MAIL FROM parameters (upper-case keys), false when none. */
  mailArgs: false | Record<string, unknown>;
  secure: boolean;
  user: unknown;
}

export interface RunningSmtpServer {
  port: number;
  server: SMTPServer;
  received: ReceivedMail[];
  /** Connections accepted so far. */
  connections(): number;
  close(): Promise<void>;
}

/** Starts an smtp-server; without `onData` it stores every message in `received` and answers 250. */
export async function startSmtpServer(options: SMTPServerOptions = {}): Promise<RunningSmtpServer> {
  const received: ReceivedMail[] = [];
  let connections = 0;
  const server = new SMTPServer({
    logger: false,
    disableReverseLookup: true,
    closeTimeout: 100,
    authOptional: true,
    ...(options.key ? {} : { hideSTARTTLS: true }),
    onConnect(_session, cb) {
      connections++;
      cb();
    },
    onData(stream, session, cb) {
      readStream(stream).then((data) => {
        received.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
          to: session.envelope.rcptTo.map((r) => r.address),
          data,
          mailArgs: session.envelope.mailFrom ? { ...(session.envelope.mailFrom.args || {}) } : false,
          secure: session.secure,
          user: session.user,
        });
        cb();
      }, cb);
    },
    ...options,
  });
  server.on("error", () => {}); // client-side tests provoke resets on purpose
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.server.address() as net.AddressInfo).port;
  return {
    port,
    server,
    received,
    connections: () => connections,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export interface ScriptedPeer {
  /** Writes each piece separately, each flushed before the next (split chunks on the wire). */
  send(...pieces: (string | Buffer)[]): Promise<void>;
  /** The next line without its CRLF; null once the client closed. */
  line(): Promise<string | null>;
  /** Bytes up to and including `marker`; null if the client closed first. */
  until(marker: string): Promise<Buffer | null>;
  /** Every line read so far with how many `send` calls had completed when its last byte arrived. */
  log: { line: string; repliesBefore: number }[];
  /** Switches to TLS as the server side; bytes buffered before it are dropped. */
  startTls(cert: TestCertificate): void;
  destroy(): void;
  socket(): net.Socket;
}

export interface ScriptedServer {
  port: number;
  peers: ScriptedPeer[];
  /** Errors thrown by scripts (assert it is empty). */
  errors: unknown[];
  /** Resolves when every script has finished. */
  done(): Promise<void>;
  close(): Promise<void>;
}

/** A raw TCP server running `script` for each connection. */
export async function scriptedServer(script: (peer: ScriptedPeer) => Promise<void>): Promise<ScriptedServer> {
  const peers: ScriptedPeer[] = [];
  const sockets = new Set<net.Socket>();
  const running: Promise<void>[] = [];
  const errors: unknown[] = [];
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on("close", () => sockets.delete(sock));
    const peer = makePeer(sock, sockets);
    peers.push(peer);
    running.push(
      script(peer).then(
        () => undefined,
        (e: unknown) => {
          errors.push(e);
          peer.destroy();
        },
      ),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    peers,
    errors,
    done: async () => {
      await Promise.all(running);
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.all(running);
    },
  };
}

function makePeer(plain: net.Socket, sockets: Set<net.Socket>): ScriptedPeer {
  let sock: net.Socket = plain;
  let buf = Buffer.alloc(0);
  /** For each byte offset range in `buf`, how many replies had been sent when it arrived. */
  let marks: { end: number; replies: number }[] = [];
  let replies = 0;
  let closed = false;
  let wake: (() => void) | null = null;
  const log: ScriptedPeer["log"] = [];

  const onData = (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    marks.push({ end: buf.length, replies });
    wake?.();
  };
  const onClose = () => {
    closed = true;
    wake?.();
  };
  const listen = (s: net.Socket) => {
    s.setNoDelay(true);
    s.on("data", onData);
    s.on("close", onClose);
    s.on("error", () => {});
  };
  listen(plain);

  const take = (n: number): { bytes: Buffer; replies: number } => {
    const bytes = buf.subarray(0, n);
    const mark = marks.find((m) => m.end >= n);
    buf = Buffer.from(buf.subarray(n));
    marks = marks.filter((m) => m.end > n).map((m) => ({ end: m.end - n, replies: m.replies }));
    return { bytes, replies: mark?.replies ?? replies };
  };
  const waitFor = async (marker: string) => {
    for (;;) {
      const i = buf.indexOf(marker);
      if (i >= 0) return i;
      if (closed) return -1;
      await new Promise<void>((r) => (wake = r));
      wake = null;
    }
  };

  return {
    log,
    socket: () => sock,
    async send(...pieces) {
      for (const p of pieces) {
        await new Promise<void>((resolve) => sock.write(p, () => resolve()));
      }
      replies++;
    },
    async line() {
      const i = await waitFor("\r\n");
      if (i < 0) return null;
      const { bytes, replies: before } = take(i + 2);
      const line = bytes.subarray(0, i).toString("utf8");
      log.push({ line, repliesBefore: before });
      return line;
    },
    async until(marker) {
      const i = await waitFor(marker);
      if (i < 0) return null;
      return take(i + marker.length).bytes;
    },
    startTls(cert) {
      sock.off("data", onData);
      sock.off("close", onClose);
      buf = Buffer.alloc(0);
      marks = [];
      const secure = new tls.TLSSocket(sock, {
        isServer: true,
        secureContext: tls.createSecureContext({ key: cert.key, cert: cert.cert }),
      });
      sockets.add(secure);
      sock = secure;
      listen(secure);
    },
    destroy() {
      sock.destroy();
      plain.destroy();
    },
  };
}
