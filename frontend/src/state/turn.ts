// Running one turn in the open conversation: the optimistic question, the answer growing token
// by token (batched per animation frame), then the stored ids, citations, adapters and trace.
import type { ContentStruct, MessageDoneData, StreamErrorData, StreamEvent } from "../api/events";
import type { StartBody } from "../api/stream";
import { navigate } from "./router";
import { activeId, chatError, composerText, messages, reloadConversation, selected, streaming, streams } from "./chat";
import { refreshOne } from "./conversations";
import { drafts } from "./drafts";
import { type ChatMessage, localMessage, maxSeq, renameId } from "./messages";
import { parentKey } from "../lib/tree";
import { voiceClip, type VoiceClipRef } from "./voice";

export interface TurnSpec {
  body: StartBody;
  /** The new question (shown at once), or null when answering an existing one again. */
  question: {
    content: string;
    parentId: string | null;
    contentStruct?: ContentStruct | null;
    /** A voice message's clip: put back with the text if the message is refused. */
    clip?: VoiceClipRef | null;
  } | null;
  questionId?: string;
  /** A refused question is not put back into the composer (an edit: it was typed elsewhere). */
  keepRefused?: boolean;
}

function patch(id: string, change: Partial<ChatMessage>): void {
  const current = messages.value[id];
  if (current) messages.value = { ...messages.value, [id]: { ...current, ...change } };
}

const frame = (fn: () => void): void => {
  if (typeof requestAnimationFrame === "function") requestAnimationFrame(fn);
  else setTimeout(fn, 16);
};

export async function runTurn(spec: TurnSpec): Promise<void> {
  const key = spec.body.client_request_id;
  const startedIn = activeId.value;
  const seq = maxSeq(messages.value);
  let questionId = spec.questionId ?? "";
  let answerId = `stream-${key}`;
  const added: Record<string, ChatMessage> = {};
  const sel: Record<string, string> = { ...selected.value };
  if (spec.question) {
    questionId = `local-${key}`;
    const q = {
      ...localMessage({ id: questionId, parentId: spec.question.parentId, seq: seq + 1, role: "user", content: spec.question.content, status: "pending" }),
      contentStruct: spec.question.contentStruct ?? null,
    };
    added[questionId] = q;
    sel[parentKey(q)] = questionId;
  }
  added[answerId] = localMessage({ id: answerId, parentId: questionId, seq: seq + 2, role: "assistant", content: "", status: "streaming" });
  sel[questionId] = answerId;
  messages.value = { ...messages.value, ...added };
  selected.value = sel;
  chatError.value = null;
  drafts.clear(startedIn);

  // Updates apply only while the same conversation is open (the user may have moved on:
  // the server finishes and stores the answer all the same).
  const current = () => activeId.value === startedIn && messages.value[answerId] !== undefined;
  let pending = "";
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (!pending || !current()) return;
    const m = messages.value[answerId]!;
    patch(answerId, { content: m.content + pending });
    pending = "";
  };
  const onEvent = (event: StreamEvent) => {
    if (!current()) return;
    if (event.event === "token") {
      pending += event.data;
      if (!scheduled) {
        scheduled = true;
        frame(flush);
      }
    } else if (event.event === "trace") {
      patch(answerId, { liveTrace: [...messages.value[answerId]!.liveTrace, event.data] });
    }
  };

  const turn = streams.start(spec.body, onEvent);
  streaming.value = { assistantId: answerId, stopping: false, stop: () => turn.cancel() };
  const end = await turn.done;
  flush();
  if (streaming.value?.assistantId === answerId) streaming.value = null;
  if (!current()) return;

  if (end.kind === "done") {
    finish(end.data, questionId, answerId);
    answerId = end.data.message_id ?? answerId;
  } else if (end.kind === "error") {
    failed(end.data, questionId, answerId, spec);
  } else {
    patch(answerId, { status: "failed", error: end.message });
    setTimeout(() => void reloadConversation(), 2000);
  }
}

function finish(data: MessageDoneData, questionId: string, answerId: string): void {
  let map = messages.value;
  let sel = selected.value;
  if (questionId !== data.user_message_id) ({ map, selected: sel } = renameId(map, sel, questionId, data.user_message_id));
  const finalId = data.message_id ?? answerId;
  if (finalId !== answerId) ({ map, selected: sel } = renameId(map, sel, answerId, finalId));
  const q = map[data.user_message_id];
  const a = map[finalId];
  const next = { ...map };
  if (q) next[q.id] = { ...q, status: "done" };
  if (a) {
    next[a.id] = {
      ...a,
      status: "done",
      content: a.content || data.content || "",
      contentStruct: data.content_struct,
      adapters: data.adapters ?? [],
      adaptersSkipped: data.adapters_skipped ?? [],
      trace: data.trace ?? null,
      cancelled: data.cancelled,
      finishReason: data.trace?.finish_reason ?? null,
    };
  }
  messages.value = next;
  selected.value = sel;
  if (activeId.value === null) {
    activeId.value = data.conversation_id;
    navigate(`/c/${data.conversation_id}`, { replace: true });
  }
  void refreshOne(data.conversation_id);
}

function failed(error: StreamErrorData, questionId: string, answerId: string, spec: TurnSpec): void {
  const answer = messages.value[answerId];
  const details = (error.details ?? {}) as { conversation_id?: string; user_message_id?: string };
  const stored = typeof details.user_message_id === "string";
  if (answer && answer.content) {
    patch(answerId, { status: "failed", error: error.message });
  } else {
    const next = { ...messages.value };
    delete next[answerId];
    if (spec.question && !stored) {
      // Refused before anything was stored: the question goes back into the composer.
      delete next[questionId];
      if (!spec.keepRefused && !composerText.value.trim()) {
        composerText.value = spec.question.content;
        voiceClip.value = spec.question.clip ?? null;
      }
    }
    messages.value = next;
    if (spec.question && stored) patch(questionId, { status: "done", error: error.message });
  }
  chatError.value = error.message;
  if (activeId.value === null && typeof details.conversation_id === "string") {
    activeId.value = details.conversation_id;
    navigate(`/c/${details.conversation_id}`, { replace: true });
    void refreshOne(details.conversation_id);
  }
  if (stored) setTimeout(() => void reloadConversation(), 1500);
}
