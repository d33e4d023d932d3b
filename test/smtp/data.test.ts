import { describe, expect, it } from "vitest";
import { encodeData, isEncodedMessage, MAX_LINE_OCTETS } from "../../src/smtp/data.js";

const enc = (s: string | Buffer) => {
  const r = encodeData(Buffer.isBuffer(s) ? s : Buffer.from(s, "latin1"));
  if (!r.ok) throw new Error(r.reason);
  return r.message;
};
const wire = (s: string | Buffer) => enc(s).data.toString("latin1");

/** What an RFC 5321 receiver reconstructs: lines up to the lone ".", leading dot removed. */
function receive(data: Buffer): { body: string; rest: string } {
  const text = data.toString("latin1");
  const lines: string[] = [];
  let pos = 0;
  for (;;) {
    const eol = text.indexOf("\r\n", pos);
    if (eol < 0) throw new Error("no terminator");
    const line = text.slice(pos, eol);
    pos = eol + 2;
    if (line === ".") break;
    lines.push(line.startsWith(".") ? line.slice(1) : line);
  }
  return { body: lines.map((l) => l + "\r\n").join(""), rest: text.slice(pos) };
}

describe("DATA encoding", () => {
  it("turns bare LF and bare CR into CRLF", () => {
    expect(wire("a\nb\rc\r\nd")).toBe("a\r\nb\r\nc\r\nd\r\n.\r\n");
    expect(wire("\r\r\n\n\r")).toBe("\r\n\r\n\r\n\r\n.\r\n");
  });

  it("doubles a leading dot on every line, the first included", () => {
    expect(wire(".hidden\r\n..two\r\nmid.dle\r\n.")).toBe("..hidden\r\n...two\r\nmid.dle\r\n..\r\n.\r\n");
  });

  it("ends with exactly one CRLF.CRLF whether or not the last line had its CRLF", () => {
    expect(wire("last line")).toBe("last line\r\n.\r\n");
    expect(wire("last line\r\n")).toBe("last line\r\n.\r\n");
    expect(wire("blank after\r\n\r\n")).toBe("blank after\r\n\r\n.\r\n");
    expect(wire("")).toBe(".\r\n");
  });

  it("cannot be made to end the data early by SMTP smuggling payloads", () => {
    const payloads = ["\n.\r\n", "\r\n.\n", "\r.\r", "\n.\n", "\r.\r\n", "\r\n.\r\n", "\r\n.\r"];
    for (const p of payloads) {
      const msg = `Subject: x\r\n\r\nbefore${p}MAIL FROM:<evil@x>\r\nRCPT TO:<victim@y>\r\nDATA\r\nafter\r\n`;
      const data = enc(msg).data;
      const { body, rest } = receive(data);
      expect(rest, JSON.stringify(p)).toBe(""); // nothing after the one terminator
      expect(body).toContain("MAIL FROM:<evil@x>"); // the injected commands stay message text
      expect(data.toString("latin1").indexOf("\r\n.\r\n")).toBe(data.length - 5);
      expect(/\r(?!\n)|(?<!\r)\n/.test(data.toString("latin1"))).toBe(false);
    }
  });

  it("does not trust content that looks already stuffed", () => {
    expect(wire("..already\r\n.\r\n")).toBe("...already\r\n..\r\n.\r\n");
  });

  it("refuses a NUL octet and says where", () => {
    const r = encodeData(Buffer.from("abc\0def"));
    expect(r).toMatchObject({ ok: false, error: "nul", offset: 3 });
  });

  it("reports 8-bit content, the longest line and the SIZE octets", () => {
    const m = enc(Buffer.from("héllo\nshort\n.x", "utf8"));
    expect(m.eightBit).toBe(true);
    expect(m.longestLine).toBe(6); // "héllo" is 6 octets in UTF-8
    expect(m.size).toBe(Buffer.byteLength("héllo\r\nshort\r\n.x", "utf8"));
    expect(enc("plain").eightBit).toBe(false);
    const long = enc("x".repeat(MAX_LINE_OCTETS + 1) + "\r\nok");
    expect(long.longestLine).toBe(999);
  });

  it("round-trips random byte soup through an RFC 5321 receiver", () => {
    let seed = 42;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    const alphabet = ["\r", "\n", ".", "a", "\r\n", "é", " "];
    for (let n = 0; n < 500; n++) {
      let s = "";
      const len = Math.floor(rnd() * 30);
      for (let i = 0; i < len; i++) s += alphabet[Math.floor(rnd() * alphabet.length)];
      const normalised = s.replace(/\r\n|\r|\n/g, "\r\n");
      const expected = normalised === "" || normalised.endsWith("\r\n") ? normalised : normalised + "\r\n";
      const { body, rest } = receive(enc(Buffer.from(s, "latin1")).data);
      expect(rest).toBe("");
      expect(body).toBe(expected);
    }
  });

  it("encodes a 5 MB message with many lines quickly", () => {
    const line = ".base64base64base64base64base64base64base64base64base64base64base64base6\n";
    const input = Buffer.from(line.repeat(Math.ceil((5 * 1024 * 1024) / line.length)));
    const started = performance.now();
    const m = enc(input);
    const ms = performance.now() - started;
    const lines = input.length / line.length;
    expect(m.data.length).toBe(input.length + lines * 2 + 3); // one dot and one CR per line, ".\r\n"
    expect(ms).toBeLessThan(1000); // typically ~20 ms
  });

  it("marks only its own results as encoded", () => {
    expect(isEncodedMessage(enc("x"))).toBe(true);
    expect(isEncodedMessage({ data: Buffer.from("x\r\n.\r\n"), size: 1, eightBit: false, longestLine: 1 })).toBe(false);
  });
});
