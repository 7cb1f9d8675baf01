"""The browser tests: the built web app (`frontend/dist`, `make frontend`) served by a real
gateway process on a port of its own, against the session's stack and inference service,
driven in Debian's Chromium (`CHROMIUM`, default /usr/bin/chromium; `make chromium` installs
it) through Playwright. No browser is ever downloaded: Playwright's Python package brings its
driver, and the browser is the system's.

The gateway and the browser last a module (neither runs on through the rest of the
session); each test gets a fresh browser context (its own cookies and storage). What a page
does wrong without any test noticing is collected on the way: dialogs (`alert` from injected
markup), uncaught errors, and Content-Security-Policy violations (the policy is strict)."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from infra.admin import promote
from tests.helpers import REPO_ROOT, free_port, project_process
from tests.inference import TOKEN

DIST = REPO_ROOT / "frontend" / "dist"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "correct horse battery staple"
WIDE, NARROW = {"width": 1280, "height": 800}, {"width": 390, "height": 844}
# Answers are long enough to stop one mid-stream, short enough for two CPUs.
ANSWER_TOKENS = 200
# What a page has to do within (sign-up hashes a password; a loaded machine is slow).
expect.set_options(timeout=30_000)


@pytest.fixture(scope="session")
def web_build() -> Path:
    for page in (DIST / "index.html", DIST / "admin" / "index.html"):
        if not page.is_file():
            pytest.fail(
                f"{page.relative_to(REPO_ROOT)} is missing: build the web app (make frontend)"
            )
    return DIST


@contextlib.contextmanager
def gateway_process(service: str, log_dir: Path, **settings: str) -> Iterator[str]:
    """A gateway process serving the build and the API on a free port, with `settings` (env
    names) on top of the tests' own; its public URL (the origin its cookies, origin checks and
    Content-Security-Policy are for)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        "GATEWAY_PORT": str(port),
        "PUBLIC_BASE_URL": url,
        "LOG_LEVEL": "INFO",
        "INFERENCE_URL": service,
        "INFERENCE_TOKEN": TOKEN,
        "CHAT_MAX_TOKENS": str(ANSWER_TOKENS),
        **settings,
    }
    with project_process(
        ["-m", "infra.gateway"], env=env, ready_url=url + "/healthz",
        log_path=log_dir / "gateway.log",
    ):  # fmt: skip
        yield url


@pytest.fixture(scope="module")
def web_gateway(migrated, service, web_build, tmp_path_factory) -> Iterator[str]:
    with gateway_process(service, tmp_path_factory.mktemp("web-gateway")) as url:
        yield url


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"no browser at {CHROMIUM}: run `make chromium` (or set CHROMIUM)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        await launched.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory) -> Path:
    """Where screenshots go: `E2E_SCREENSHOTS` (`make screenshots`: docs/screenshots), else a
    temporary folder (they are taken all the same: the narrow layout must render)."""
    chosen = os.environ.get("E2E_SCREENSHOTS")
    if chosen:
        folder = Path(chosen) if Path(chosen).is_absolute() else REPO_ROOT / chosen
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    return tmp_path_factory.mktemp("screenshots")


@dataclass
class Tab:
    """A page of a fresh browser context, and what went wrong in it."""

    page: Page
    base_url: str
    screenshots: Path
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        assert self.dialogs == [], f"dialogs opened: {self.dialogs}"
        assert self.csp_violations == [], (
            f"Content-Security-Policy violations: {self.csp_violations}"
        )
        assert self.errors == [], f"uncaught errors in the page: {self.errors}"

    async def shoot(self, name: str) -> None:
        """`<name>-1280.png` and `<name>-390.png`: the screen at a desktop and a phone width."""
        for size in (WIDE, NARROW):
            await self.page.set_viewport_size(size)
            await self.page.wait_for_timeout(150)  # let the layout settle
            await self.page.screenshot(path=self.screenshots / f"{name}-{size['width']}.png")
        await self.page.set_viewport_size(WIDE)

    async def api(self, path: str, method: str = "GET", body: Any = None) -> Any:
        """An API call from the page (its session cookie and origin, as the app sends them;
        a POST with an Idempotency-Key); the data of a 2xx answer."""
        answer = await self.page.evaluate(
            """async ([method, path, body]) => {
                 const headers = {"Content-Type": "application/json", Accept: "application/json"};
                 if (method === "POST") headers["Idempotency-Key"] = crypto.randomUUID();
                 const sent = body === null ? undefined : JSON.stringify(body);
                 const r = await fetch(path, {method, credentials: "same-origin", headers,
                                              body: sent});
                 return {status: r.status, body: await r.json()};
               }""",
            [method, path, body],
        )
        assert 200 <= answer["status"] < 300, answer
        return answer["body"]["data"]


@pytest.fixture
async def tab(browser, web_gateway, screenshots) -> AsyncIterator[Tab]:
    context = await browser.new_context(base_url=web_gateway, viewport=WIDE)
    context.set_default_timeout(30_000)
    page = await context.new_page()
    opened = Tab(page, web_gateway, screenshots)

    async def on_dialog(dialog) -> None:
        opened.dialogs.append(f"{dialog.type}: {dialog.message}")
        await dialog.dismiss()

    def on_console(message) -> None:
        if "Content Security Policy" in message.text:
            opened.csp_violations.append(message.text)

    page.on("dialog", on_dialog)
    page.on("console", on_console)
    page.on("pageerror", lambda error: opened.errors.append(str(error)))
    yield opened
    await context.close()


async def sign_up(tab: Tab) -> str:
    """A new account through the app's form (cookie mode); the e-mail address. Ends on the
    chat view."""
    email = f"e2e-{uuid.uuid4().hex[:12]}@example.test"
    page = tab.page
    await page.goto("/")
    await page.get_by_label("Email", exact=True).fill(email)
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_role("button", name="Sign up", exact=True).click()
    await expect(page.get_by_role("tab", name="Chat", exact=True)).to_be_visible()
    await expect(page.get_by_label("Message", exact=True)).to_be_visible()
    return email


async def log_in_as_admin(tab: Tab, settings, email: str) -> None:
    """Makes `email`'s account an admin and logs in again through the form (a new session
    carries the new role). Ends on the chat view."""
    page = tab.page
    await promote(settings, email)
    await page.context.clear_cookies()
    await page.goto("/")
    await page.get_by_label("Email", exact=True).fill(email)
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_role("button", name="Log in", exact=True).click()
    await expect(page.get_by_role("tab", name="Chat", exact=True)).to_be_visible()


ACCOUNT_DELETED = "Your account is being deleted."


async def delete_my_account(tab: Tab, *, password: str | None) -> None:
    """Settings → Your data → "Delete my account", confirmed in the dialog: with `password`
    for an account that has one; with None, the dialog must ask for none (an account made
    through single sign-on, signed in minutes ago). Ends signed out, on the log-in page with
    the app's notice."""
    page = tab.page
    await page.get_by_role("tab", name="Settings", exact=True).click()
    data = page.get_by_role("region", name="Your data")
    await data.get_by_role("button", name="Delete my account", exact=True).click()
    dialog = page.get_by_role("dialog", name="Delete your account")
    await expect(dialog).to_contain_text("pseudonym")  # what is kept, and why
    asked = dialog.get_by_label("Password", exact=True)
    typed = dialog.get_by_label("Type DELETE to confirm", exact=True)
    if password is None:
        await expect(dialog).to_contain_text("Your account has no password")
        await expect(asked).to_have_count(0)
        await expect(typed).to_be_focused()
    else:
        await expect(asked).to_be_focused()
        await asked.fill(password)
    destroy = dialog.get_by_role("button", name="Delete permanently", exact=True)
    await expect(destroy).to_be_disabled()
    await typed.fill("DELETE")
    await destroy.click()

    await expect(page.get_by_role("button", name="Log in", exact=True)).to_be_visible()
    await expect(page.get_by_text(ACCOUNT_DELETED, exact=True)).to_be_visible()
