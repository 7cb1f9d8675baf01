import { describe, expect, it } from "vitest";
import { highlight, loadHighlighter } from "../src/lib/highlight";
import { renderMarkdown, safeUrl } from "../src/lib/markdown";

function dom(html: string): HTMLElement {
  const div = document.createElement("div");
  div.innerHTML = html;
  return div;
}

describe("renderMarkdown (model output is untrusted)", () => {
  it("shows raw HTML as text: <img onerror> never becomes an element", () => {
    const html = renderMarkdown("Look: <img src=x onerror=alert(1)>");
    const el = dom(html);
    expect(el.querySelector("img")).toBeNull();
    expect(el.querySelector("[onerror]")).toBeNull();
    expect(el.textContent).toContain("<img src=x onerror=alert(1)>");
  });

  it("shows block HTML and script tags as text", () => {
    const el = dom(renderMarkdown("<script>alert(1)</script>\n\n<div onclick=\"x()\">hi</div>"));
    expect(el.querySelector("script")).toBeNull();
    expect(el.querySelector("div[onclick]")).toBeNull();
    expect(el.textContent).toContain("<script>alert(1)</script>");
  });

  it("drops javascript: and data: links but keeps their text", () => {
    for (const href of ["javascript:alert(1)", "JaVaScRiPt:alert(1)", "java\tscript:alert(1)", "data:text/html,<b>x</b>", "vbscript:x"]) {
      const el = dom(renderMarkdown(`[click me](${href})`));
      expect(el.textContent).toContain("click me");
      for (const a of el.querySelectorAll("a")) expect(a.getAttribute("href") ?? "").not.toMatch(/script|data:/i);
    }
  });

  it("keeps http(s) links, opening in a new tab without an opener", () => {
    const a = dom(renderMarkdown("[docs](https://example.com/a?b=1)")).querySelector("a")!;
    expect(a.getAttribute("href")).toBe("https://example.com/a?b=1");
    expect(a.getAttribute("target")).toBe("_blank");
    expect(a.getAttribute("rel")).toContain("noopener");
  });

  it("turns images into links (nothing loads from elsewhere)", () => {
    const el = dom(renderMarkdown("![pixel](https://tracker.example/p.png)"));
    expect(el.querySelector("img")).toBeNull();
    expect(el.querySelector("a")?.textContent).toBe("[image: pixel]");
  });

  it("renders Markdown: emphasis, lists, tables, escaped code", () => {
    const el = dom(renderMarkdown("**bold** and `a<b`\n\n- one\n- two\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n```\n<img src=x onerror=alert(1)>\n```"));
    expect(el.querySelector("strong")?.textContent).toBe("bold");
    expect(el.querySelectorAll("li")).toHaveLength(2);
    expect(el.querySelector("table")).not.toBeNull();
    expect(el.querySelector("code")?.textContent).toBe("a<b");
    expect(el.querySelector("pre code")?.textContent).toContain("<img src=x onerror=alert(1)>");
    expect(el.querySelector("pre img")).toBeNull();
  });

  it("strips style attributes (the CSP allows no inline styles)", () => {
    expect(renderMarkdown("text")).not.toContain("style=");
  });
});

describe("safeUrl", () => {
  it("allows http(s), mailto, anchors and site paths only", () => {
    expect(safeUrl("https://a.b")).toBe("https://a.b");
    expect(safeUrl("mailto:a@b.c")).toBe("mailto:a@b.c");
    expect(safeUrl("/v1/files/1")).toBe("/v1/files/1");
    expect(safeUrl("//evil.example")).toBeNull();
    expect(safeUrl(" javascript:alert(1)")).toBeNull();
    expect(safeUrl("\u0001javascript:alert(1)")).toBeNull();
  });
});

describe("code highlighting (loaded on demand)", () => {
  it("escapes until highlight.js has loaded, then highlights known languages", async () => {
    await loadHighlighter();
    const html = highlight('const a = "<b>";', "typescript");
    expect(html).toContain("hljs-keyword");
    expect(html).toContain("&lt;b&gt;");
    expect(highlight("<x>", "no-such-language")).toBe("&#60;x&#62;");
    const el = dom(renderMarkdown("```python\ndef f(): pass\n```"));
    expect(el.querySelector("pre code.language-python span.hljs-keyword")?.textContent).toBe("def");
  });
});
