"""The controls over what the model learned, in the "Your model" tab, end to end: feedback
marked "always" and "never" with a note becomes two instructions; one is edited and the other
deleted in the page; learning is paused and resumed; and the persona is reset to the base
model with its instructions cleared. Each step is checked in the page and through the API."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from shared.domain.chat import conversations
from shared.platform.db.pool import create_pool
from tests.e2e.conftest import Tab, sign_up

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


async def _answers(settings, user_id: str, count: int) -> tuple[str, list[str]]:
    """A conversation with `count` stored answers, as the chat would have written them."""
    pool = create_pool(settings)
    await pool.open()
    try:
        async with pool.connection() as conn:
            made = await conversations.create(conn, user_id, title="units")
            said, parent = [], None
            for i in range(count):
                asked = await conversations.append_message(
                    conn, user_id, made.id, sender="user", content=f"Question {i}?",
                    parent_id=parent, meta={},
                )  # fmt: skip
                answer = await conversations.append_message(
                    conn, user_id, made.id, sender="assistant", content=f"Answer {i}.",
                    parent_id=asked.id, meta={},
                )  # fmt: skip
                said.append(answer.id)
                parent = answer.id
        return made.id, said
    finally:
        await pool.close()


async def test_instructions_are_edited_deleted_and_reset_in_the_page(tab: Tab, settings) -> None:
    page = tab.page
    await sign_up(tab)
    me = await tab.api("/v1/me")
    conversation, said = await _answers(settings, me["id"], 2)
    for message_id, signal, note in ((said[0], "always", "Answer in metric units."),
                                     (said[1], "never", "Never use emoji.")):  # fmt: skip
        await tab.api("/v1/preferences", "POST", {
            "conversation_id": conversation, "message_id": message_id,
            "explicit_signal": signal, "notes": note,
        })  # fmt: skip

    await page.get_by_role("tab", name="Your model", exact=True).click()
    items = page.locator("li.instruction")
    await expect(items).to_have_count(2)
    await page.get_by_role("button", name="Edit instruction: Answer in metric units.").click()
    await page.get_by_label("Instruction text", exact=True).fill("Give distances in kilometres.")
    await page.get_by_role("button", name="Save", exact=True).click()
    await expect(items.filter(has_text="Give distances in kilometres.")).to_have_count(1)
    await page.get_by_role("button", name="Delete instruction: Never use emoji.").click()
    await expect(items).to_have_count(1)
    kept = (await tab.api("/v1/me/personalization"))["instructions"]
    assert [(i["kind"], i["text"]) for i in kept] == [("always", "Give distances in kilometres.")]

    await page.get_by_role("button", name="Pause learning", exact=True).click()
    resume = page.get_by_role("button", name="Resume learning", exact=True)
    await expect(resume).to_be_visible()
    assert (await tab.api("/v1/me/personalization"))["learning_paused"] is True
    await resume.click()
    await expect(page.get_by_role("button", name="Pause learning", exact=True)).to_be_visible()

    await page.get_by_role("button", name="Reset to base model", exact=True).click()
    confirm = page.get_by_role("group", name="Confirm the reset")
    await confirm.get_by_label("Also delete the instructions").check()
    await confirm.get_by_role("button", name="Confirm reset", exact=True).click()
    await expect(page.get_by_text("No instructions.", exact=False)).to_be_visible()
    await expect(page.get_by_text("Last reset", exact=True)).to_be_visible()
    after = await tab.api("/v1/me/personalization")
    assert after["instructions"] == [] and after["reset_at"], after
    assert after["learning_paused"] is False
    tab.assert_clean()
