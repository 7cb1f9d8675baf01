import { useMemo } from "preact/hooks";
import { highlighterReady } from "../../lib/highlight";
import { renderMarkdown } from "../../lib/markdown";

/** Model text as Markdown; renderMarkdown sanitises it (raw HTML shows as text). */
export function Markdown({ text }: { text: string }) {
  const ready = highlighterReady.value; // render again once code colours have loaded
  const html = useMemo(() => renderMarkdown(text), [text, ready]);
  return <div class="markdown" dangerouslySetInnerHTML={{ __html: html }} />;
}
