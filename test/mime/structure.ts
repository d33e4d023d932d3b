/**
 * A deliberately tiny MIME walker for tests (independent of the composer's code): the tree as
 * `type:encoding` leaves and `multipart/x(…)` nodes, plus every leaf's encoded body.
 */

export interface Leaf {
  type: string;
  encoding: string;
  body: string;
}

function unfoldedHead(entity: string): { head: string; body: string } {
  const sep = entity.indexOf("\r\n\r\n");
  if (sep < 0) return { head: entity.replace(/\r\n[ \t]/g, " "), body: "" };
  return { head: entity.slice(0, sep).replace(/\r\n[ \t]/g, " "), body: entity.slice(sep + 4) };
}

function walk(entity: string, leaves: Leaf[]): string {
  const { head, body } = unfoldedHead(entity);
  const ct = /^content-type:[ \t]*([^;\r\n]+)(.*)$/im.exec(head);
  const type = (ct?.[1] ?? "text/plain").trim().toLowerCase();
  if (type.startsWith("multipart/")) {
    const boundary = /boundary="?([^";\s]+)"?/i.exec(ct?.[2] ?? "")?.[1];
    if (!boundary) throw new Error("multipart without boundary");
    // RFC 2046 §5.1.1: delimiters start a line; the CRLF before them belongs to them.
    const pieces = `\r\n${body}`.split(`\r\n--${boundary}`);
    const closing = pieces.findIndex((p) => p.startsWith("--"));
    if (closing < 0) throw new Error(`multipart ${boundary} is not closed`);
    const children = pieces.slice(1, closing).map((p) => walk(p.replace(/^[ \t]*\r\n/, ""), leaves));
    return `${type}(${children.join(",")})`;
  }
  const encoding = (/^content-transfer-encoding:[ \t]*(\S+)/im.exec(head)?.[1] ?? "7bit").toLowerCase();
  leaves.push({ type, encoding, body });
  return `${type}:${encoding}`;
}

/** The MIME tree of a raw message and its leaves. */
export function mimeStructure(raw: Buffer): { tree: string; leaves: Leaf[] } {
  const leaves: Leaf[] = [];
  const tree = walk(raw.toString("utf8"), leaves);
  return { tree, leaves };
}

/** The raw header block (folded lines as they are). */
export function headerLines(raw: Buffer): string[] {
  const text = raw.toString("utf8");
  return text.slice(0, text.indexOf("\r\n\r\n")).split("\r\n");
}
