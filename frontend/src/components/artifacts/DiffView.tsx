// A line diff of two JSON documents (pretty-printed), added and removed lines marked by class
// and by a +/- sign (so the difference does not rest on colour alone).
import { diffLines, diffStats, pretty } from "../../lib/linediff";

export function DiffView({ before, after, label }: { before: unknown; after: unknown; label: string }) {
  const lines = diffLines(pretty(before), pretty(after));
  if (!lines) return <p class="muted">These versions are too large to compare here.</p>;
  const { added, removed } = diffStats(lines);
  return (
    <figure class="diff-figure">
      <figcaption class="small muted">
        {label}: {added === 0 && removed === 0 ? "no difference" : `${added} line${added === 1 ? "" : "s"} added, ${removed} removed`}
      </figcaption>
      <pre class="diff" aria-label={label}>
        {lines.map((l, i) => (
          <code key={i} class={`diff-line ${l.op}`} data-op={l.op}>
            <span class="diff-sign" aria-hidden="true">{l.op === "added" ? "+" : l.op === "removed" ? "-" : " "}</span>
            {l.op === "added" && <span class="visually-hidden">added: </span>}
            {l.op === "removed" && <span class="visually-hidden">removed: </span>}
            {l.text}
          </code>
        ))}
      </pre>
    </figure>
  );
}
