/**
 * HTTPS peers for tests, on 127.0.0.1 port 0:
 * - `testCertificateAuthority`: a CA made with the `openssl` CLI at test time, which issues leaf
 *   certificates for given DNS names (subjectAltName);
 * - `startHttpsServer`: a node:https server answering from a swappable function, recording each
 *   request with the SNI name it came with, and counting TCP connections (also those whose
 *   handshake failed), so a test can prove nothing connected at all.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import https from "node:https";
import type net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TLSSocket } from "node:tls";
import type { TestCertificate } from "./smtp-servers.js";

export interface TestCertificateAuthority {
  /** PEM of the CA certificate: what a client adds as a trusted root. */
  cert: string;
  /** A leaf certificate (EC P-256, serverAuth, one day) for `names`, signed by this CA. */
  issue(names: string[]): TestCertificate;
}

function openssl(dir: string, args: string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: "ignore" });
}

const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

/** A fresh CA in a temporary directory; nothing is left on disk afterwards. */
export function testCertificateAuthority(name = "Postline Test CA"): TestCertificateAuthority {
  const dir = mkdtempSync(join(tmpdir(), "postline-test-ca-"));
  try {
    writeFileSync(
      join(dir, "ca.cnf"),
      [
        "[req]", "distinguished_name = dn", "prompt = no", "[dn]", `CN = ${name}`,
        "[v3_ca]", "basicConstraints = critical,CA:TRUE", "keyUsage = critical,keyCertSign,cRLSign", "subjectKeyIdentifier = hash",
      ].join("\n"),
    );
    openssl(dir, ["req", "-x509", "-new", ...EC, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-config", "ca.cnf", "-extensions", "v3_ca"]);
    const caKey = readFileSync(join(dir, "ca.key"), "utf8");
    const caCert = readFileSync(join(dir, "ca.pem"), "utf8");
    let serial = 1;
    return {
      cert: caCert,
      issue(names) {
        const leafDir = mkdtempSync(join(tmpdir(), "postline-test-leaf-"));
        try {
          writeFileSync(join(leafDir, "ca.key"), caKey);
          writeFileSync(join(leafDir, "ca.pem"), caCert);
          writeFileSync(
            join(leafDir, "leaf.ext"),
            [
              "basicConstraints = CA:FALSE", "keyUsage = critical,digitalSignature", "extendedKeyUsage = serverAuth",
              "authorityKeyIdentifier = keyid", `subjectAltName = ${names.map((n) => `DNS:${n}`).join(",")}`,
            ].join("\n"),
          );
          openssl(leafDir, ["req", "-new", ...EC, "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", `/CN=${names[0] ?? "leaf.test"}`]);
          openssl(leafDir, ["x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial", String(++serial), "-days", "1", "-extfile", "leaf.ext", "-out", "leaf.pem"]);
          return { key: readFileSync(join(leafDir, "leaf.key"), "utf8"), cert: readFileSync(join(leafDir, "leaf.pem"), "utf8") };
        } finally {
          rmSync(leafDir, { recursive: true, force: true });
        }
      },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface HttpsAnswer {
  status: number;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Write the body in these many pieces without a Content-Length (chunked encoding). */
  chunks?: number;
  /** Never answer (the server keeps the connection open until close()). */
  hang?: boolean;
}

export interface RecordedRequest {
  method: string;
  url: string;
  host: string | undefined;
  /** The SNI name the client sent, null without one. */
  servername: string | null;
}

export interface RunningHttpsServer {
  port: number;
  requests: RecordedRequest[];
  /** TCP connections accepted so far, including those whose TLS handshake then failed. */
  connections(): number;
  /** Replaces the function that answers requests. */
  answer(fn: (req: IncomingMessage) => HttpsAnswer): void;
  /** Serves another certificate to the next connections. */
  setCertificate(cert: TestCertificate): void;
  close(): Promise<void>;
}

/** Starts an HTTPS server with `cert`; answers 404 until `answer` is given. */
export async function startHttpsServer(cert: TestCertificate, answer?: (req: IncomingMessage) => HttpsAnswer): Promise<RunningHttpsServer> {
  const requests: RecordedRequest[] = [];
  const sockets = new Set<net.Socket>();
  let connections = 0;
  let respond: (req: IncomingMessage) => HttpsAnswer = answer ?? (() => ({ status: 404, headers: { "content-type": "text/plain" }, body: "not found" }));
  const server = https.createServer({ key: cert.key, cert: cert.cert }, (req, res) => {
    requests.push({
      method: req.method ?? "",
      url: req.url ?? "",
      host: req.headers.host,
      servername: (req.socket as TLSSocket).servername || null,
    });
    const a = respond(req);
    if (a.hang) return;
    res.writeHead(a.status, a.headers ?? {});
    const body = typeof a.body === "string" ? Buffer.from(a.body) : (a.body ?? Buffer.alloc(0));
    if (!a.chunks) return void res.end(body);
    const size = Math.ceil(body.length / a.chunks);
    for (let i = 0; i < body.length; i += size) res.write(body.subarray(i, i + size));
    res.end();
  });
  server.on("connection", (socket: net.Socket) => {
    connections++;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  server.on("tlsClientError", () => {}); // failed handshakes are what some tests provoke
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    requests,
    connections: () => connections,
    answer: (fn) => {
      respond = fn;
    },
    setCertificate: (c) => server.setSecureContext({ key: c.key, cert: c.cert }),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
