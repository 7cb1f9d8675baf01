// The open conversation: its messages (a tree), the branch shown, the answer being streamed,
// and the actions on them (send, regenerate, stop, switch branch).
import { computed, signal } from "@preact/signals";
import { api, newId } from "../api/client";
import { userMessage } from "../api/envelope";
import type { MessagePage, PreferenceOut } from "../api/types";
import { ChatSocket, socketUrl } from "../api/socket";
import { ChatStreams } from "../api/stream";
import { parentKey, siblings, visiblePath } from "../lib/tree";
import { onSignOut, sessionId } from "./auth";
import { type ChatMessage, fromApi, isLocalId, type MessageMap } from "./messages";
import { runTurn } from "./turn";
import { audioSegment, type VoiceClipRef } from "./voice";

export const activeId = signal<string | null>(null);
export const messages = signal<MessageMap>({});
export const selected = signal<Readonly<Record<string, string>>>({});
export const loading = signal(false);
export const loadError = signal<string | null>(null);
export const chatError = signal<string | null>(null);
/** The answer being written, while it streams. */
export const streaming = signal<{ assistantId: string; stopping: boolean; stop: () => void } | null>(null);
/** The chat options: contexts to answer from, a workflow to run instead of the default. */
export const contextIds = signal<string[]>([]);
export const workflowId = signal("");
/** The composer's text (kept here so a refused message can be put back). */
export const composerText = signal("");
/** Feedback already given, by assistant message id. */
export const feedback = signal<Readonly<Record<string, PreferenceOut>>>({});

export const path = computed<ChatMessage[]>(() => visiblePath(Object.values(messages.value), selected.value));

const socket = typeof WebSocket === "undefined" ? null : new ChatSocket(socketUrl(), () => sessionId.value);
export const streams = new ChatStreams(api, socket);

let loadToken = 0;

export function resetChat(): void {
  loadToken++;
  activeId.value = null;
  messages.value = {};
  selected.value = {};
  loadError.value = null;
  chatError.value = null;
  feedback.value = {};
  streaming.value = null;
}

/** Loads every message of a conversation (pages of 100, in seq order). */
export async function loadConversation(id: string): Promise<void> {
  if (activeId.value === id && Object.keys(messages.value).length > 0) return;
  resetChat();
  const mine = loadToken;
  activeId.value = id;
  loading.value = true;
  try {
    const all: Record<string, ChatMessage> = {};
    let cursor: number | undefined;
    for (let page = 0; page < 50; page++) {
      const got: MessagePage = await api.get("/v1/conversations/{id}/messages", { path: { id }, query: { limit: 100, cursor } });
      if (mine !== loadToken) return;
      for (const m of got.items) all[m.id] = fromApi(m);
      if (!got.next_cursor) break;
      cursor = Number(got.next_cursor);
    }
    messages.value = all;
    void loadFeedback(id, mine);
  } catch (error) {
    if (mine === loadToken) loadError.value = userMessage(error);
  } finally {
    if (mine === loadToken) loading.value = false;
  }
}

/** Reloads the open conversation from the server (after a dropped stream, say). */
export async function reloadConversation(): Promise<void> {
  const id = activeId.value;
  if (!id) return;
  const keep = selected.value;
  messages.value = {};
  await loadConversation(id);
  selected.value = keep;
}

async function loadFeedback(conversationId: string, mine: number): Promise<void> {
  try {
    const page = await api.get("/v1/preferences", { query: { conversation_id: conversationId, limit: 100 } });
    if (mine !== loadToken) return;
    const byMessage: Record<string, PreferenceOut> = {};
    for (const p of page.items) byMessage[p.message_id] ??= p;
    feedback.value = byMessage;
  } catch {
    // the buttons just show no earlier choice
  }
}

/** A fresh thread. A turn still streaming is left to finish (the server stores it). */
export function newConversation(): void {
  resetChat();
}

/** Sends a message as the next turn of the branch shown (or starts a conversation); with
 *  `clip`, as a voice message (`text` is its transcript as the user left it). */
export function send(text: string, clip: VoiceClipRef | null = null): boolean {
  const content = text.trim() === "" ? "" : text;
  if (!content || streaming.value) return false;
  const leaf = [...path.value].reverse().find((m) => !isLocalId(m.id));
  const conversationId = activeId.value;
  void runTurn({
    body: {
      conversation_id: conversationId,
      parent_id: conversationId && leaf ? leaf.id : null,
      // A voice message: the transcript as the user left it, and the clip it came from.
      message: clip ? { content, mode: "voice", clip_id: clip.clipId } : { content },
      context_ids: contextIds.value,
      workflow_id: workflowId.value.trim() || null,
      client_request_id: newId(),
    },
    question: {
      content,
      parentId: leaf?.id ?? null,
      contentStruct: clip ? { segments: [{ type: "text", text: content }, audioSegment(clip)] } : null,
      clip,
    },
  });
  return true;
}

/** Answers the question of `answer` again: a new sibling answer, shown at once. */
export function regenerate(answer: ChatMessage): void {
  answerAgain(answer.parentId);
}

/** Answers a stored question (again): `regenerate` with the question as parent. */
export function answerAgain(questionId: string | null): void {
  const question = questionId ? messages.value[questionId] : undefined;
  const conversationId = activeId.value;
  if (!question || !conversationId || streaming.value) return;
  void runTurn({
    body: {
      conversation_id: conversationId,
      parent_id: question.id,
      regenerate: true,
      message: { content: question.content },
      context_ids: contextIds.value,
      workflow_id: workflowId.value.trim() || null,
      client_request_id: newId(),
    },
    question: null,
    questionId: question.id,
  });
}

/** Edit and resubmit: `text` as a new version of a stored question. It becomes a sibling of
 *  the original (the thread branches there, the original and its answers stay reachable with
 *  the ‹ › arrows) and is answered at once. */
export function editQuestion(question: ChatMessage, text: string): boolean {
  const conversationId = activeId.value;
  if (!text.trim() || !conversationId || streaming.value || question.role !== "user" || isLocalId(question.id)) return false;
  void runTurn({
    body: {
      conversation_id: conversationId,
      edit_of: question.id,
      message: { content: text },
      context_ids: contextIds.value,
      workflow_id: workflowId.value.trim() || null,
      client_request_id: newId(),
    },
    question: { content: text, parentId: question.parentId },
    keepRefused: true,
  });
  return true;
}

export function stop(): void {
  const s = streaming.value;
  if (!s || s.stopping) return;
  streaming.value = { ...s, stopping: true };
  s.stop();
}

/** Shows the previous (-1) or next (+1) sibling of a message. */
export function showSibling(message: ChatMessage, delta: number): void {
  const { list, index } = siblings(Object.values(messages.value), message);
  const target = list[index + delta];
  if (!target) return;
  selected.value = { ...selected.value, [parentKey(message)]: target.id };
}

export function siblingInfo(message: ChatMessage): { index: number; count: number } {
  const { list, index } = siblings(Object.values(messages.value), message);
  return { index, count: list.length };
}

export function setError(error: unknown): void {
  chatError.value = userMessage(error);
}

onSignOut(() => {
  streaming.value?.stop();
  socket?.close();
  resetChat();
  contextIds.value = [];
  workflowId.value = "";
});
