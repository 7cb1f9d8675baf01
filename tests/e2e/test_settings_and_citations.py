"""The web app's Settings and citations in a browser, end to end: enrolling MFA (the QR code
and the secret, a first code, the recovery codes) and logging in again with a code; and a
grounded answer whose citation opens the "Cited passage" panel, from a file uploaded through
the app into a context of its own, ingested by the real queue workers."""

from __future__ import annotations

import asyncio
import re
import time

import pyotp
import pytest
from playwright.async_api import expect

from tests.e2e.conftest import PASSWORD, Tab, sign_up
from tests.integration.ragkit import ingest_workers  # noqa: F401 - fixture

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

MODEL_TIMEOUT_MS = 180_000  # the first answer of a session may wait for the model's shapes
TOTP_STEP_S = 30
# A short file, one chunk; the question below is close to it (MiniLM), so it is evidence.
NOTES = (
    "# The lighthouse\n\n"
    "The lighthouse of Alexandria stood on the island of Pharos. It was about one hundred "
    "metres tall and its fire could be seen from far out at sea.\n"
)
QUESTION = "How tall was the lighthouse of Alexandria?"


async def next_totp(secret: str, after_step: int) -> str:
    """A TOTP code of a later time step than `after_step` (a code's step is used once)."""
    await asyncio.sleep(max(0.0, (after_step + 1) * TOTP_STEP_S - time.time()) + 0.2)
    return pyotp.TOTP(secret).now()


async def test_mfa_enrolment_then_a_login_with_a_code(tab: Tab) -> None:
    page = tab.page
    await page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    email = await sign_up(tab)
    await page.get_by_role("tab", name="Settings", exact=True).click()
    await page.get_by_role("button", name="Enable MFA", exact=True).click()

    qr = page.get_by_role("img", name="QR code for your authenticator app")
    await expect(qr).to_be_visible()
    assert (await qr.get_attribute("src") or "").startswith("data:image/svg+xml")
    assert await page.locator("#tab-panel svg").count() == 0  # shown as an image, not markup
    secret = (await page.locator(".mfa-secret").inner_text()).strip()
    assert re.fullmatch(r"[A-Z2-7]{16,}", secret), secret
    used_step = int(time.time()) // TOTP_STEP_S
    await page.get_by_label("MFA code", exact=True).fill(pyotp.TOTP(secret).now())
    await page.get_by_role("button", name="Confirm", exact=True).click()

    codes = page.get_by_role("list", name="Recovery codes").get_by_role("listitem")
    await expect(codes).to_have_count(10)
    await page.get_by_role("button", name="Copy", exact=True).click()
    await expect(page.get_by_text("Copied.", exact=True)).to_be_visible()
    copied = await page.evaluate("navigator.clipboard.readText()")
    assert copied.split() == [c.strip() for c in await codes.all_inner_texts()]
    await tab.shoot("settings-mfa-codes")
    await page.get_by_role("button", name="Done", exact=True).click()
    await expect(page.get_by_role("button", name="Disable MFA", exact=True)).to_be_visible()
    assert (await tab.api("/v1/me"))["mfa_enabled"] is True

    await page.get_by_role("button", name="Log out", exact=True).click()
    await page.get_by_label("Email", exact=True).fill(email)
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_role("button", name="Log in", exact=True).click()
    code_field = page.get_by_label("MFA code", exact=True)
    await expect(code_field).to_be_visible()
    await code_field.fill(await next_totp(secret, used_step))
    await page.get_by_role("button", name="Log in", exact=True).click()
    await expect(page.get_by_role("tab", name="Chat", exact=True)).to_have_attribute(
        "aria-selected", "true"
    )
    await expect(page.get_by_label("Message", exact=True)).to_be_visible()
    tab.assert_clean()


@pytest.mark.usefixtures("ingest_workers")
async def test_an_uploaded_file_is_cited_and_its_passage_opens(tab: Tab, tmp_path) -> None:
    page = tab.page
    await sign_up(tab)
    context = f"Lighthouses {int(time.time())}"
    await page.get_by_role("tab", name="Contexts", exact=True).click()
    await page.get_by_label("Name", exact=True).fill(context)
    await page.get_by_role("button", name="Create context", exact=True).click()
    await expect(page.get_by_text(context).first).to_be_visible()

    await page.get_by_role("tab", name="Chat", exact=True).click()
    notes = tmp_path / "pharos.md"
    notes.write_text(NOTES)
    await page.get_by_text("Upload knowledge", exact=True).click()
    await page.get_by_label("File", exact=True).set_input_files(str(notes))
    await page.get_by_label("Upload to context", exact=True).select_option(label=context)
    await page.get_by_role("button", name="Upload", exact=True).click()
    ready = page.get_by_text(re.compile(r"pharos\.md is ready: \d+ passages? indexed"))
    await expect(ready).to_be_visible(timeout=240_000)

    await page.get_by_text("Answer options", exact=False).first.click()
    await page.get_by_label("Answer from context", exact=True).select_option(label=context)
    await page.get_by_label("Message", exact=True).fill(QUESTION)
    await page.get_by_role("button", name="Send", exact=True).click()
    await expect(page.get_by_role("button", name="Good answer", exact=True)).to_be_visible(
        timeout=MODEL_TIMEOUT_MS
    )
    chip = page.locator('[data-role="assistant"]').last.locator(".citations button").first
    await expect(chip).to_have_text(re.compile(r"^\[1\] pharos\.md$"))
    await chip.click()

    panel = page.get_by_role("dialog", name="Cited passage")
    await expect(panel).to_be_visible()
    await expect(panel.locator("blockquote")).to_contain_text("about one hundred metres tall")
    link = panel.get_by_role("link", name="Open file", exact=True)
    await expect(link).to_have_attribute("target", "_blank")
    opened = await page.request.get(await link.get_attribute("href") or "")
    assert opened.ok and "about one hundred metres tall" in await opened.text()
    assert opened.headers["content-disposition"].startswith("inline;")
    await tab.shoot("cited-passage")
    await panel.get_by_role("button", name="Close", exact=True).click()
    await expect(panel).to_have_count(0)
    tab.assert_clean()
