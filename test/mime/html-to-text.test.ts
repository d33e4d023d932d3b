/** The text/plain alternative rendered from html: blocks, lists, links, entities, hidden elements. */
import { describe, expect, it } from "vitest";
import { htmlToText } from "../../src/mime/html-to-text.js";

describe("htmlToText", () => {
  it.each([
    ["paragraphs as blank-line-separated blocks", "<p>One</p><p>Two</p>", "One\n\nTwo"],
    ["line breaks", "a<br>b<br/>c", "a\nb\nc"],
    ["list items", "<ul><li>one</li><li>two</li></ul>", "- one\n- two"],
    ["a link with its address", '<a href="https://example.com/a">Read</a>', "Read (https://example.com/a)"],
    ["a link whose text is its address once", '<a href="https://example.com">https://example.com</a>', "https://example.com"],
    ["a cid link without its address", '<a href="cid:x">logo</a>', "logo"],
    ["styles, scripts and the head removed", "<head><title>T</title><style>p{}</style></head><script>x()</script>Body", "Body"],
    ["entities decoded", "&lt;b&gt; &amp; &quot;q&quot; &#233; &#x1F600; &nbsp;", '<b> & "q" é 😀'],
    ["whitespace collapsed", "a \n\t  b", "a b"],
    ["comments removed, even unclosed", "a<!-- x -->b<!-- never closed", "ab"],
    ["table cells apart, rows on lines", "<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>", "a b\nc"],
    ["image alt text", '<img src="cid:logo" alt="Logo">', "Logo"],
  ])("renders %s", (_, html, expected) => {
    expect(htmlToText(html)).toBe(expected);
  });

  it("takes linear time on hostile markup", () => {
    const start = performance.now();
    htmlToText("<a href=x>".repeat(50_000) + "<!--".repeat(50_000) + "<style>".repeat(10_000));
    expect(performance.now() - start).toBeLessThan(2000);
  });
});
