"""The web app's Contexts tab in a browser, end to end: a file uploaded through the chat without
a context, a new context, the file attached to it and followed until the real queue workers
have ingested it, a search whose hit opens the "Cited passage" panel, then detach, rename and a
delete confirmed in the page; and a global context someone else owns, which the user may search
but not change."""

from __future__ import annotations

import re
import time
import uuid

import pytest
from playwright.async_api import expect

from shared.domain.rag import contexts
from shared.platform.db.pool import create_pool
from tests.e2e.conftest import PASSWORD, Tab, sign_up
from tests.integration.ragkit import ingest_workers  # noqa: F401 - fixture

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

INGEST_TIMEOUT_MS = 240_000  # the first embedding of a session may wait for the model
NOTES = (
    "# The lighthouse\n\n"
    "The lighthouse of Alexandria stood on the island of Pharos. It was about one hundred "
    "metres tall and its fire could be seen from far out at sea.\n"
)


@pytest.mark.usefixtures("ingest_workers")
async def test_a_context_gets_a_file_is_searched_renamed_and_deleted(tab: Tab, tmp_path) -> None:
    page = tab.page
    await sign_up(tab)

    # A file stored without a context (the chat's upload panel), to attach afterwards.
    notes = tmp_path / "pharos.md"
    notes.write_text(NOTES)
    await page.get_by_text("Upload knowledge", exact=True).click()
    await page.get_by_label("File", exact=True).set_input_files(str(notes))
    await page.get_by_role("button", name="Upload", exact=True).click()
    await expect(page.get_by_text("pharos.md uploaded.", exact=False)).to_be_visible()

    name = f"Lighthouses {int(time.time())}"
    await page.get_by_role("tab", name="Contexts", exact=True).click()
    await page.get_by_label("Name", exact=True).fill(name)
    await page.get_by_role("button", name="Create context", exact=True).click()
    details = page.locator(".context-details")
    await expect(details.get_by_role("heading", name=name, exact=True)).to_be_visible()
    await expect(details.get_by_text("No files yet", exact=False)).to_be_visible()

    chooser = page.get_by_label("File to attach", exact=True)
    await chooser.select_option(index=1)
    await expect(chooser.locator("option:checked")).to_have_text(re.compile(r"^pharos\.md"))
    await page.get_by_role("button", name="Attach file", exact=True).click()
    row = page.get_by_role("list", name="Files in this context").get_by_role("listitem")
    await expect(row).to_have_count(1)
    await expect(row).to_have_attribute("data-ingestion", "ready", timeout=INGEST_TIMEOUT_MS)
    await expect(row).to_contain_text(re.compile(r"pharos\.md is ready: \d+ passages? indexed"))
    contents = details.get_by_text(re.compile(r"1 file, [1-9]\d* passages? indexed"))
    await expect(contents).to_be_visible()

    await page.get_by_label("Search for", exact=True).fill("How tall was the lighthouse?")
    await page.get_by_role("button", name="Search", exact=True).click()
    hit = page.get_by_role("button", name="[1] pharos.md", exact=True)
    await expect(hit).to_be_visible()
    await expect(page.locator(".search-hit").first).to_contain_text(re.compile(r"score \d"))
    await tab.shoot("contexts")
    await hit.click()
    panel = page.get_by_role("dialog", name="Cited passage")
    await expect(panel.locator("blockquote")).to_contain_text("about one hundred metres tall")
    await expect(panel.get_by_role("link", name="Open file", exact=True)).to_be_visible()
    await tab.shoot("contexts-search")
    await page.keyboard.press("Escape")
    await expect(panel).to_have_count(0)
    await expect(hit).to_be_focused()  # back where the keyboard was

    await page.get_by_role("button", name="Detach pharos.md", exact=True).click()
    await expect(row).to_have_count(0)
    await expect(details.get_by_text("No files yet", exact=False)).to_be_visible()

    renamed = f"{name} (renamed)"
    await page.get_by_role("button", name="Rename", exact=True).click()
    await page.get_by_label("New name", exact=True).fill(renamed)
    await page.get_by_role("button", name="Save", exact=True).click()
    await expect(details.get_by_role("heading", name=renamed, exact=True)).to_be_visible()
    await expect(page.locator(".context-card", has_text=renamed)).to_have_count(1)

    await page.get_by_role("button", name="Delete context", exact=True).click()
    await page.get_by_role("button", name="Confirm delete", exact=True).click()
    await expect(page.get_by_text("Select a context to see its details.")).to_be_visible()
    await expect(page.locator(".context-card", has_text=renamed)).to_have_count(0)
    assert (await tab.api("/v1/contexts?owner=me"))["items"] == []
    assert [f["name"] for f in (await tab.api("/v1/files"))["items"]] == ["pharos.md"]
    tab.assert_clean()


async def test_a_global_context_of_someone_else_is_read_only(tab: Tab, settings) -> None:
    page = tab.page
    await sign_up(tab)
    other = await page.request.post(
        "/v1/auth/signup",
        data={"email": f"e2e-{uuid.uuid4().hex[:12]}@example.test", "password": PASSWORD},
    )
    assert other.ok, await other.text()
    owner = (await other.json())["data"]["user"]["id"]
    name = f"Handbook {uuid.uuid4().hex[:8]}"
    pool = create_pool(settings)
    await pool.open()
    try:
        async with pool.connection() as conn, conn.transaction():
            await contexts.create(
                conn, owner, name=name, description="for everyone", visibility="global",
                settings={}, embedding_version=settings.rag_embedding_version, is_admin=True,
            )  # fmt: skip
        await page.get_by_role("tab", name="Contexts", exact=True).click()
        await page.locator(".context-card", has_text=name).click()
        details = page.locator(".context-details")
        await expect(details.get_by_role("heading", name=name, exact=True)).to_be_visible()
        await expect(details).to_contain_text("read-only to you")
        for control in ("Rename", "Delete context", "Attach file", "Detach"):
            await expect(details.get_by_role("button", name=control)).to_have_count(0)
        await expect(details.get_by_label("File to attach")).to_have_count(0)
        await page.get_by_label("Search for", exact=True).fill("holidays")
        await page.get_by_role("button", name="Search", exact=True).click()
        await expect(details.get_by_text("Nothing in this context matches")).to_be_visible()
        tab.assert_clean()
    finally:
        async with pool.connection() as conn, conn.transaction():
            await conn.execute("DELETE FROM knowledge_context WHERE name = %s", (name,))
        await pool.close()
