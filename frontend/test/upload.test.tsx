// The upload panel: client-side checks against the plan's limits, the multipart POST with a
// progress bar, then the ingestion followed until the file can be asked about.
import { render } from "preact";
import { act } from "preact/test-utils";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { UploadPanel } from "../src/components/chat/UploadPanel";
import { checkFile, describeIngestion, watchIngestion, type Ingestion } from "../src/lib/upload";
import { contexts } from "../src/state/contexts";
import { limits } from "../src/state/files";
import { fail, ok } from "./helpers";

const LIMITS = { plan_tier: "free", max_bytes: 1000, allowed_extensions: [".txt", ".md"], tiers: {} };
const FILE_ID = "0b6f6c7e-0000-4000-8000-0000000000f1";
const CONTEXT = { id: "0b6f6c7e-0000-4000-8000-0000000000c1", owner_user_id: "u1", name: "Notes", description: null, visibility: "private", settings: {}, embedding_version: "v1", created_at: "2030-01-01T00:00:00Z", updated_at: "2030-01-01T00:00:00Z", stats: {} };

function fileOut(status: string, chunks = 0) {
  return { id: FILE_ID, name: "notes.txt", kind: "text", content_type: null, size_bytes: 5, checksum: null, status, error: null, created_at: "2030-01-01T00:00:00Z", updated_at: "2030-01-01T00:00:00Z",
    contexts: [{ context_id: CONTEXT.id, status, error: null, chunks, ingested_at: null }] };
}

describe("checkFile", () => {
  it("checks the type, the size and emptiness against the limits", () => {
    expect(checkFile({ name: "a.TXT", size: 10 }, LIMITS)).toBeNull();
    expect(checkFile({ name: "a.exe", size: 10 }, LIMITS)).toContain('".exe" are not allowed');
    expect(checkFile({ name: "noext", size: 10 }, LIMITS)).toContain('"none"');
    expect(checkFile({ name: "a.md", size: 1001 }, LIMITS)).toContain("larger than your plan's limit");
    expect(checkFile({ name: "a.md", size: 0 }, LIMITS)).toBe("The file is empty.");
    expect(checkFile({ name: "a.md", size: 0 }, null)).toBeNull();
    expect(checkFile({ name: "a.md", size: 5 }, { ...LIMITS, allowed_extensions: ["md"] })).toBeNull();
  });
});

describe("watchIngestion", () => {
  afterEach(() => vi.unstubAllGlobals());

  it("reads the file until its ingestion into the context is ready, reporting each change", async () => {
    const answers = [fileOut("pending"), fileOut("pending"), fileOut("processing"), fileOut("ready", 3)];
    vi.stubGlobal("fetch", vi.fn(async () => ok(answers.shift())));
    const states: Ingestion[] = [];
    const last = await watchIngestion(FILE_ID, CONTEXT.id, (s) => states.push(s), { wait: async () => undefined });
    expect(states.map((s) => s.status)).toEqual(["pending", "processing", "ready"]);
    expect(last).toEqual({ status: "ready", chunks: 3, error: null });
    expect(describeIngestion("notes.txt", last!)).toBe("notes.txt is ready: 3 passages indexed.");
    expect(describeIngestion("x", { status: "failed", chunks: null, error: "corrupt PDF" })).toBe("x could not be indexed: corrupt PDF");
  });

  it("stops when aborted or after maxPolls", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => ok(fileOut("pending"))));
    const abort = new AbortController();
    abort.abort();
    expect(await watchIngestion(FILE_ID, CONTEXT.id, () => {}, { signal: abort.signal })).toBeNull();
    const last = await watchIngestion(FILE_ID, CONTEXT.id, () => {}, { maxPolls: 3, wait: async () => undefined });
    expect(last?.status).toBe("pending");
  });
});

class FakeXhr {
  static last: FakeXhr | null = null;
  upload = new EventTarget();
  private events = new EventTarget();
  headers: Record<string, string> = {};
  method = "";
  url = "";
  body: FormData | null = null;
  status = 0;
  responseText = "";
  withCredentials = false;
  constructor() {
    FakeXhr.last = this;
  }
  open(method: string, url: string) {
    this.method = method;
    this.url = url;
  }
  setRequestHeader(name: string, value: string) {
    this.headers[name] = value;
  }
  getResponseHeader() {
    return null;
  }
  addEventListener(type: string, fn: EventListener) {
    this.events.addEventListener(type, fn);
  }
  send(body: FormData) {
    this.body = body;
  }
  progress(loaded: number, total: number) {
    this.upload.dispatchEvent(Object.assign(new Event("progress"), { lengthComputable: true, loaded, total }));
  }
  answer(status: number, body: unknown) {
    this.status = status;
    this.responseText = JSON.stringify(body);
    this.events.dispatchEvent(new Event("load"));
  }
}

describe("UploadPanel", () => {
  let root: HTMLElement;
  beforeEach(() => {
    root = document.createElement("div");
    document.body.appendChild(root);
    limits.value = LIMITS;
    contexts.value = [CONTEXT as never];
  });
  afterEach(() => {
    render(null, root);
    root.remove();
    limits.value = null;
    contexts.value = [];
    vi.unstubAllGlobals();
  });
  const flush = async () => {
    for (let i = 0; i < 6; i++) await act(async () => void (await new Promise((r) => setTimeout(r, 0))));
  };
  const choose = (file: File) => act(() => {
    const input = root.querySelector<HTMLInputElement>('input[type="file"]')!;
    Object.defineProperty(input, "files", { value: [file], configurable: true });
    input.dispatchEvent(new Event("change", { bubbles: true }));
  });
  const uploadButton = () => [...root.querySelectorAll("button")].find((b) => b.textContent?.trim() === "Upload")!;

  it("refuses a file the plan does not allow before sending anything", () => {
    vi.stubGlobal("XMLHttpRequest", FakeXhr);
    FakeXhr.last = null;
    act(() => render(<UploadPanel />, root));
    choose(new File(["MZ"], "tool.exe"));
    expect(root.querySelector('[role="alert"]')?.textContent).toContain("not allowed");
    expect(uploadButton().disabled).toBe(true);
    expect(FakeXhr.last).toBeNull();
  });

  it("uploads into a context with a progress bar, then follows the indexing to ready", async () => {
    vi.stubGlobal("XMLHttpRequest", FakeXhr);
    const reads = [fileOut("processing"), fileOut("ready", 2)];
    vi.stubGlobal("fetch", vi.fn(async () => (reads.length ? ok(reads.shift()) : fail(500, "x"))));
    act(() => render(<UploadPanel />, root));
    choose(new File(["hello"], "notes.txt", { type: "text/plain" }));
    act(() => {
      const select = root.querySelector("select")!;
      select.value = CONTEXT.id;
      select.dispatchEvent(new Event("change", { bubbles: true }));
    });
    act(() => void uploadButton().closest("form")!.dispatchEvent(new Event("submit", { bubbles: true, cancelable: true })));
    const xhr = FakeXhr.last!;
    expect([xhr.method, xhr.url, xhr.withCredentials]).toEqual(["POST", "/v1/files/upload", true]);
    expect(xhr.headers["Idempotency-Key"]).toMatch(/^[0-9a-f-]{36}$/);
    expect((xhr.body!.get("file") as File).name).toBe("notes.txt");
    expect(xhr.body!.get("context_id")).toBe(CONTEXT.id);
    act(() => xhr.progress(50, 100));
    const bar = root.querySelector<HTMLProgressElement>('progress[aria-label="Upload progress"]')!;
    expect(bar.value).toBe(0.5);
    expect(uploadButton().disabled).toBe(true);

    await act(async () => xhr.answer(201, { status: "ok", request_id: "r", data: { file: fileOut("pending"), fs_path: "notes.txt", duplicate: false, context_id: CONTEXT.id, ingestion_queued: true } }));
    await flush();
    expect(root.querySelector("progress")).toBeNull();
    await vi.waitFor(() => expect(root.querySelector('[role="status"]')?.textContent).toBe("notes.txt is ready: 2 passages indexed."), { timeout: 5000 });
  });

  it("shows the server's refusal", async () => {
    vi.stubGlobal("XMLHttpRequest", FakeXhr);
    act(() => render(<UploadPanel />, root));
    choose(new File(["hello"], "notes.txt"));
    act(() => void uploadButton().closest("form")!.dispatchEvent(new Event("submit", { bubbles: true, cancelable: true })));
    await act(async () => FakeXhr.last!.answer(413, { status: "error", request_id: "r", error: { code: "payload_too_large", message: "The file is over your plan's cap.", details: null } }));
    await flush();
    expect(root.querySelector('[role="alert"]')?.textContent).toContain("over your plan's cap");
    expect(root.querySelector("progress")).toBeNull();
  });
});
