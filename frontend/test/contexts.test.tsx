// The Contexts tab in a DOM with a fake API: a context's files with their ingestion followed
// until done (and no longer once the tab is left), attach and detach, search whose hit opens
// the "Cited passage" panel, rename, delete confirmed in the page, and a global context that
// is read-only to the user.
import { render } from "preact";
import { act } from "preact/test-utils";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ContextsTab } from "../src/components/tabs/ContextsTab";
import { auth } from "../src/state/auth";
import { contextIds } from "../src/state/chat";
import { contexts } from "../src/state/contexts";
import { closeCitation, openCitation } from "../src/state/passage";
import { fail, ok } from "./helpers";

const T = "2030-01-01T00:00:00Z";
const USER = { id: "u1", email: "ada@example.com", handle: null, role: "user", created_at: T, email_verified: true, mfa_enabled: false };
const ctx = (id: string, name: string, owner: string, visibility: string, files: number) => ({
  id, owner_user_id: owner, name, description: null, visibility, settings: {}, embedding_version: "v1", created_at: T, updated_at: T,
  stats: { files, chunks: 0, ingestion: { pending: files, processing: 0, ready: 0, failed: 0 }, ingestion_lag_s: 0 },
});
const file = (id: string, name: string, status: string, sources: { context_id: string; status: string; chunks?: number }[]) => ({
  id, name, kind: "markdown", content_type: "text/markdown", size_bytes: 120, checksum: null, status, error: null, created_at: T, updated_at: T,
  contexts: sources.map((s) => ({ error: null, chunks: null, ingested_at: null, ...s })),
});
const HIT = { chunk_id: "42", context_id: "c1", source_id: "s1", file_id: "f1", path: "pharos.md", chunk_index: 0, content: "The lighthouse was about one hundred metres tall.",
  heading: "The lighthouse", page: null, start: 0, end: 50, similarity: 0.71, score: 0.0164, dense_rank: 1, text_rank: 1 };

let server: {
  contexts: ReturnType<typeof ctx>[];
  files: Record<string, ReturnType<typeof file>>;
  /** What each read of a file's ingestion into c1 answers next (the last one repeats). */
  script: Record<string, string[]>;
  fail: Record<string, Response>;
};
const calls: string[] = [];
const bodies: Record<string, unknown> = {};

function answer(method: string, path: string, body: unknown): unknown {
  const key = `${method} ${path}`;
  if (key === "GET /v1/contexts") return { items: server.contexts, next_cursor: null };
  if (key === "GET /v1/files") return { items: Object.values(server.files).map((f) => ({ ...f, contexts: null })), next_cursor: null };
  let m = /^GET \/v1\/contexts\/(\w+)\/files$/.exec(key);
  if (m) {
    const id = m[1]!;
    const items = Object.values(server.files).flatMap((f) => f.contexts.filter((c) => c.context_id === id).map((c) => ({
      file: { ...f, contexts: null }, status: c.status, error: c.error, chunks: c.chunks ?? 0, attached_at: T, ingested_at: c.ingested_at,
    })));
    return { items, next_cursor: null };
  }
  m = /^GET \/v1\/files\/(\w+)$/.exec(key);
  if (m) {
    const f = server.files[m[1]!];
    const next = server.script[m[1]!];
    if (f && next && next.length) {
      const status = next.length > 1 ? next.shift()! : next[0]!;
      f.contexts = f.contexts.map((c) => (c.context_id === "c1" ? { ...c, status, chunks: status === "ready" ? 3 : null } : c));
    }
    return f;
  }
  if ((m = /^(GET|PATCH|DELETE) \/v1\/contexts\/(\w+)$/.exec(key))) {
    const found = server.contexts.find((c) => c.id === m![2]);
    if (!found) return undefined;
    if (method === "DELETE") {
      server.contexts = server.contexts.filter((c) => c !== found);
      return { deleted: true };
    }
    Object.assign(found, method === "PATCH" ? body : {});
    return found;
  }
  if (/^GET \/v1\/contexts\/\w+\/chunks$/.test(key)) return { items: [{ id: "42", content: "The lighthouse…" }], next_cursor: null };
  if (key === "POST /v1/contexts/c1/files") {
    const id = (body as { file_ids: string[] }).file_ids[0]!;
    server.files[id]!.contexts.push({ context_id: "c1", status: "pending", error: null, chunks: null, ingested_at: null });
    server.files[id]!.status = "pending";
    return { attached: [{ file_id: id, source_id: "s9", queued: true }] };
  }
  if ((m = /^DELETE \/v1\/contexts\/c1\/files\/(\w+)$/.exec(key))) return { detached: true };
  if (key === "POST /v1/contexts/c1/search") return { hits: [HIT] };
  if (key === "GET /v1/chunks/42") return { id: "42", context_id: "c1", file_id: "f1", file_name: "pharos.md", content: HIT.content, heading: HIT.heading, page: null, start: 0, end: 50 };
  if (key === "GET /v1/files/f1/download") return { url: "http://files.test/pharos.md?sig=1", expires_in_s: 600 };
  return undefined;
}

const fetchMock = vi.fn(async (input: RequestInfo | URL, init: RequestInit = {}) => {
  const url = new URL(String(input), "http://app.test");
  const method = init.method ?? "GET";
  const key = `${method} ${url.pathname}`;
  calls.push(`${key}${url.search}`);
  const body = init.body ? JSON.parse(String(init.body)) : undefined;
  if (body !== undefined) bodies[key] = body;
  if (server.fail[key]) return server.fail[key]!;
  const data = answer(method, url.pathname, body);
  return data === undefined ? fail(404, "not_found", `no ${key}`) : ok(data);
});

let root: HTMLElement;
const flush = async (ms = 0) => {
  for (let i = 0; i < 8; i++) {
    await act(async () => {
      if (vi.isFakeTimers()) await vi.advanceTimersByTimeAsync(ms / 8);
      else await new Promise((r) => setTimeout(r, 0));
    });
  }
};
const buttons = (name: string) => [...root.querySelectorAll("button")].filter((b) => (b.getAttribute("aria-label") ?? b.textContent?.trim()) === name);
const button = (name: string) => buttons(name)[0]!;
function field<T extends HTMLElement>(label: string): T {
  const found = [...root.querySelectorAll("label")].find((l) => l.querySelector("span")?.textContent === label);
  if (!found) throw new Error(`no field ${label}`);
  return found.querySelector("input, select, textarea") as unknown as T;
}
function type(el: HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement, value: string, event = "input") {
  act(() => {
    el.value = value;
    el.dispatchEvent(new Event(event, { bubbles: true }));
  });
}
async function open(name: string) {
  act(() => render(<ContextsTab />, root));
  await flush();
  act(() => [...root.querySelectorAll<HTMLButtonElement>(".context-card")].find((b) => b.textContent?.includes(name))!.click());
  await flush();
}
const fileReads = (id: string) => calls.filter((c) => c === `GET /v1/files/${id}`).length;

beforeEach(() => {
  server = {
    contexts: [ctx("c1", "Lighthouses", "u1", "private", 1), ctx("g1", "Company handbook", "admin1", "global", 4)],
    files: {
      f1: file("f1", "pharos.md", "pending", [{ context_id: "c1", status: "pending" }]),
      f2: file("f2", "notes.txt", "stored", []),
    },
    script: { f1: ["pending", "processing", "ready"] },
    fail: {},
  };
  calls.length = 0;
  for (const k of Object.keys(bodies)) delete bodies[k];
  vi.stubGlobal("fetch", fetchMock);
  auth.value = { status: "signed-in", user: USER as never };
  root = document.createElement("div");
  document.body.appendChild(root);
});
afterEach(() => {
  render(null, root);
  root.remove();
  closeCitation();
  contexts.value = [];
  vi.useRealTimers();
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

describe("the Contexts tab", () => {
  it("shows a context's files and follows an ingestion until it is done, then stops", async () => {
    vi.useFakeTimers();
    await open("Lighthouses");
    expect(calls).toContain("GET /v1/contexts/c1/files?limit=200"); // one listing, not a read per file
    expect(calls).toContain("GET /v1/files?limit=200"); // what may be attached
    expect(fileReads("f2")).toBe(0); // only stored: in no context, never read
    const row = () => root.querySelector<HTMLElement>(".context-file")!;
    expect(row().textContent).toContain("pharos.md");
    await flush(4000);
    expect(row().dataset["ingestion"]).toBe("ready");
    expect(row().textContent).toContain("pharos.md is ready: 3 passages indexed.");
    expect(calls).toContain("GET /v1/contexts/c1"); // stats read again
    expect(calls.filter((c) => c.startsWith("GET /v1/contexts/c1/chunks")).length).toBe(2);
    const reads = fileReads("f1");
    await flush(10_000);
    expect(fileReads("f1")).toBe(reads);
  });

  it("stops reading an ingestion when the tab is left", async () => {
    vi.useFakeTimers();
    server.script = { f1: ["pending"] };
    await open("Lighthouses");
    await flush(3000);
    const reads = fileReads("f1");
    expect(reads).toBeGreaterThan(1);
    act(() => render(null, root));
    await flush(10_000);
    expect(fileReads("f1")).toBe(reads);
  });

  it("attaches one of the user's files and detaches a file", async () => {
    server.script = {};
    server.files["f1"]!.contexts[0]!.status = "ready";
    await open("Lighthouses");
    const select = field<HTMLSelectElement>("File to attach");
    expect([...select.options].map((o) => o.textContent)).toEqual(["Choose a file…", "notes.txt (120 B)"]);
    type(select, "f2", "change");
    act(() => button("Attach file").click());
    await flush();
    expect(bodies["POST /v1/contexts/c1/files"]).toEqual({ file_ids: ["f2"] });
    expect(root.querySelector(".context-file")?.textContent).toContain("notes.txt is waiting to be indexed");

    act(() => button("Detach pharos.md").click());
    await flush();
    expect(calls).toContain("DELETE /v1/contexts/c1/files/f1");
    expect(root.querySelector(".context-file-list")?.textContent).not.toContain("pharos.md");
    expect([...field<HTMLSelectElement>("File to attach").options].map((o) => o.textContent)).toContain("pharos.md (120 B)");
  });

  it("shows the API's error when attaching fails", async () => {
    server.fail["POST /v1/contexts/c1/files"] = fail(404, "not_found", "file f2 has not been uploaded yet");
    await open("Lighthouses");
    type(field<HTMLSelectElement>("File to attach"), "f2", "change");
    act(() => button("Attach file").click());
    await flush();
    expect(root.querySelector(".attach-form [role='alert']")?.textContent).toContain("file f2 has not been uploaded yet");
  });

  it("searches the context and opens a hit as a cited passage", async () => {
    await open("Lighthouses");
    type(field<HTMLInputElement>("Search for"), "how tall");
    act(() => button("Search").click());
    await flush();
    expect(bodies["POST /v1/contexts/c1/search"]).toEqual({ query: "how tall", k: 8, mode: "hybrid" });
    const hit = root.querySelector(".search-hit")!;
    expect(hit.textContent).toContain("[1] pharos.md");
    expect(hit.textContent).toContain("score 0.0164");
    act(() => hit.querySelector("button")!.click());
    await flush();
    const dialog = root.querySelector('[role="dialog"]')!;
    expect(dialog.querySelector("blockquote")?.textContent).toBe(HIT.content);
    expect(dialog.querySelector("a")?.textContent).toBe("Open file");
    expect(calls).toContain("GET /v1/chunks/42");
    expect(openCitation.value?.cite.meta?.context_id).toBe("c1");
    act(() => void window.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape" })));
    await flush();
    expect(root.querySelector('[role="dialog"]')).toBeNull();
    expect(document.activeElement).toBe(hit.querySelector("button"));

    server.fail["POST /v1/contexts/c1/search"] = fail(400, "validation_error", "query: too long");
    act(() => button("Search").click());
    await flush();
    expect(root.querySelector(".context-search [role='alert']")?.textContent).toContain("query: too long");
  });

  it("renames a context, and deletes it only once confirmed in the page", async () => {
    const confirm = vi.spyOn(window, "confirm");
    contextIds.value = ["c1"]; // the chat answers from it
    await open("Lighthouses");
    act(() => button("Rename").click());
    const name = field<HTMLInputElement>("New name");
    expect(document.activeElement).toBe(name);
    type(name, "Famous lighthouses");
    act(() => button("Save").click());
    await flush();
    expect(bodies["PATCH /v1/contexts/c1"]).toEqual({ name: "Famous lighthouses", description: "" });
    expect(root.querySelector(".context-card.selected")?.textContent).toContain("Famous lighthouses");
    expect(root.querySelector("#context-title")?.textContent).toBe("Famous lighthouses");

    act(() => button("Delete context").click());
    expect(calls.some((c) => c.startsWith("DELETE"))).toBe(false);
    act(() => button("Cancel").click());
    expect(buttons("Confirm delete")).toHaveLength(0);
    act(() => button("Delete context").click());
    act(() => button("Confirm delete").click());
    await flush();
    expect(calls).toContain("DELETE /v1/contexts/c1");
    expect(root.textContent).not.toContain("Famous lighthouses");
    expect(confirm).not.toHaveBeenCalled();
    expect(contextIds.value).toEqual([]);
  });

  it("shows a global context it may not change without the controls that change it", async () => {
    await open("Company handbook");
    expect(root.textContent).toContain("read-only to you");
    for (const name of ["Rename", "Delete context", "Attach file", "Detach"]) expect(buttons(name)).toHaveLength(0);
    expect(calls.filter((c) => c.startsWith("GET /v1/files"))).toEqual([]);
    expect(button("Search")).toBeTruthy();
    expect(root.textContent).toContain("4 files in this shared context");
  });

  it("lets an admin change a global context", async () => {
    auth.value = { status: "signed-in", user: { ...USER, id: "admin2", role: "admin" } as never };
    await open("Company handbook");
    expect(buttons("Rename")).toHaveLength(1);
    expect(buttons("Delete context")).toHaveLength(1);
  });
});
