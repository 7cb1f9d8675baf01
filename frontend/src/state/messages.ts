// The chat view's message model: what the API stores (MessageOut) plus what the client knows
// while a turn runs (optimistic ids, streaming status, live trace).
import type { AppliedAdapter, ContentStruct, SkippedAdapter, TraceData, TurnTrace } from "../api/events";
import type { MessageOut } from "../api/types";
import type { TreeNode } from "../lib/tree";

export type Role = "user" | "assistant" | "system" | "summary";
export type MessageStatus = "done" | "pending" | "streaming" | "failed";

export interface ChatMessage extends TreeNode {
  role: Role;
  content: string;
  contentStruct: ContentStruct | null;
  createdAt: string;
  status: MessageStatus;
  adapters: AppliedAdapter[];
  /** Routed adapters the model service refused: the answer came without them. */
  adaptersSkipped: SkippedAdapter[];
  trace: TurnTrace | null;
  cancelled: boolean;
  finishReason: string | null;
  error: string | null;
  liveTrace: TraceData[];
}

export type MessageMap = Readonly<Record<string, ChatMessage>>;

function asRole(role: string): Role {
  return role === "user" || role === "assistant" || role === "summary" ? role : "system";
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function fromApi(m: MessageOut): ChatMessage {
  const meta = m.meta ?? {};
  const failed = isObject(meta["turn_failed"]) ? meta["turn_failed"] : null;
  const role = asRole(m.role);
  return {
    id: m.id,
    parentId: m.parent_id,
    seq: m.seq,
    hidden: role === "summary",
    role,
    content: m.content,
    contentStruct: isObject(m.content_struct) ? (m.content_struct as unknown as ContentStruct) : null,
    createdAt: m.created_at,
    status: "done",
    adapters: Array.isArray(meta["adapters"]) ? (meta["adapters"] as AppliedAdapter[]) : [],
    adaptersSkipped: Array.isArray(meta["adapters_skipped"]) ? (meta["adapters_skipped"] as SkippedAdapter[]) : [],
    trace: isObject(meta["trace"]) ? (meta["trace"] as TurnTrace) : null,
    cancelled: meta["cancelled"] === true,
    finishReason: typeof meta["finish_reason"] === "string" ? meta["finish_reason"] : null,
    error: failed ? `This message got no answer (${String(failed["reason"] ?? "failed")}). Try Regenerate or send it again.` : null,
    liveTrace: [],
  };
}

export function localMessage(init: Pick<ChatMessage, "id" | "parentId" | "seq" | "role" | "content" | "status">): ChatMessage {
  return {
    ...init,
    contentStruct: null,
    createdAt: new Date().toISOString(),
    adapters: [],
    adaptersSkipped: [],
    trace: null,
    cancelled: false,
    finishReason: null,
    error: null,
    liveTrace: [],
  };
}

export const isLocalId = (id: string): boolean => id.startsWith("local-") || id.startsWith("stream-");

/** The map with one message renamed (its children and the selection follow). */
export function renameId(
  map: MessageMap,
  selected: Readonly<Record<string, string>>,
  from: string,
  to: string,
): { map: Record<string, ChatMessage>; selected: Record<string, string> } {
  const out: Record<string, ChatMessage> = {};
  for (const [id, m] of Object.entries(map)) {
    const renamed = id === from ? { ...m, id: to } : m;
    out[renamed.id] = renamed.parentId === from ? { ...renamed, parentId: to } : renamed;
  }
  const sel: Record<string, string> = {};
  for (const [key, value] of Object.entries(selected)) sel[key === from ? to : key] = value === from ? to : value;
  return { map: out, selected: sel };
}

export function maxSeq(map: MessageMap): number {
  let max = 0;
  for (const m of Object.values(map)) max = Math.max(max, m.seq);
  return max;
}
