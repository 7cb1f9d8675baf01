import { drafts } from "../../state/drafts";

/** The unsent messages kept in this browser: count, export as JSON, clear. */
export function DraftsPanel() {
  const count = drafts.count.value;
  const exportDrafts = () => {
    const blob = new Blob([drafts.exportJson()], { type: "application/json" });
    const url = URL.createObjectURL(blob);
    const a = document.createElement("a");
    a.href = url;
    a.download = "adaptive-chat-drafts.json";
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  };
  return (
    <section class="panel" aria-labelledby="drafts-title">
      <h2 id="drafts-title">Drafts</h2>
      <p>
        {count === 0 ? "No drafts saved in this browser." : `${count} draft${count === 1 ? "" : "s"} saved in this browser.`}
      </p>
      <div class="row">
        <button type="button" disabled={count === 0} onClick={exportDrafts}>
          Export drafts
        </button>
        <button type="button" class="danger" disabled={count === 0} onClick={() => drafts.clearAll()}>
          Clear drafts
        </button>
      </div>
    </section>
  );
}
