/**
 * The wire under a session: one socket, the reply parser, and a FIFO of reply waiters (as in
 * nodemailer's smtp-connection). Every command registers a waiter before its bytes are written;
 * each complete reply resolves the oldest waiter. Pipelining (RFC 2920) is then just "register
 * several, write once".
 *
 * Only the oldest waiter runs a timer, started when it becomes the oldest, so each command gets
 * its own RFC 5321 §4.5.3.2 timeout measured from when its reply became due. A timeout, a socket
 * error, a close or a protocol error is fatal: the socket is destroyed and every waiter resolves
 * with the same error value. Nothing here throws or lets a socket error escape.
 */
import type { Socket } from "node:net";
import { ReplyParser, type Reply } from "./reply.js";
import type { SmtpError } from "./types.js";

export type ReplyOutcome = { ok: true; reply: Reply } | { ok: false; error: SmtpError };

interface Waiter {
  command: string;
  timeoutMs: number | null;
  /** STARTTLS: after a 220, stop reading at once and drop every byte after it (RFC 3207 §4.2). */
  upgrade: boolean;
  resolve(outcome: ReplyOutcome): void;
}

export interface Pending {
  result: Promise<ReplyOutcome>;
  /** Starts (or restarts) this waiter's timeout; for a waiter registered with `null`. */
  arm(ms: number): void;
}

const noop = () => {};

export class Channel {
  private sock: Socket;
  private parser = new ReplyParser();
  private waiters: Waiter[] = [];
  private timer: NodeJS.Timeout | null = null;
  private failure: SmtpError | null = null;
  private deathWatchers = new Set<() => void>();
  private lastCommand = "CONNECT";
  /** Copied into every error so the caller knows whether a plain-text retry is worth a thought. */
  tlsTried = false;

  constructor(socket: Socket) {
    this.sock = socket;
    this.listen(socket);
  }

  get socket(): Socket {
    return this.sock;
  }

  /** The error that killed the channel, or null while it is alive. */
  get dead(): SmtpError | null {
    return this.failure;
  }

  /** Registers a waiter for the next reply. `timeoutMs` null: no timer until `arm`. */
  expect(command: string, timeoutMs: number | null, upgrade = false): Pending {
    let waiter: Waiter | undefined;
    const result = new Promise<ReplyOutcome>((resolve) => {
      waiter = { command, timeoutMs, upgrade, resolve };
    });
    const w = waiter!;
    if (this.failure) {
      w.resolve({ ok: false, error: this.failure });
    } else {
      this.waiters.push(w);
      if (this.waiters.length === 1) this.armHead();
    }
    return {
      result,
      arm: (ms) => {
        w.timeoutMs = ms;
        if (this.waiters[0] === w) this.armHead();
      },
    };
  }

  /** Writes raw bytes (one or more command lines, CRLF included). No-op once dead. */
  write(data: string | Buffer): void {
    if (this.failure) return;
    this.sock.write(data);
  }

  /** Sends one command line and waits for its reply. */
  command(line: string, command: string, timeoutMs: number, upgrade = false): Promise<ReplyOutcome> {
    const pending = this.expect(command, timeoutMs, upgrade);
    this.lastCommand = command;
    this.write(`${line}\r\n`);
    return pending.result;
  }

  /**
   * Writes a large buffer in blocks, waiting for each to drain; a block that does not drain within
   * `blockMs` is a timeout (RFC 5321 §4.5.3.2 "data block"). False if the channel died.
   */
  async writeBulk(data: Buffer, blockMs: number, command: string): Promise<boolean> {
    const BLOCK = 256 * 1024;
    this.lastCommand = command;
    for (let off = 0; off < data.length; off += BLOCK) {
      if (this.failure) return false;
      if (!this.sock.write(data.subarray(off, Math.min(off + BLOCK, data.length)))) {
        if (!(await this.drain(blockMs, command))) return false;
      }
    }
    return !this.failure;
  }

  /** Stops reading from the current socket (for the TLS handshake) and forgets buffered bytes. */
  detach(): Socket {
    this.unlisten(this.sock);
    this.parser.reset();
    return this.sock;
  }

  /** Continues on a new socket (the TLS one) with a fresh parser. */
  attach(socket: Socket): void {
    this.sock = socket;
    this.parser = new ReplyParser();
    this.listen(socket);
  }

  /** Kills the channel with `error`; every pending waiter resolves with it. Idempotent. */
  fail(error: SmtpError): void {
    if (this.failure) return;
    const err: SmtpError = this.tlsTried ? { ...error, tlsTried: true } : error;
    this.failure = err;
    this.clearTimer();
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.resolve({ ok: false, error: err });
    for (const watch of this.deathWatchers) watch();
    this.deathWatchers.clear();
    this.sock.destroy();
  }

  /** Closes the socket without waiting for anything. */
  close(reason = "connection closed by the client"): void {
    this.fail({ kind: "closed", command: this.waiters[0]?.command ?? this.lastCommand, message: reason });
  }

  private listen(s: Socket): void {
    s.on("data", this.onData);
    s.on("error", this.onError);
    s.on("close", this.onClose);
  }

  private unlisten(s: Socket): void {
    s.off("data", this.onData);
    s.off("close", this.onClose);
    s.off("error", this.onError);
    s.on("error", noop); // a late error on the old socket must not become uncaught
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.failure) return;
    const { replies, error } = this.parser.feed(chunk);
    for (const reply of replies) {
      const w = this.waiters.shift();
      if (!w) {
        // RFC 5321 §3.8: a server may announce 421 and close at any time; anything else unasked
        // for means we no longer know which reply belongs to which command.
        this.fail({
          kind: reply.code === 421 ? "closed" : "protocol",
          command: this.lastCommand,
          message: `unexpected reply with no command pending: ${reply.code} ${reply.text.slice(0, 200)}`,
          reply,
        });
        return;
      }
      this.clearTimer();
      w.resolve({ ok: true, reply });
      if (w.upgrade && reply.code === 220) {
        // STARTTLS response injection: whatever followed the 220 in this read is dropped.
        this.detach();
        return;
      }
      this.armHead();
    }
    if (error) {
      this.fail({ kind: "protocol", command: this.waiters[0]?.command ?? this.lastCommand, message: error });
    }
  };

  private readonly onError = (err: Error): void => {
    const command = this.waiters[0]?.command ?? this.lastCommand;
    this.fail({ kind: "closed", command, message: `connection error during ${command}: ${err.message}` });
  };

  private readonly onClose = (): void => {
    const command = this.waiters[0]?.command ?? this.lastCommand;
    this.fail({ kind: "closed", command, message: `connection closed by the server during ${command}` });
  };

  private armHead(): void {
    this.clearTimer();
    const w = this.waiters[0];
    if (!w || w.timeoutMs === null) return;
    const ms = w.timeoutMs;
    this.timer = setTimeout(() => {
      this.fail({ kind: "timeout", command: w.command, message: `no reply to ${w.command} within ${ms} ms` });
    }, ms);
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private drain(ms: number, command: string): Promise<boolean> {
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.sock.off("drain", onDrain);
        this.deathWatchers.delete(onDeath);
        resolve(ok);
      };
      const onDrain = () => done(true);
      const onDeath = () => done(false);
      const timer = setTimeout(() => {
        this.fail({ kind: "timeout", command, message: `message data did not drain within ${ms} ms` });
      }, ms);
      this.sock.on("drain", onDrain);
      this.deathWatchers.add(onDeath);
    });
  }
}
