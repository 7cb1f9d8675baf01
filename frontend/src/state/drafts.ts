// Unsent messages, per conversation, in localStorage (SPEC §17.7): key `liminal.drafts`,
// `{[conversationId]: {text, savedAt}}`, `_new` for a conversation not started yet.
import { signal } from "@preact/signals";

export const DRAFTS_KEY = "liminal.drafts";
export const NEW_DRAFT = "_new";

export interface Draft {
  text: string;
  savedAt: string;
}

export type DraftMap = Record<string, Draft>;

function isDraft(value: unknown): value is Draft {
  return typeof value === "object" && value !== null && typeof (value as Draft).text === "string";
}

export class DraftStore {
  /** How many drafts are saved (for the indicator and Settings). */
  readonly count = signal(0);

  constructor(private readonly storage: Storage | null, private readonly now: () => Date = () => new Date()) {
    this.count.value = Object.keys(this.all()).length;
  }

  all(): DraftMap {
    if (!this.storage) return {};
    try {
      const parsed = JSON.parse(this.storage.getItem(DRAFTS_KEY) ?? "{}") as unknown;
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return {};
      const out: DraftMap = {};
      for (const [key, value] of Object.entries(parsed as Record<string, unknown>)) {
        if (isDraft(value) && value.text !== "") out[key] = { text: value.text, savedAt: String(value.savedAt ?? "") };
      }
      return out;
    } catch {
      return {};
    }
  }

  get(conversationId: string | null): string {
    return this.all()[conversationId ?? NEW_DRAFT]?.text ?? "";
  }

  /** Saves (or, for blank text, removes) the draft of a conversation. */
  set(conversationId: string | null, text: string): void {
    const drafts = this.all();
    const key = conversationId ?? NEW_DRAFT;
    if (text.trim() === "") delete drafts[key];
    else drafts[key] = { text, savedAt: this.now().toISOString() };
    this.write(drafts);
  }

  clear(conversationId: string | null): void {
    this.set(conversationId, "");
  }

  clearAll(): void {
    this.write({});
  }

  /** Moves the `_new` draft to a conversation that now exists (nothing when none). */
  adopt(conversationId: string): void {
    const drafts = this.all();
    const pending = drafts[NEW_DRAFT];
    if (!pending) return;
    delete drafts[NEW_DRAFT];
    drafts[conversationId] ??= pending;
    this.write(drafts);
  }

  exportJson(): string {
    return JSON.stringify(this.all(), null, 2);
  }

  private write(drafts: DraftMap): void {
    this.count.value = Object.keys(drafts).length;
    if (!this.storage) return;
    try {
      if (Object.keys(drafts).length === 0) this.storage.removeItem(DRAFTS_KEY);
      else this.storage.setItem(DRAFTS_KEY, JSON.stringify(drafts));
    } catch {
      // Storage full or disabled (private mode): drafts are a convenience, not data.
    }
  }
}

/** A debounced call (SPEC: 1 s) with flush and cancel. */
export function debounce<A extends unknown[]>(fn: (...args: A) => void, ms: number) {
  let timer: ReturnType<typeof setTimeout> | null = null;
  let pending: A | null = null;
  const run = () => {
    timer = null;
    if (pending) {
      const args = pending;
      pending = null;
      fn(...args);
    }
  };
  const call = (...args: A) => {
    pending = args;
    if (timer !== null) clearTimeout(timer);
    timer = setTimeout(run, ms);
  };
  call.flush = () => {
    if (timer !== null) clearTimeout(timer);
    run();
  };
  call.cancel = () => {
    if (timer !== null) clearTimeout(timer);
    timer = null;
    pending = null;
  };
  return call;
}

function localStorageOrNull(): Storage | null {
  try {
    return typeof window !== "undefined" ? window.localStorage : null;
  } catch {
    return null;
  }
}

export const drafts = new DraftStore(localStorageOrNull());
