// Settings → "Your data" (DESIGN.md §5a): take a copy of everything (export), or delete the
// account. The dialog opens over the page; closing it gives the focus back to its button.
import { useRef, useState } from "preact/hooks";
import type { UserOut } from "../../api/types";
import "../../styles/account.css";
import { DeleteAccountDialog } from "./DeleteAccountDialog";
import { ExportSection } from "./ExportSection";

export function YourDataPanel({ user }: { user: UserOut }) {
  const [deleting, setDeleting] = useState(false);
  const opener = useRef<HTMLButtonElement>(null);
  const close = () => {
    setDeleting(false);
    setTimeout(() => opener.current?.focus(), 0); // once the dialog has left the page
  };
  return (
    <section id="your-data" class="panel your-data" aria-labelledby="your-data-title">
      <h2 id="your-data-title">Your data</h2>
      <ExportSection />
      <hr class="divider" />
      <div class="stack" role="group" aria-labelledby="delete-title">
        <h3 id="delete-title">Delete your account</h3>
        <p class="small">Removes your account and everything in it. You are asked to confirm first.</p>
        <div class="row">
          <button type="button" class="danger" ref={opener} aria-haspopup="dialog" onClick={() => setDeleting(true)}>
            Delete my account
          </button>
        </div>
      </div>
      {deleting && <DeleteAccountDialog user={user} onClose={close} />}
    </section>
  );
}
