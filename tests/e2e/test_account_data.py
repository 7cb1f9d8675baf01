"""A user's data under the user's control, in a browser (issue 23, DESIGN.md §5a): a new
account chats and stores a file, asks for an export in Settings → Your data, which the real
queue workers (dispatcher → export consumer) turn into a zip while the page polls; the mail's
link opens Settings with that export focused, and Download hands the browser a signed URL of
the store that downloads a zip holding the conversation and the file. Then the account is
deleted with its password: the page signs out and says so, and logging in again is refused."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import time
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import expect

from tests.e2e.conftest import PASSWORD, Tab, delete_my_account, sign_up
from tests.integration.ragkit import ingest_workers  # noqa: F401 - fixture

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

MODEL_TIMEOUT_MS = 180_000  # the first answer of a session may wait for the model's shapes
EXPORT_TIMEOUT_MS = 180_000  # queued, relayed, zipped and stored on a loaded two-core machine
MAIL_TIMEOUT_S = 60
QUESTION = "Which colour is a ripe banana?"
NOTE = "Remember: the spare key is under the blue flower pot.\n"
EXPORT_LINK = re.compile(r"https?://[^\s\"'<>]+/settings\?export=([0-9A-Za-z-]+)")


def export_links(mail_dir: Path, address: str) -> list[str]:
    """The app links (`…/settings?export={id}`) in the mails the sink delivered to `address`."""
    links = []
    for path in sorted(mail_dir.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if message["To"] != address:
            continue
        for part in message.walk():
            if part.get_content_maintype() == "text":
                links += [m.group(0) for m in EXPORT_LINK.finditer(part.get_content())]
    return links


async def wait_for_export_link(mail_dir: Path, address: str) -> str:
    """The export-ready mail's link (the dispatcher runs the mailer); polled without blocking
    the browser's event loop."""
    deadline = time.monotonic() + MAIL_TIMEOUT_S
    while not (links := export_links(mail_dir, address)):
        assert time.monotonic() < deadline, f"no export mail to {address} in {MAIL_TIMEOUT_S}s"
        await asyncio.sleep(0.5)
    return links[0]


async def chat_once(tab: Tab) -> None:
    page = tab.page
    await page.get_by_label("Message", exact=True).fill(QUESTION)
    await page.get_by_role("button", name="Send", exact=True).click()
    await expect(page.get_by_role("button", name="Good answer", exact=True)).to_be_visible(
        timeout=MODEL_TIMEOUT_MS
    )


async def store_a_file(tab: Tab, tmp_path: Path) -> None:
    """A file uploaded through the app into no context (stored only, not indexed)."""
    page = tab.page
    note = tmp_path / "spare-key.md"
    note.write_text(NOTE)
    await page.get_by_text("Upload knowledge", exact=True).click()
    await page.get_by_label("File", exact=True).set_input_files(str(note))
    await page.get_by_role("button", name="Upload", exact=True).click()
    await expect(page.get_by_text(re.compile(r"spare-key\.md.* uploaded"))).to_be_visible()


def zip_texts(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None, "a member of the export is corrupt"
        return {name: archive.read(name) for name in archive.namelist()}


@pytest.mark.usefixtures("ingest_workers")
async def test_export_then_delete_the_account(tab: Tab, settings, tmp_path) -> None:
    page = tab.page
    address = await sign_up(tab)
    await chat_once(tab)
    await store_a_file(tab, tmp_path)

    await page.get_by_role("tab", name="Settings", exact=True).click()
    data = page.get_by_role("region", name="Your data")
    await data.get_by_role("button", name="Export my data", exact=True).click()
    await expect(data.get_by_text(re.compile(r"^Export requested"))).to_be_visible()
    download = data.get_by_role("button", name=re.compile(r"^Download the export of "))
    await expect(download).to_have_count(1, timeout=EXPORT_TIMEOUT_MS)  # the page polled
    ready = data.get_by_text("Your data export is ready to download.", exact=True)
    await expect(ready).to_be_visible()  # said in the live region, not only shown

    # The mail's link opens Settings → Your data with that export focused.
    link = await wait_for_export_link(settings.mail_dir, address)
    export_id = link.rsplit("=", 1)[1]
    await page.goto(f"{urlsplit(link).path}?{urlsplit(link).query}")
    row = page.locator(f"#export-{export_id}")
    await expect(row).to_be_focused()
    await expect(row).to_contain_text("Ready")
    await tab.shoot("settings-your-data")

    async with page.expect_download() as started:
        await row.get_by_role("button", name=re.compile(r"^Download the export of ")).click()
    saved = tmp_path / "export.zip"
    await (await started.value).save_as(saved)
    members = zip_texts(saved)
    everything = b"\n".join(members.values())
    assert QUESTION.encode() in everything, sorted(members)
    assert NOTE.strip().encode() in everything, sorted(members)

    await delete_my_account(tab, password=PASSWORD)
    await tab.shoot("account-deleted")
    await page.get_by_label("Email", exact=True).fill(address)
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_role("button", name="Log in", exact=True).click()
    await expect(page.get_by_role("alert")).to_be_visible()
    await expect(page.get_by_role("tab", name="Chat", exact=True)).to_have_count(0)
    tab.assert_clean()
