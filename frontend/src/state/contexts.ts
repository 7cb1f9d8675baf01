// The knowledge contexts the user may read (own and global), shared by the chat's context
// selector, the upload panel and the Contexts tab.
import { signal } from "@preact/signals";
import { api } from "../api/client";
import { userMessage } from "../api/envelope";
import type { ContextOut } from "../api/types";
import { onSignOut } from "./auth";

export const contexts = signal<ContextOut[]>([]);
export const contextsCursor = signal<string | null>(null);
export const contextsError = signal<string | null>(null);
export const contextsLoading = signal(false);
let loaded = false;

export async function loadContexts(more = false): Promise<void> {
  contextsLoading.value = true;
  contextsError.value = null;
  try {
    const page = await api.get("/v1/contexts", { query: { owner: "all", limit: 50, cursor: more ? contextsCursor.value : null } });
    contexts.value = more ? [...contexts.value, ...page.items] : page.items;
    contextsCursor.value = page.next_cursor ?? null;
    loaded = true;
  } catch (error) {
    contextsError.value = userMessage(error);
  } finally {
    contextsLoading.value = false;
  }
}

export function ensureContexts(): void {
  if (!loaded && !contextsLoading.value) void loadContexts();
}

export async function createContext(name: string, description: string): Promise<ContextOut> {
  const made = await api.post("/v1/contexts", { body: { name, description: description || null } });
  contexts.value = [made, ...contexts.value];
  return made;
}

onSignOut(() => {
  loaded = false;
  contexts.value = [];
  contextsCursor.value = null;
});
