/**
 * Realistic reports for the inbound tests, built the way the software that sends them builds
 * them: Postfix's bounce(8) DSNs (failed and delayed), Exim's and qmail-send's plain-text
 * bounces, a mailbox provider's ARF abuse report. Each takes the VERP address it is sent to
 * and the returned message's headers, so the end-to-end tests can answer a real delivery.
 * Line ends are CRLF, as on the wire.
 */

export interface DsnRecipientSpec {
  email?: string;
  original?: string;
  action: string;
  status: string;
  diagnostic?: string;
  remoteMta?: string;
  willRetryUntil?: string;
}

const crlf = (lines: string[]) => lines.join("\r\n");
const DATE = "Tue,  1 Dec 2026 06:30:02 +0000 (UTC)";

/** Headers of a returned message, as the original carried them. */
export function returnedHeaders(o: { from: string; to: string[]; messageId: string }): string {
  return crlf([
    `Return-Path: <${o.from}>`,
    "Received: from postline.test (postline.test [127.0.0.1])",
    "\tby mx.example.net (Postfix) with ESMTPS id 4Xy1Zq3kLmz9sR",
    `\tfor <${o.to[0]}>; ${DATE}`,
    "From: Sender <sender@example.com>",
    `To: ${o.to.join(", ")}`,
    "Subject: Test",
    `Message-ID: ${o.messageId}`,
    "MIME-Version: 1.0",
  ]);
}

/**
 * A DSN as Postfix's bounce(8) writes it: multipart/report with the notification
 * (text/plain), the delivery report (message/delivery-status) and the undelivered message's
 * headers (text/rfc822-headers).
 */
export function postfixDsn(o: { to: string; recipients: DsnRecipientSpec[]; returned: string; delayed?: boolean }): string {
  const b = "4Xy1Zq3kLmz9sR.1764570602/mx.example.net";
  const groups = o.recipients.map((r) =>
    crlf([
      ...(r.email ? [`Final-Recipient: rfc822; ${r.email}`] : []),
      ...(r.original ? [`Original-Recipient: rfc822;${r.original}`] : []),
      `Action: ${r.action}`,
      `Status: ${r.status}`,
      ...(r.remoteMta ? [`Remote-MTA: dns; ${r.remoteMta}`] : []),
      ...(r.diagnostic ? [`Diagnostic-Code: ${fold(r.diagnostic)}`] : []),
      ...(r.willRetryUntil ? [`Will-Retry-Until: ${r.willRetryUntil}`] : []),
    ]),
  );
  const first = o.recipients[0]?.email ?? "unknown";
  const notice = o.delayed
    ? ["####################################################################", "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #", "####################################################################", "", "Your message could not be delivered for more than 4 hour(s)."]
    : ["I'm sorry to have to inform you that your message could not", "be delivered to one or more recipients. It's attached below."];
  return crlf([
    "Received: by mx.example.net (Postfix)",
    `\tid 4Xy1Zq3kLmz9sR; ${DATE}`,
    `Date: ${DATE}`,
    "From: MAILER-DAEMON@mx.example.net (Mail Delivery System)",
    `Subject: ${o.delayed ? "Delayed Mail (still being retried)" : "Undelivered Mail Returned to Sender"}`,
    `To: ${o.to}`,
    "Auto-Submitted: auto-replied",
    "MIME-Version: 1.0",
    "Content-Type: multipart/report; report-type=delivery-status;",
    `\tboundary="${b}"`,
    "Content-Transfer-Encoding: 8bit",
    "Message-Id: <20261201063002.4Xy1Zq3kLmz9sR@mx.example.net>",
    "",
    "This is a MIME-encapsulated message.",
    "",
    `--${b}`,
    "Content-Description: Notification",
    "Content-Type: text/plain; charset=us-ascii",
    "",
    "This is the mail system at host mx.example.net.",
    "",
    ...notice,
    "",
    "                   The mail system",
    "",
    `<${first}>: host mx2.example.net[192.0.2.25] said: ${o.recipients[0]?.diagnostic?.replace(/^smtp; /, "") ?? ""}`,
    "",
    `--${b}`,
    "Content-Description: Delivery report",
    "Content-Type: message/delivery-status",
    "",
    "Reporting-MTA: dns; mx.example.net",
    "X-Postfix-Queue-ID: 4Xy1Zq3kLmz9sR",
    `X-Postfix-Sender: rfc822; ${o.to}`,
    `Arrival-Date: ${DATE}`,
    "",
    groups.join("\r\n\r\n"),
    "",
    `--${b}`,
    `Content-Description: ${o.delayed ? "Undelivered Message Headers" : "Undelivered Message Headers"}`,
    "Content-Type: text/rfc822-headers",
    "Content-Transfer-Encoding: 8bit",
    "",
    o.returned,
    "",
    `--${b}--`,
    "",
  ]);
}

/** Postfix folds long Diagnostic-Code values at about 76 columns with four spaces. */
function fold(value: string): string {
  const out: string[] = [];
  let line = "";
  for (const word of value.split(" ")) {
    if (line && line.length + word.length + 1 > 60) {
      out.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  out.push(line);
  return out.join("\r\n    ");
}

/** Exim 4 (without DSN support configured): a plain-text notice, then the returned message. */
export function eximBounce(o: { to: string; failed: string; returned: string }): string {
  return crlf([
    "Received: from Debian-exim by mx.example.net with local (Exim 4.96)",
    `\tid 1kXyZa-0003Ab-Cd; Tue, 01 Dec 2026 06:30:02 +0000`,
    `X-Failed-Recipients: ${o.failed}`,
    "Auto-Submitted: auto-replied",
    "From: Mail Delivery System <Mailer-Daemon@mx.example.net>",
    `To: ${o.to}`,
    "Subject: Mail delivery failed: returning message to sender",
    "Message-Id: <E1kXyZa-0003Ab-Cd@mx.example.net>",
    "Date: Tue, 01 Dec 2026 06:30:02 +0000",
    "",
    "This message was created automatically by mail delivery software.",
    "",
    "A message that you sent could not be delivered to one or more of its",
    "recipients. This is a permanent error. The following address(es) failed:",
    "",
    `  ${o.failed}`,
    "    host mx2.example.net [192.0.2.25]",
    `    SMTP error from remote mail server after RCPT TO:<${o.failed}>:`,
    `    550 5.1.1 <${o.failed}>: Recipient address rejected: User unknown`,
    "",
    "------ This is a copy of the message, including all the headers. ------",
    "",
    o.returned,
    "",
    "Hello",
    "",
  ]);
}

/** qmail-send's failure notice (no MIME), then a copy of the message. */
export function qmailBounce(o: { to: string; failed: string; returned: string }): string {
  return crlf([
    "Date: 1 Dec 2026 06:30:02 -0000",
    "From: MAILER-DAEMON@mail.example.net",
    `To: ${o.to}`,
    "Subject: failure notice",
    "",
    "Hi. This is the qmail-send program at mail.example.net.",
    "I'm afraid I wasn't able to deliver your message to the following addresses.",
    "This is a permanent error; I've given up. Sorry it didn't work out.",
    "",
    `<${o.failed}>:`,
    "192.0.2.25 does not like recipient.",
    `Remote host said: 550 5.1.1 <${o.failed}>: Recipient address rejected: User unknown`,
    "Giving up on 192.0.2.25.",
    "",
    "--- Below this line is a copy of the message.",
    "",
    o.returned,
    "",
    "Hello",
    "",
  ]);
}

/** An ARF abuse report from a mailbox provider's feedback loop (RFC 5965 §2), with the reported message. */
export function arfReport(o: { to: string; rcpt?: string; mailFrom: string; returned: string; feedbackType?: string }): string {
  const b = "----=_Part_1234_5678.1764570602";
  return crlf([
    "From: Feedback Loop <fbl@feedback.example.net>",
    "Date: Tue, 01 Dec 2026 07:00:00 +0000",
    "Subject: FW: Test",
    `To: ${o.to}`,
    "MIME-Version: 1.0",
    `Content-Type: multipart/report; report-type=feedback-report; boundary="${b}"`,
    "Message-ID: <fbl.1764572400.42@feedback.example.net>",
    "",
    `--${b}`,
    "Content-Type: text/plain; charset=UTF-8",
    "Content-Transfer-Encoding: quoted-printable",
    "",
    "This is an email abuse report for an email message received from IP 192.0=",
    ".2.10 on Tue, 01 Dec 2026 06:30:01 +0000. For more information about this =",
    "format please see http://tools.ietf.org/html/rfc5965.",
    "",
    `--${b}`,
    "Content-Type: message/feedback-report",
    "",
    `Feedback-Type: ${o.feedbackType ?? "abuse"}`,
    "User-Agent: ExampleMail-Feedback/2.0",
    "Version: 1",
    `Original-Mail-From: <${o.mailFrom}>`,
    ...(o.rcpt ? [`Original-Rcpt-To: <${o.rcpt}>`] : []),
    "Arrival-Date: Tue, 01 Dec 2026 06:30:01 +0000",
    "Reporting-MTA: dns; mta1.feedback.example.net",
    "Source-IP: 192.0.2.10",
    "Reported-Domain: example.com",
    "",
    `--${b}`,
    "Content-Type: message/rfc822",
    "Content-Disposition: inline",
    "",
    o.returned,
    "",
    "Hello",
    "",
    `--${b}--`,
    "",
  ]);
}
