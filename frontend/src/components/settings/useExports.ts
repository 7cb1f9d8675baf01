// The user's recent data exports, polled while one is queued or running: an export takes from
// seconds to minutes, and the user waits on this screen for the Download button (the mail
// says the same later). Polling stops once nothing is pending, and when the screen goes.
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { type DataExport, isPending, listExports } from "../../api/account";
import { userMessage } from "../../api/envelope";

/** How often a pending export is asked about: modest, an export is a background job. */
export const POLL_MS = 4000;

export interface Exports {
  items: DataExport[] | null;
  error: string | null;
  /** Loads the list now (and polls on while an export is pending). */
  reload: () => void;
  /** Shows a just-requested export at the top at once, and polls for its progress. */
  add: (e: DataExport) => void;
  /** Replaces one export as the server last described it (a download that met an expired one). */
  update: (e: DataExport) => void;
}

export function useExports(): Exports {
  const [items, setItems] = useState<DataExport[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const abort = useRef<AbortController | null>(null);
  const live = useRef(true);

  const stop = () => {
    if (timer.current !== null) clearTimeout(timer.current);
    timer.current = null;
    abort.current?.abort();
    abort.current = null;
  };

  const load = useCallback(async () => {
    stop();
    const mine = new AbortController();
    abort.current = mine;
    try {
      const list = await listExports(mine.signal);
      if (!live.current || mine.signal.aborted) return;
      setItems(list);
      setError(null);
      if (list.some(isPending)) timer.current = setTimeout(() => void load(), POLL_MS);
    } catch (e) {
      // A failed poll stops polling; "Try again" starts it again.
      if (live.current && !mine.signal.aborted) setError(userMessage(e));
    }
  }, []);

  useEffect(() => {
    live.current = true;
    void load();
    return () => {
      live.current = false;
      stop();
    };
  }, [load]);

  const add = useCallback((e: DataExport) => {
    setItems((prev) => [e, ...(prev ?? []).filter((x) => x.id !== e.id)]);
    stop();
    timer.current = setTimeout(() => void load(), POLL_MS);
  }, [load]);

  const update = useCallback((e: DataExport) => {
    setItems((prev) => (prev ?? []).map((x) => (x.id === e.id ? e : x)));
  }, []);

  return { items, error, reload: () => void load(), add, update };
}
