// The Contexts tab (SPEC §17.4): create a context, choose one, and manage it
// (components/contexts/). A search hit opens in the same "Cited passage" panel as a citation.
import { useEffect, useState } from "preact/hooks";
import { contexts, loadContexts } from "../../state/contexts";
import { closeCitation } from "../../state/passage";
import { CitedPassage } from "../chat/CitedPassage";
import { ContextDetails } from "../contexts/ContextDetails";
import { ContextList } from "../contexts/ContextList";
import { CreateContext } from "../contexts/CreateContext";
import "../../styles/contexts.css";

export function ContextsTab() {
  const [selected, setSelected] = useState<string | null>(null);
  useEffect(() => {
    void loadContexts();
    return closeCitation;
  }, []);
  useEffect(closeCitation, [selected]);
  const chosen = contexts.value.find((c) => c.id === selected) ?? null;
  const deleted = () => {
    setSelected(null);
    setTimeout(() => document.getElementById("contexts-title")?.focus(), 0);
  };
  return (
    <div class="tab-page two-col">
      <div>
        <CreateContext onCreated={(made) => setSelected(made.id)} />
        <ContextList selected={selected} onSelect={setSelected} />
      </div>
      {chosen ? (
        <ContextDetails key={chosen.id} context={chosen} onDeleted={deleted} />
      ) : (
        <p class="muted">Select a context to see its details.</p>
      )}
      <CitedPassage />
    </div>
  );
}
