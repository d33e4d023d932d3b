/**
 * A plain-text rendering of an HTML body, for the text/plain alternative of html-only messages
 * (RFC 2046 §5.1.4: the simplest alternative first). Deliberately small: block elements become
 * line breaks, list items "- ", links "text (url)", scripts and styles vanish, entities decode.
 * One left-to-right pass with indexOf, so hostile markup (unclosed comments, a million "<a")
 * costs linear time, never backtracking.
 */

const BLOCK = new Set([
  "p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "table", "blockquote", "pre",
  "section", "article", "header", "footer", "hr", "address", "dl", "dt", "dd", "figure", "form",
]);
const HIDDEN = new Set(["head", "style", "script", "title", "template", "noscript"]);
const NAMED: Record<string, string> = {
  amp: "&", lt: "<", gt: ">", quot: '"', apos: "'", nbsp: " ", copy: "©", reg: "®", trade: "™",
  hellip: "…", mdash: "—", ndash: "–", lsquo: "‘", rsquo: "’", ldquo: "“", rdquo: "”",
  laquo: "«", raquo: "»", euro: "€", pound: "£", yen: "¥", cent: "¢", bull: "•", middot: "·",
  deg: "°", times: "×", shy: "", zwnj: "", zwj: "",
};

/** Decodes character references (numeric and the common named ones); unknown ones stay as written. */
export function decodeEntities(s: string): string {
  if (!s.includes("&")) return s;
  return s.replace(/&(#[xX][0-9a-fA-F]{1,6}|#[0-9]{1,7}|[a-zA-Z]{2,8});/g, (whole, ref: string) => {
    if (ref[0] !== "#") return NAMED[ref.toLowerCase()] ?? whole;
    const code = ref[1] === "x" || ref[1] === "X" ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
    return code > 0 && code <= 0x10ffff && !(code >= 0xd800 && code <= 0xdfff) ? String.fromCodePoint(code) : "\uFFFD";
  });
}

function attribute(tag: string, name: string): string | null {
  const m = new RegExp(`\\b${name}\\s*=\\s*(?:"([^"]*)"|'([^']*)'|([^\\s"'>]+))`, "i").exec(tag);
  return m ? decodeEntities(m[1] ?? m[2] ?? m[3] ?? "") : null;
}

/** Renders `html` as plain text (LF line ends; the composer normalises them). */
export function htmlToText(html: string): string {
  const out: string[] = [];
  const links: { href: string; at: number }[] = [];
  const text = (s: string) => {
    if (s) out.push(decodeEntities(s.replace(/\s+/g, " ")));
  };
  let i = 0;
  while (i < html.length) {
    const lt = html.indexOf("<", i);
    if (lt < 0) {
      text(html.slice(i));
      break;
    }
    text(html.slice(i, lt));
    if (html.startsWith("<!--", lt)) {
      const end = html.indexOf("-->", lt + 4);
      i = end < 0 ? html.length : end + 3;
      continue;
    }
    const gt = html.indexOf(">", lt + 1);
    if (gt < 0) break; // an unterminated tag: the rest is markup debris
    const tag = html.slice(lt + 1, gt);
    i = gt + 1;
    const m = /^(\/?)([a-zA-Z][a-zA-Z0-9]*)/.exec(tag);
    if (!m) continue; // <!DOCTYPE>, <?xml?> and the like
    const closing = m[1] === "/";
    const name = m[2]!.toLowerCase();
    if (!closing && HIDDEN.has(name)) {
      const close = new RegExp(`</${name}\\s*>`, "gi");
      close.lastIndex = i;
      i = close.exec(html) ? close.lastIndex : html.length;
    } else if (name === "br") out.push("\n");
    else if (name === "li" && !closing) out.push("\n- ");
    else if ((name === "td" || name === "th") && closing) out.push(" ");
    else if (name === "tr" && closing) out.push("\n");
    else if (BLOCK.has(name)) out.push("\n\n");
    else if (name === "img" && !closing) text(attribute(tag, "alt") ?? "");
    else if (name === "a" && !closing) links.push({ href: attribute(tag, "href") ?? "", at: out.length });
    else if (name === "a" && closing) {
      const link = links.pop();
      if (link && /^(https?|ftp):/i.test(link.href) && out.slice(link.at).join("").trim() !== link.href) out.push(` (${link.href})`);
    }
  }
  return out
    .join("")
    .split("\n")
    .map((line) => line.trim())
    .join("\n")
    .replace(/\n{3,}/g, "\n\n")
    .trim();
}
