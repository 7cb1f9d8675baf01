// Citations: a chip opens the "Cited passage" panel with the chunk read from the API, a link
// that shows the file inline, and the stored snippet when the chunk is gone.
import { render } from "preact";
import { act } from "preact/test-utils";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { CitationSegment } from "../src/api/events";
import { CitedPassage } from "../src/components/chat/CitedPassage";
import { Citations } from "../src/components/chat/Citations";
import { closeCitation, loadPassage, openCitation } from "../src/state/passage";
import { fail, ok } from "./helpers";

const CITE: CitationSegment = {
  type: "citation", text: "Cook eggs 9 min…", source_id: "0b6f6c7e-0000-4000-8000-0000000000f1", chunk_id: "42",
  path: "notes/eggs.md", score: 0.91, meta: { context_id: "c1", heading: ["Eggs", "Boiled"] },
};
const CHUNK = { id: "42", context_id: "c1", file_id: CITE.source_id, file_name: "eggs.md", content: "Cook eggs 9 minutes for a firm yolk.", heading: "Eggs › Boiled", page: null, start: 0, end: 36 };

let root: HTMLElement;
const seen: string[] = [];
beforeEach(() => {
  root = document.createElement("div");
  document.body.appendChild(root);
  seen.length = 0;
});
afterEach(() => {
  // Inside act: the panel's effect cleanups run now, not on a timer after the test environment
  // is torn down (where `window` no longer exists).
  act(() => {
    closeCitation();
    render(null, root);
  });
  root.remove();
  vi.unstubAllGlobals();
});

function serve(chunk: () => Response) {
  vi.stubGlobal("fetch", vi.fn(async (input: RequestInfo | URL, init: RequestInit = {}) => {
    const url = new URL(String(input), "http://app.test");
    seen.push(`${init.method ?? "GET"} ${url.pathname}${url.search}`);
    if (url.pathname === "/v1/chunks/42") return chunk();
    if (url.pathname === `/v1/files/${CITE.source_id}/download`) return ok({ url: "http://files.test/eggs.md?sig=1", expires_in_s: 600 });
    return fail(404, "not_found");
  }));
}
const flush = async () => {
  for (let i = 0; i < 6; i++) await act(async () => void (await new Promise((r) => setTimeout(r, 0))));
};

describe("the cited passage", () => {
  it("opens from a chip, shows the chunk and an inline link to its file", async () => {
    serve(() => ok(CHUNK));
    act(() => render(<><Citations struct={{ segments: [{ type: "text", text: "Nine minutes [1]." }, CITE as never] }} /><CitedPassage /></>, root));
    expect(root.querySelector('[role="dialog"]')).toBeNull();
    const chip = root.querySelector<HTMLButtonElement>(".citations button")!;
    expect(chip.textContent).toBe("[1] eggs.md");
    act(() => chip.click());
    await flush();
    const dialog = root.querySelector('[role="dialog"]')!;
    expect(document.getElementById(dialog.getAttribute("aria-labelledby")!)?.textContent).toBe("Cited passage");
    expect(dialog.querySelector("blockquote")?.textContent).toBe(CHUNK.content);
    expect(dialog.textContent).toContain("Eggs › Boiled");
    const link = [...dialog.querySelectorAll("a")].find((a) => a.textContent === "Open file")!;
    expect(link.getAttribute("href")).toBe("http://files.test/eggs.md?sig=1");
    expect(link.target).toBe("_blank");
    expect(link.rel).toContain("noopener");
    expect(seen).toEqual(["GET /v1/chunks/42", `GET /v1/files/${CITE.source_id}/download?inline=true`]);
    expect(chip.getAttribute("aria-expanded")).toBe("true");

    act(() => void window.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape" })));
    expect(openCitation.value).toBeNull();
    expect(root.querySelector('[role="dialog"]')).toBeNull();
  });

  it("shows each citation's supporting sentence and highlights it in the passage", async () => {
    serve(() => ok(CHUNK));
    const quoted = { ...CITE, quote: "Cook eggs 9 minutes for a firm yolk." };
    const bare = { ...CITE, chunk_id: "43", quote: null };
    act(() => render(<><Citations struct={{ segments: [quoted as never, bare as never] }} /><CitedPassage /></>, root));
    const quotes = [...root.querySelectorAll(".citations li")].map((li) => li.querySelector(".citation-quote")?.textContent ?? null);
    expect(quotes).toEqual([quoted.quote, null]);
    expect(root.querySelector(".citations ol")?.classList.contains("with-quotes")).toBe(true);
    act(() => root.querySelector<HTMLButtonElement>(".citations button")!.click());
    await flush();
    const passage = root.querySelector('[role="dialog"] blockquote')!;
    expect(passage.textContent).toBe(CHUNK.content);
    expect(passage.querySelector("mark")?.textContent).toBe(quoted.quote);
  });

  it("lists chips alone when no citation has a quote", () => {
    act(() => render(<Citations struct={{ segments: [CITE as never] }} />, root));
    expect(root.querySelector(".citation-quote")).toBeNull();
    expect(root.querySelector(".citations ol")?.classList.contains("with-quotes")).toBe(false);
  });

  it("falls back to the stored snippet when the chunk is gone", async () => {
    serve(() => fail(404, "not_found", "no such chunk"));
    const p = await loadPassage(CITE);
    expect(p).toMatchObject({ text: "Cook eggs 9 min…", fileName: "eggs.md", heading: "Eggs › Boiled", live: false });
    expect(p.note).toContain("no longer in the context");
  });

  it("uses the snippet without asking when the citation names no chunk", async () => {
    serve(() => ok(CHUNK));
    const p = await loadPassage({ ...CITE, chunk_id: undefined });
    expect(p.text).toBe("Cook eggs 9 min…");
    expect(seen).toEqual([]);
  });

  it("shows other errors", async () => {
    serve(() => fail(400, "validation_error", "Something is off."));
    openCitation.value = { cite: CITE, number: 2 };
    act(() => render(<CitedPassage />, root));
    await flush();
    expect(root.querySelector('[role="alert"]')?.textContent).toContain("Something is off.");
    expect(root.textContent).toContain("Source [2]");
  });
});
