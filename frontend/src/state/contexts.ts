// The knowledge contexts the user may read (own and global), shared by the chat's context
// selector, the upload panel and the Contexts tab; who may change one, and the changes
// (rename, delete) that keep every selector in step.
import { signal } from "@preact/signals";
import { api } from "../api/client";
import { userMessage } from "../api/envelope";
import type { ContextOut } from "../api/types";
import { auth, onSignOut } from "./auth";
import { contextIds } from "./chat";

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

/** Whether the signed-in user may rename, delete or attach files to `context`: its owner, or an
 * admin (the API's rule: a global context someone else owns is read-only to everyone else). */
export function canChange(context: Pick<ContextOut, "owner_user_id">): boolean {
  const state = auth.value;
  if (state.status !== "signed-in") return false;
  return state.user.id === context.owner_user_id || state.user.role === "admin";
}

function replace(item: ContextOut): ContextOut {
  contexts.value = contexts.value.map((c) => (c.id === item.id ? item : c));
  return item;
}

/** PATCH /v1/contexts/{id}: a new name (and description, when given). */
export async function updateContext(id: string, changes: { name?: string; description?: string }): Promise<ContextOut> {
  return replace(await api.patch("/v1/contexts/{id}", { path: { id }, body: changes }));
}

/** GET /v1/contexts/{id}: the context again, with fresh stats. */
export async function refreshContext(id: string): Promise<ContextOut> {
  return replace(await api.get("/v1/contexts/{id}", { path: { id } }));
}

/** DELETE /v1/contexts/{id}: the context and its chunks (the files themselves stay). */
export async function deleteContext(id: string): Promise<void> {
  await api.delete("/v1/contexts/{id}", { path: { id } });
  contexts.value = contexts.value.filter((c) => c.id !== id);
  if (contextIds.value.includes(id)) contextIds.value = contextIds.value.filter((c) => c !== id);
}

onSignOut(() => {
  loaded = false;
  contexts.value = [];
  contextsCursor.value = null;
});
