// Code highlighting, loaded on first use: until highlight.js arrives, code shows escaped and
// plain; `highlighterReady` turns true when it has, so views render again with colours.
import { signal } from "@preact/signals";

export const highlighterReady = signal(false);
let impl: ((code: string, language: string) => string | null) | null = null;
let loading: Promise<void> | null = null;

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function loadHighlighter(): Promise<void> {
  loading ??= import("./hljs").then((m) => {
    impl = m.highlightCode;
    highlighterReady.value = true;
  });
  return loading;
}

/** Highlighted HTML for code in a known language, else the code escaped. */
export function highlight(code: string, language: string | undefined): string {
  const lang = (language ?? "").trim().toLowerCase();
  if (lang) {
    if (impl) {
      const html = impl(code, lang);
      if (html !== null) return html;
    } else {
      void loadHighlighter().catch(() => {});
    }
  }
  return escapeHtml(code);
}
