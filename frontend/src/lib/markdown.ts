// Model output as Markdown, rendered safely: raw HTML in the text is shown as text (never
// parsed), images become links (nothing loads from elsewhere), links are http(s)/mailto only,
// and the result goes through DOMPurify anyway (defence in depth).
import DOMPurify from "dompurify";
import { Marked, type Tokens } from "marked";
import { escapeHtml, highlight } from "./highlight";

const SAFE_URL = /^(https?:|mailto:|#|\/(?!\/))/i;

export function safeUrl(href: string | null | undefined): string | null {
  if (!href) return null;
  const trimmed = href.trim();
  // Browsers ignore ASCII whitespace and control characters inside a scheme: strip them first.
  const squashed = trimmed.replace(/[\u0000-\u0020\u007f-\u009f]/g, "");
  return SAFE_URL.test(squashed) ? trimmed : null;
}

const marked = new Marked({
  gfm: true,
  breaks: false,
  async: false,
  renderer: {
    html({ text }: Tokens.HTML | Tokens.Tag): string {
      return escapeHtml(text);
    },
    code({ text, lang }: Tokens.Code): string {
      const language = (lang ?? "").match(/^\S*/)?.[0] ?? "";
      const cls = language ? ` class="hljs language-${escapeHtml(language)}"` : ` class="hljs"`;
      return `<pre class="code-block"><code${cls}>${highlight(text, language)}</code></pre>\n`;
    },
    link({ href, title, tokens }: Tokens.Link): string {
      const inner = this.parser.parseInline(tokens);
      const url = safeUrl(href);
      if (url === null) return inner;
      const t = title ? ` title="${escapeHtml(title)}"` : "";
      return `<a href="${escapeHtml(url)}"${t} target="_blank" rel="noopener noreferrer nofollow">${inner}</a>`;
    },
    image({ href, text }: Tokens.Image): string {
      const url = safeUrl(href);
      const label = escapeHtml(text || "image");
      return url === null
        ? `[${label}]`
        : `<a href="${escapeHtml(url)}" target="_blank" rel="noopener noreferrer nofollow">[image: ${label}]</a>`;
    },
  },
});

const PURIFY = {
  FORBID_TAGS: ["style", "img", "svg", "math", "form", "input", "button", "textarea", "select", "iframe", "object", "embed"],
  FORBID_ATTR: ["style"],
  ALLOW_DATA_ATTR: false,
};

let hooked = false;
function purifier(): typeof DOMPurify {
  if (!hooked) {
    DOMPurify.addHook("afterSanitizeAttributes", (node) => {
      if (node.tagName === "A") {
        const href = node.getAttribute("href");
        if (safeUrl(href) === null) node.removeAttribute("href");
        node.setAttribute("target", "_blank");
        node.setAttribute("rel", "noopener noreferrer nofollow");
      }
    });
    hooked = true;
  }
  return DOMPurify;
}

/** Sanitised HTML for a Markdown text (model output, or anything else untrusted). */
export function renderMarkdown(text: string): string {
  const html = marked.parse(text) as string;
  return sanitizeHtml(html);
}

export function sanitizeHtml(html: string): string {
  return purifier().sanitize(html, PURIFY) as unknown as string;
}
