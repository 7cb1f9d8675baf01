"""`make bench-web`: the web app's figures (issue 19).

- bundle size: every file of `frontend/dist` the app or the admin page loads, raw and gzipped
  (level 9), JavaScript and CSS apart; the syntax highlighter is loaded only once code shows;
- navigation → interactive chat: a signed-in user (cookie mode) opens `/` in Debian's
  Chromium; from `page.goto` until the "Message" box is enabled (HTML, scripts, `/v1/me`,
  the conversation list), RUNS times, each in a fresh browser context, on `make run`'s
  gateway and inference service (a throwaway stack);
- first token: the time from pressing Send until the first answer text shows in the page
  (performance.now() in the page, a MutationObserver), against the time to the first `token`
  event of the same question asked over SSE at the API from Python, interleaved.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import sys
import time
import uuid

import httpx
from playwright.async_api import Page, async_playwright, expect

from bench.harness import pct, served
from shared.platform.settings import REPO_ROOT

STACK, DATABASE = "acs-bench-web", "acs_bench_web"
DIST = REPO_ROOT / "frontend" / "dist"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
RUNS = int(os.environ.get("BENCH_WEB_RUNS", "7"))
TOKEN = "bench-web-inference-token"  # noqa: S105 - the throwaway service's shared secret
PASSWORD = "bench password, long enough"  # noqa: S105 - throwaway accounts
QUESTION = "Say hello"

# In the page: performance.now() when the last assistant message first shows text.
WATCH_FIRST_TEXT = """() => new Promise((resolve) => {
  const seen = document.querySelectorAll('[data-role="assistant"]').length;
  new MutationObserver((_, observer) => {
    const answers = document.querySelectorAll('[data-role="assistant"]');
    const last = answers[answers.length - 1];
    const text = last && answers.length > seen ? last.querySelector(".markdown") : null;
    if (text && text.textContent.trim()) { observer.disconnect(); resolve(performance.now()); }
  }).observe(document.body, {subtree: true, childList: true, characterData: true});
})"""
PRESS_SEND = """() => {
  const send = [...document.querySelectorAll("button")]
    .find((b) => b.textContent.trim() === "Send");
  const at = performance.now(); send.click(); return at;
}"""


def bundle() -> list[str]:
    lines, totals = [], {".js": [0, 0], ".css": [0, 0]}
    for path in sorted(DIST.rglob("*")):
        if path.suffix not in totals:
            continue
        raw = path.read_bytes()
        packed = len(gzip.compress(raw, compresslevel=9))
        lines.append(f"  {path.relative_to(DIST)}: {len(raw):,} B, gzip {packed:,} B")
        if not path.is_relative_to(DIST / "admin"):
            totals[path.suffix][0] += len(raw)
            totals[path.suffix][1] += packed
    js, css = totals[".js"], totals[".css"]
    lines.append(f"  app total: JS {js[0]:,} B (gzip {js[1]:,} B), CSS {css[0]:,} B"
                 f" (gzip {css[1]:,} B)")  # fmt: skip
    return lines


async def _sign_up(page: Page) -> None:
    await page.get_by_label("Email", exact=True).fill(
        f"bench-web-{uuid.uuid4().hex[:10]}@example.test"
    )
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_role("button", name="Sign up", exact=True).click()
    await expect(page.get_by_label("Message", exact=True)).to_be_enabled(timeout=60_000)


async def _api_first_token(base: str, http: httpx.AsyncClient) -> float:
    started = time.perf_counter()
    body = {"message": {"content": QUESTION}, "stream": True}
    async with http.stream("POST", base + "/v1/chat", json=body) as response:
        async for line in response.aiter_lines():
            if line.startswith("event: token"):
                return (time.perf_counter() - started) * 1000
    raise RuntimeError("the stream ended without a token")


async def _measure(base: str) -> dict[str, list[float]]:
    figures: dict[str, list[float]] = {"login": [], "interactive": [], "page": [], "api": []}
    async with async_playwright() as playwright, httpx.AsyncClient(timeout=300) as http:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                   args=ARGS)  # fmt: skip
        email = f"bench-api-{uuid.uuid4().hex[:10]}@example.test"
        signed = await http.post(
            base + "/v1/auth/signup", json={"email": email, "password": PASSWORD}
        )
        http.headers["Authorization"] = f"Bearer {signed.json()['data']['access_token']}"
        await _api_first_token(base, http)  # warm: the model's first shapes, the pools
        for _ in range(RUNS):
            context = await browser.new_context(base_url=base)
            page = await context.new_page()
            started = time.perf_counter()  # a first visit: nothing cached, signed out
            await page.goto("/")
            await expect(page.get_by_role("button", name="Sign up", exact=True)).to_be_enabled()
            figures["login"].append((time.perf_counter() - started) * 1000)
            await _sign_up(page)
            started = time.perf_counter()  # a signed-in user opens the app again
            await page.goto("/")
            await expect(page.get_by_label("Message", exact=True)).to_be_enabled(timeout=60_000)
            figures["interactive"].append((time.perf_counter() - started) * 1000)
            await page.get_by_label("Message", exact=True).fill(QUESTION)
            first = asyncio.ensure_future(page.evaluate(WATCH_FIRST_TEXT))
            await asyncio.sleep(0.05)  # the observer is in place before Send is pressed
            pressed = await page.evaluate(PRESS_SEND)
            figures["page"].append(await asyncio.wait_for(first, 300) - pressed)
            await expect(page.get_by_role("button", name="Good answer")).to_be_visible(
                timeout=300_000
            )
            await context.close()
            figures["api"].append(await _api_first_token(base, http))
        await browser.close()
    return figures


def main() -> int:
    if not (DIST / "index.html").is_file():
        print("frontend/dist is missing: run make frontend", file=sys.stderr)
        return 1
    print("bundle (frontend/dist):", *bundle(), sep="\n")
    if sys.argv[1:] == ["--bundle"]:  # the sizes alone: no stack, no browser
        return 0
    with served(STACK, DATABASE, token=TOKEN, gateway_env={"CHAT_MAX_TOKENS": "32"}) as up:
        figures = asyncio.run(_measure(up.base))
    print(f"Chromium headless, {os.cpu_count()} CPUs, {RUNS} runs, a fresh context each:")
    for key, label in (("login", "first visit -> sign-up form ready"),
                       ("interactive", "signed in: navigation -> chat ready"),
                       ("page", "first token seen in the page"),
                       ("api", "first token at the API (SSE)")):  # fmt: skip
        values = figures[key]
        print(f"  {label:38s} p50 {pct(values, 50):6.0f} ms   max {max(values):6.0f} ms")
    ratio = pct(figures["page"], 50) / pct(figures["api"], 50)
    print(f"  first token, page / API (p50): {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
