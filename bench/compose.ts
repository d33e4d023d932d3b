/**
 * Composition benchmark (`npm run bench:compose`).
 *
 * Composes and DKIM-signs BENCH_MESSAGES (default 10 000) messages — text + html + one 20 KB
 * attachment, a different recipient and subject each — with rsa-sha256 (2048) and with
 * ed25519-sha256, and, in the same process, builds and signs the same messages with nodemailer's
 * stream transport (`streamTransport`, `buffer: true`, its `dkim` option), the baseline.
 * Nodemailer's DKIM signs with RSA only, so the ed25519 run is compared with nodemailer's RSA run.
 *
 * Our loop includes what the API does per message: parse the addresses, compose, sign. The
 * baseline gets its best of two set-ups: the documented one (the key as a PEM string, which
 * nodemailer parses for every message) and the key pre-parsed into a KeyObject (which its signer
 * accepts), one message at a time (32 in flight measured no faster). Each run has a 300-message
 * warm-up; one message of each set-up is verified with mailauth first, so only valid signatures
 * are timed. Exit 1 when a signature does not verify; the targets (rsa ≥ 1.0×, ed25519 ≥ 2× the
 * baseline) are reported.
 */
import { createPrivateKey, randomBytes } from "node:crypto";
import os from "node:os";
import { dkimVerify } from "mailauth/lib/dkim/verify.js";
import nodemailer from "nodemailer";
import { generateDkimKey, type DkimKeyPair } from "../src/dkim/keys.js";
import { signMessage, type DkimSigningKey } from "../src/dkim/sign.js";
import { parseMailbox, type Mailbox } from "../src/mime/address.js";
import { composeMessage } from "../src/mime/compose.js";

const N = Number(process.env.BENCH_MESSAGES || 10_000);
const WARMUP = 300;
const DOMAIN = "example.com";
const attachment = randomBytes(20 * 1024);
const text = "Hello,\n\nthank you for your order. Your invoice is attached.\n\nKind regards,\nThe Example team\n".repeat(4);
const html = `<html><body>${"<p>Hello,</p><p>thank you for your <b>order</b>. Your invoice is attached.</p><p>Kind regards,<br>The Example team</p>".repeat(4)}</body></html>`;

interface Fields {
  from: string;
  to: string;
  subject: string;
}
const fields = (i: number): Fields => ({ from: "Example Shop <shop@example.com>", to: `Customer ${i} <customer${i}@example.org>`, subject: `Your order #${100000 + i}` });

function mailbox(s: string): Mailbox {
  const r = parseMailbox(s);
  if (!r.ok) throw new Error(r.error);
  return r.mailbox;
}

function postline(f: Fields, key: DkimSigningKey): Buffer {
  const raw = composeMessage({
    from: mailbox(f.from),
    to: [mailbox(f.to)],
    subject: f.subject,
    text,
    html,
    attachments: [{ filename: "invoice.pdf", content: attachment, contentType: "application/pdf" }],
  });
  return signMessage(raw, [key]);
}

type Transport = ReturnType<typeof nodemailer.createTransport>;
async function nodemailerMessage(transport: Transport, f: Fields): Promise<Buffer> {
  const info = await transport.sendMail({
    ...f,
    text,
    html,
    attachments: [{ filename: "invoice.pdf", content: attachment, contentType: "application/pdf" }],
  });
  return info.message as Buffer;
}

async function verifies(message: Buffer, record: string, selector: string): Promise<boolean> {
  const resolver = async (name: string) => (name === `${selector}._domainkey.${DOMAIN}` ? [[record]] : []);
  const r = await dkimVerify(message, { resolver });
  return r.results.length > 0 && r.results.every((x) => x.status.result === "pass");
}

/** Messages per second over N messages, one at a time, after a warm-up. `run(i)` makes message i. */
async function measure(run: (i: number) => Buffer | Promise<Buffer>): Promise<{ perSecond: number; bytes: number }> {
  let bytes = 0;
  for (let i = N; i < N + WARMUP; i++) await run(i);
  const start = performance.now();
  for (let i = 0; i < N; i++) bytes += (await run(i)).length;
  const seconds = (performance.now() - start) / 1000;
  return { perSecond: N / seconds, bytes: bytes / N };
}

async function main(): Promise<void> {
  const cpus = os.cpus();
  console.log(`Postline composition benchmark — ${N} messages (text + html + one 20 KB attachment), composed and DKIM-signed`);
  console.log(`Machine: ${cpus.length} cores (${cpus[0]?.model.trim() ?? "?"}), node ${process.version}, ${os.platform()} ${os.release()}\n`);

  const [rsa, ed]: DkimKeyPair[] = await Promise.all([generateDkimKey("rsa"), generateDkimKey("ed25519")]);
  const rsaKey: DkimSigningKey = { domain: DOMAIN, selector: "rsa", privateKey: rsa!.privateKey, algorithm: "rsa-sha256" };
  const edKey: DkimSigningKey = { domain: DOMAIN, selector: "ed", privateKey: ed!.privateKey, algorithm: "ed25519-sha256" };
  const transport = nodemailer.createTransport({
    streamTransport: true,
    buffer: true,
    newline: "windows",
    dkim: { domainName: DOMAIN, keySelector: "nm", privateKey: rsa!.privateKey },
  });
  // Its signer hands the key to crypto's Sign#sign, which takes a KeyObject too (not in its types).
  const parsedKey = createPrivateKey(rsa!.privateKey) as unknown as string;
  const transportParsed = nodemailer.createTransport({
    streamTransport: true,
    buffer: true,
    newline: "windows",
    dkim: { domainName: DOMAIN, keySelector: "nm", privateKey: parsedKey },
  });

  const checks: [string, boolean][] = [
    ["postline rsa-sha256", await verifies(postline(fields(0), rsaKey), rsa!.dnsRecord, "rsa")],
    ["postline ed25519-sha256", await verifies(postline(fields(0), edKey), ed!.dnsRecord, "ed")],
    ["nodemailer rsa-sha256 (PEM)", await verifies(await nodemailerMessage(transport, fields(0)), rsa!.dnsRecord, "nm")],
    ["nodemailer rsa-sha256 (KeyObject)", await verifies(await nodemailerMessage(transportParsed, fields(0)), rsa!.dnsRecord, "nm")],
  ];
  for (const [name, ok] of checks) console.log(`  signature check (mailauth): ${name}: ${ok ? "pass" : "FAIL"}`);
  if (checks.some(([, ok]) => !ok)) process.exit(1);

  console.log("\n  running nodemailer (key as PEM)…");
  const nmPem = await measure((i) => nodemailerMessage(transport, fields(i)));
  console.log("  running nodemailer (key as KeyObject)…");
  const nmParsed = await measure((i) => nodemailerMessage(transportParsed, fields(i)));
  console.log("  running postline rsa-sha256…");
  const plRsa = await measure((i) => postline(fields(i), rsaKey));
  console.log("  running postline ed25519-sha256…");
  const plEd = await measure((i) => postline(fields(i), edKey));
  const baseline = nmPem.perSecond >= nmParsed.perSecond ? nmPem : nmParsed;

  const row = (name: string, r: { perSecond: number; bytes: number }) =>
    `  ${name.padEnd(42)} ${r.perSecond.toFixed(0).padStart(7)} msg/s  ${(1000 / r.perSecond).toFixed(3)} ms/msg  ${(r.bytes / 1024).toFixed(1)} KiB/msg`;
  console.log("\nResults (messages per second, compose + sign, one core):");
  console.log(row("nodemailer rsa-sha256, key as PEM", nmPem));
  console.log(row("nodemailer rsa-sha256, key as KeyObject", nmParsed));
  console.log(row("postline rsa-sha256", plRsa));
  console.log(row("postline ed25519-sha256", plEd));
  const rsaRatio = plRsa.perSecond / baseline.perSecond;
  const edRatio = plEd.perSecond / baseline.perSecond;
  const mark = (ok: boolean) => (ok ? "met" : "MISSED");
  console.log(`\n  Baseline: nodemailer's better set-up, ${baseline.perSecond.toFixed(0)} msg/s (rsa-sha256; its dkim option signs RSA only)`);
  console.log(`  postline rsa-sha256 / nodemailer rsa-sha256:      ${rsaRatio.toFixed(2)}×  (target ≥ 1.0×: ${mark(rsaRatio >= 1)})`);
  console.log(`  postline ed25519-sha256 / nodemailer rsa-sha256:  ${edRatio.toFixed(2)}×  (target ≥ 2×: ${mark(edRatio >= 2)})`);
  console.log("  note: the ed25519 figure compares our Ed25519 run with nodemailer's RSA run, as nodemailer cannot sign Ed25519.");
}

await main();
