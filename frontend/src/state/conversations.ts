// The sidebar's conversations: `GET /v1/conversations` pages (keyset cursor), open or
// archived, most recently updated first; rename, archive and delete.
import { signal } from "@preact/signals";
import { api } from "../api/client";
import { userMessage } from "../api/envelope";
import type { ConversationOut } from "../api/types";
import { onSignOut } from "./auth";

export type ListStatus = "open" | "archived";

export const conversations = signal<ConversationOut[]>([]);
export const nextCursor = signal<string | null>(null);
export const listStatus = signal<ListStatus>("open");
export const listLoading = signal(false);
export const listError = signal<string | null>(null);

const PAGE = 30;
let generation = 0;

export async function loadConversations(more = false): Promise<void> {
  const mine = more ? generation : ++generation;
  listLoading.value = true;
  listError.value = null;
  try {
    const page = await api.get("/v1/conversations", {
      query: { limit: PAGE, status: listStatus.value, cursor: more ? nextCursor.value : null },
    });
    if (mine !== generation) return;
    const known = more ? conversations.value : [];
    const seen = new Set(known.map((c) => c.id));
    conversations.value = [...known, ...page.items.filter((c) => !seen.has(c.id))];
    nextCursor.value = page.next_cursor;
  } catch (error) {
    if (mine === generation) listError.value = userMessage(error);
  } finally {
    if (mine === generation) listLoading.value = false;
  }
}

export function showStatus(status: ListStatus): void {
  if (listStatus.value === status) return;
  listStatus.value = status;
  conversations.value = [];
  nextCursor.value = null;
  void loadConversations();
}

/** Puts a conversation (new, or just answered) at the top of the open list. */
export function touch(conversation: ConversationOut): void {
  if (listStatus.value !== conversation.status) return;
  conversations.value = [conversation, ...conversations.value.filter((c) => c.id !== conversation.id)];
}

export async function refreshOne(id: string): Promise<void> {
  try {
    touch(await api.get("/v1/conversations/{id}", { path: { id } }));
  } catch {
    // the list is refreshed on its next load
  }
}

export async function rename(id: string, title: string): Promise<void> {
  const updated = await api.patch("/v1/conversations/{id}", { path: { id }, body: { title } });
  conversations.value = conversations.value.map((c) => (c.id === id ? updated : c));
}

export async function setArchived(id: string, archived: boolean): Promise<void> {
  await api.patch("/v1/conversations/{id}", { path: { id }, body: { status: archived ? "archived" : "open" } });
  conversations.value = conversations.value.filter((c) => c.id !== id);
}

export async function remove(id: string): Promise<void> {
  await api.delete("/v1/conversations/{id}", { path: { id } });
  conversations.value = conversations.value.filter((c) => c.id !== id);
}

/** Client-side search over the loaded items (the API has no query parameter for it). */
export function filterConversations(items: readonly ConversationOut[], query: string): ConversationOut[] {
  const q = query.trim().toLowerCase();
  if (!q) return [...items];
  return items.filter((c) => (c.title ?? "").toLowerCase().includes(q) || c.id.toLowerCase().startsWith(q));
}

onSignOut(() => {
  generation++;
  conversations.value = [];
  nextCursor.value = null;
  listStatus.value = "open";
  listError.value = null;
});
