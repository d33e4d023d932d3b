/**
 * One DNS question to one server, over UDP or TCP (RFC 1035 §4.2). Each call opens its own
 * socket, so the operating system picks a fresh random source port (RFC 5452 §9.2) to go with
 * the random query id. Failures come back as values with a reason that names the server.
 */
import { createSocket } from "node:dgram";
import { connect } from "node:net";
import { randomInt } from "node:crypto";
import * as packet from "dns-packet";
import type { DecodedPacket } from "dns-packet";
import type { QueryType, Server } from "./types.js";

/** A decoded reply; dns-packet also sets `rcode`, which its type declarations leave out. */
export type Reply = DecodedPacket & { rcode?: string };

export interface Question {
  name: string;
  type: QueryType;
}

export type Exchange = { ok: true; reply: Reply } | { ok: false; reason: string };

/** The query bytes, with a random 16-bit id (RFC 5452 §4.3) and RD set: we ask recursive resolvers. */
export function buildQuery(question: Question): { id: number; message: packet.Packet } {
  const id = randomInt(0, 0x10000);
  return {
    id,
    message: {
      type: "query",
      id,
      flags: packet.RECURSION_DESIRED,
      questions: [{ name: question.name, type: question.type, class: "IN" }],
    },
  };
}

/** RFC 5452 §4.2: accept a reply only if it is a response to this id and this exact question. */
export function answersQuestion(reply: Reply, id: number, question: Question): boolean {
  if (!reply.flag_qr || reply.id !== id) return false;
  const asked = reply.questions;
  if (asked === undefined || asked.length !== 1) return false;
  const q = asked[0]!;
  return (
    q.type === question.type &&
    (q.class === undefined || q.class === "IN") &&
    q.name.toLowerCase().replace(/\.$/, "") === question.name
  );
}

/**
 * Asks over UDP. Replies that do not decode or do not answer this query are ignored rather than
 * trusted or treated as final: they may be forged (RFC 5452 §9.1), and the real one may follow.
 */
export function exchangeUdp(server: Server, question: Question, timeoutMs: number): Promise<Exchange> {
  const { id, message } = buildQuery(question);
  const bytes = packet.encode(message);
  return new Promise((resolve) => {
    const socket = createSocket(server.family === 6 ? "udp6" : "udp4");
    let ignored = 0;
    let done = false;
    const finish = (result: Exchange): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.close();
      resolve(result);
    };
    const timer = setTimeout(() => {
      const note = ignored > 0 ? ` (ignored ${ignored} malformed or mismatched replies)` : "";
      finish({ ok: false, reason: `no answer from ${server.label} within ${timeoutMs} ms${note}` });
    }, timeoutMs);
    socket.on("error", (err) => finish({ ok: false, reason: `${server.label}: ${err.message}` }));
    socket.on("message", (data: Buffer) => {
      let reply: Reply;
      try {
        reply = packet.decode(data);
      } catch {
        ignored += 1;
        return;
      }
      if (!answersQuestion(reply, id, question)) {
        ignored += 1;
        return;
      }
      finish({ ok: true, reply });
    });
    // A connected socket only hears its server, and an ICMP "port unreachable" surfaces as an
    // error at once instead of a silent timeout.
    socket.connect(server.port, server.host, () => {
      if (done) return;
      socket.send(bytes, (err) => {
        if (err) finish({ ok: false, reason: `${server.label}: ${err.message}` });
      });
    });
  });
}

/**
 * Asks over TCP, used when the UDP reply came back truncated (RFC 1035 §4.2.1, RFC 7766 §5).
 * Messages carry a two-octet length prefix (RFC 1035 §4.2.2). Over TCP nobody can slip in a
 * forged reply, so a bad one is a failure straight away.
 */
export function exchangeTcp(server: Server, question: Question, timeoutMs: number): Promise<Exchange> {
  const { id, message } = buildQuery(question);
  return new Promise((resolve) => {
    const socket = connect({ host: server.host, port: server.port });
    let received = Buffer.alloc(0);
    let done = false;
    const finish = (result: Exchange): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(
      () => finish({ ok: false, reason: `no answer from ${server.label} over TCP within ${timeoutMs} ms` }),
      timeoutMs,
    );
    socket.on("error", (err) => finish({ ok: false, reason: `${server.label} over TCP: ${err.message}` }));
    socket.on("close", () => finish({ ok: false, reason: `${server.label} closed the TCP connection without an answer` }));
    socket.on("connect", () => socket.write(packet.streamEncode(message)));
    socket.on("data", (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.length < 2 || received.length < 2 + received.readUInt16BE(0)) return;
      let reply: Reply | null;
      try {
        reply = packet.streamDecode(received) as Reply | null;
      } catch {
        reply = null;
      }
      if (reply === null) return finish({ ok: false, reason: `malformed answer from ${server.label} over TCP` });
      if (!answersQuestion(reply, id, question)) {
        return finish({ ok: false, reason: `answer from ${server.label} over TCP does not match the question` });
      }
      finish({ ok: true, reply });
    });
  });
}
