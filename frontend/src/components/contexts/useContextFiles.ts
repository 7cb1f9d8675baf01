// A context's files with each one's ingestion there (GET /v1/contexts/{id}/files: all of them
// to the context's owner, only one's own in someone else's shared context), and the user's
// files to attach from (GET /v1/files) when they may change it. An ingestion still pending or processing is read again every 1.5 s
// (lib/upload's watchIngestion) until it is ready or failed, the file is detached, or the
// component goes (the tab left, another context chosen).
import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "../../api/client";
import { userMessage } from "../../api/envelope";
import type { components } from "../../api/schema";
import { type Ingestion, watchIngestion } from "../../lib/upload";

export type FileOut = components["schemas"]["FileOut"];

export interface Attachment {
  file: FileOut;
  state: Ingestion;
}

export interface ContextFiles {
  /** The user's files (null while loading). */
  files: FileOut[] | null;
  /** Those attached to the context, newest first. */
  attached: Attachment[];
  loading: boolean;
  error: string | null;
  reload: () => void;
  /** After POST /v1/contexts/{id}/files: the file is followed from "pending". */
  added: (file: FileOut) => void;
  /** After DELETE /v1/contexts/{id}/files/{file_id}. */
  removed: (fileId: string) => void;
}

type ContextFile = components["schemas"]["ContextFileOut"];

const BUSY = new Set(["pending", "processing"]);
const PAGES = 5;

export const isBusy = (a: Attachment): boolean => BUSY.has(a.state.status);

/** Up to PAGES pages of a keyset-paged listing. */
async function allPages<T>(read: (cursor: string | null) => Promise<{ items: T[]; next_cursor?: string | null }>): Promise<T[]> {
  const all: T[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < PAGES; page++) {
    const got = await read(cursor);
    all.push(...got.items);
    cursor = got.next_cursor ?? null;
    if (!cursor) break;
  }
  return all;
}

export const asAttachment = (item: ContextFile): Attachment => ({
  file: item.file,
  state: { status: item.status, chunks: item.chunks, error: item.error ?? null },
});

/** `onSettled`: an ingestion ended (the context's stats and chunks changed). `canAttach`: read
 *  the user's files too (the choice of what to attach). */
export function useContextFiles(contextId: string, onSettled: () => void, canAttach: boolean): ContextFiles {
  const [files, setFiles] = useState<FileOut[] | null>(null);
  const [attached, setAttached] = useState<Attachment[]>([]);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);
  const [generation, setGeneration] = useState(0);
  const watchers = useRef(new Map<string, AbortController>());
  const settled = useRef(onSettled);
  settled.current = onSettled;

  useEffect(() => {
    let live = true;
    setLoading(true);
    setError(null);
    setAttached([]);
    const inContext = allPages((cursor) => api.get("/v1/contexts/{id}/files", { path: { id: contextId }, query: { limit: 200, cursor } }));
    const mine = canAttach ? allPages((cursor) => api.get("/v1/files", { query: { limit: 200, cursor } })) : Promise.resolve(null);
    Promise.all([inContext, mine])
      .then(([found, all]) => {
        if (!live) return;
        setFiles(all);
        setAttached(found.map(asAttachment));
      })
      .catch((e: unknown) => {
        if (live) setError(userMessage(e));
      })
      .finally(() => {
        if (live) setLoading(false);
      });
    return () => {
      live = false;
    };
  }, [contextId, generation, canAttach]);

  // One watcher per busy attachment (it ends by itself when the ingestion does); the watcher
  // of a file detached meanwhile is stopped.
  useEffect(() => {
    const present = new Set(attached.map((a) => a.file.id));
    for (const [id, control] of watchers.current) {
      if (!present.has(id)) {
        control.abort();
        watchers.current.delete(id);
      }
    }
    for (const id of attached.filter(isBusy).map((a) => a.file.id)) {
      if (watchers.current.has(id)) continue;
      const control = new AbortController();
      watchers.current.set(id, control);
      const update = (state: Ingestion) => {
        if (control.signal.aborted) return;
        setAttached((now) => now.map((a) => (a.file.id === id ? { ...a, state } : a)));
      };
      watchIngestion(id, contextId, update, { signal: control.signal })
        .then((last) => {
          if (control.signal.aborted) return;
          watchers.current.delete(id);
          if (last && !BUSY.has(last.status)) settled.current();
        })
        .catch((e: unknown) => {
          if (control.signal.aborted) return;
          watchers.current.delete(id);
          update({ status: "unknown", chunks: null, error: `Could not follow the indexing: ${userMessage(e)}` });
        });
    }
  }, [attached, contextId]);

  // Leaving (the tab, or this context): every watcher stops.
  useEffect(() => () => {
    for (const control of watchers.current.values()) control.abort();
    watchers.current.clear();
  }, [contextId]);

  return {
    files, attached, loading, error,
    reload: () => setGeneration((g) => g + 1),
    added: (file) => setAttached((now) => [
      { file, state: { status: "pending", chunks: null, error: null } },
      ...now.filter((a) => a.file.id !== file.id),
    ]),
    removed: (fileId) => setAttached((now) => now.filter((a) => a.file.id !== fileId)),
  };
}
