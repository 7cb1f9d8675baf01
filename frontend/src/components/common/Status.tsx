import type { ComponentChildren } from "preact";

export function ErrorNote({ message, onRetry }: { message: string | null; onRetry?: () => void }) {
  if (!message) return null;
  return (
    <div class="error-note" role="alert">
      <span>{message}</span>
      {onRetry && (
        <button type="button" class="link-button" onClick={onRetry}>
          Try again
        </button>
      )}
    </div>
  );
}

export function Loading({ label = "Loading…" }: { label?: string }) {
  return (
    <p class="muted" role="status">
      {label}
    </p>
  );
}

/** A part of the app whose back end does not exist yet: said plainly, never faked. */
export function NotAvailable({ what, children }: { what: string; children?: ComponentChildren }) {
  return (
    <div class="not-available" role="note">
      <strong>{what}: not available yet.</strong>
      {children && <span> {children}</span>}
    </div>
  );
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <p class="muted empty">{children}</p>;
}
