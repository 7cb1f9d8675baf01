// The side panel a citation chip opens: the passage (the whole chunk the answer cited), where
// it is in its file, and a link that opens the file in a new tab.
import { useEffect, useRef, useState } from "preact/hooks";
import { userMessage } from "../../api/envelope";
import { closeCitation, inlineFileUrl, loadPassage, openCitation, type Passage } from "../../state/passage";
import "../../styles/passage.css";

export function CitedPassage() {
  const open = openCitation.value;
  const [passage, setPassage] = useState<Passage | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [fileUrl, setFileUrl] = useState<string | null>(null);
  const title = useRef<HTMLHeadingElement>(null);

  useEffect(() => {
    if (!open) return undefined;
    let live = true;
    setPassage(null);
    setError(null);
    setFileUrl(null);
    title.current?.focus();
    loadPassage(open.cite)
      .then(async (p) => {
        if (!live) return;
        setPassage(p);
        if (p.fileId) {
          const url = await inlineFileUrl(p.fileId).catch(() => null);
          if (live) setFileUrl(url);
        }
      })
      .catch((e: unknown) => {
        if (live) setError(userMessage(e));
      });
    const onKey = (e: KeyboardEvent) => {
      if (e.key === "Escape") closeCitation();
    };
    window.addEventListener("keydown", onKey);
    return () => {
      live = false;
      window.removeEventListener("keydown", onKey);
    };
  }, [open]);

  if (!open) return null;
  return (
    <div class="passage-panel" role="dialog" aria-modal="false" aria-labelledby="passage-title">
      <header>
        <h2 id="passage-title" ref={title} tabIndex={-1}>
          Cited passage
        </h2>
        <button type="button" onClick={closeCitation}>
          Close
        </button>
      </header>
      <p class="small muted">
        Source [{open.number}]{passage ? `: ${passage.fileName}` : ""}
        {passage?.heading && ` · ${passage.heading}`}
        {passage?.page != null && ` · page ${passage.page}`}
        {open.cite.score != null && ` · score ${open.cite.score.toFixed(3)}`}
      </p>
      {!passage && !error && <p class="muted" role="status">Loading the passage…</p>}
      {error && <p class="error-note" role="alert">{error}</p>}
      {passage && (
        <>
          {passage.note && <p class="notice small">{passage.note}</p>}
          {passage.text ? (
            <blockquote class="passage-text">{withQuoteMarked(passage.text, open.cite.quote)}</blockquote>
          ) : (
            <p class="muted">No passage text was stored with this citation.</p>
          )}
          {fileUrl && (
            <p>
              <a href={fileUrl} target="_blank" rel="noopener noreferrer">
                Open file
              </a>
            </p>
          )}
        </>
      )}
    </div>
  );
}

/** The passage with the citation's supporting sentence highlighted where it occurs verbatim. */
function withQuoteMarked(text: string, quote: string | null | undefined) {
  const at = quote ? text.indexOf(quote) : -1;
  if (!quote || at < 0) return text;
  return (
    <>
      {text.slice(0, at)}
      <mark class="passage-quote">{quote}</mark>
      {text.slice(at + quote.length)}
    </>
  );
}
