"""The web app in a browser, end to end: signing up, a streamed answer, stopping one,
regenerating and editing (branches), model
output that tries to be markup, the admin pages kept from a normal user, and the security
headers the gateway serves it with. Screenshots of the main screens at 1280 and 390 px."""

from __future__ import annotations

import http.client
import re
from urllib.parse import urlsplit

import pytest
from playwright.async_api import expect

from shared.domain.chat import conversations
from shared.platform.db.pool import create_pool
from tests.e2e.conftest import NARROW, Tab, sign_up

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

LONG = "Write a very long story about a dragon and a knight."
ASSISTANT = '[data-role="assistant"]'
MODEL_TIMEOUT_MS = 180_000  # the first answer of a session may wait for the model's shapes

# In the page: each change of the last answer's text while a Stop button is on screen.
RECORD_ANSWER = """() => {
  window.__answerSamples = [];
  const last = () => [...document.querySelectorAll('[data-role="assistant"]')].pop();
  const stopShown = () => [...document.querySelectorAll("button")]
    .some((b) => b.textContent.trim() === "Stop");
  new MutationObserver(() => {
    const answer = last();
    if (!answer || !stopShown()) return;
    const samples = window.__answerSamples, text = answer.textContent;
    if (samples[samples.length - 1] !== text) samples.push(text);
  }).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


def grew_while_streaming(samples: list[str]) -> bool:
    """Some text the answer showed while streaming was extended later, still streaming."""
    shown = [sample.rstrip() for sample in samples]
    return any(
        later.startswith(earlier) and len(later) > len(earlier)
        for i, earlier in enumerate(shown)
        for later in shown[i + 1 :]
    )


async def send(tab: Tab, text: str) -> None:
    page = tab.page
    await page.get_by_label("Message", exact=True).fill(text)
    await page.get_by_role("button", name="Send", exact=True).click()
    await expect(page.locator('[data-role="user"]').last).to_contain_text(text)


async def test_sign_up_opens_the_chat_and_its_tabs(tab: Tab) -> None:
    page = tab.page
    await page.goto("/")
    await expect(page.get_by_role("button", name="Sign up", exact=True)).to_be_visible()
    await tab.shoot("sign-in")
    await sign_up(tab)
    chat = page.get_by_role("tab", name="Chat", exact=True)
    await expect(chat).to_have_attribute("aria-selected", "true")
    await expect(page.get_by_role("button", name="New conversation", exact=True)).to_be_attached()
    me = await tab.api("/v1/me")
    assert me["email"].startswith("e2e-")
    for name, shot in (("Contexts", "contexts"), ("Artifacts", None), ("Settings", "settings"),
                       ("Your model", "your-model"), ("Chat", None)):  # fmt: skip
        await page.get_by_role("tab", name=name, exact=True).click()
        await expect(page.get_by_role("tab", name=name, exact=True)).to_have_attribute(
            "aria-selected", "true"
        )
        if shot:
            await tab.shoot(shot)
    await page.set_viewport_size(NARROW)  # every tab in sight on a phone, none scrolled away
    for name in ("Chat", "Contexts", "Artifacts", "Settings", "Your model"):
        box = await page.get_by_role("tab", name=name, exact=True).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= NARROW["width"], (name, box)
    tab.assert_clean()


async def test_an_answer_streams_into_the_page(tab: Tab) -> None:
    page = tab.page
    await sign_up(tab)
    await page.evaluate(RECORD_ANSWER)
    await send(tab, "Say hello")
    await expect(page.get_by_role("button", name="Good answer", exact=True)).to_be_visible(
        timeout=MODEL_TIMEOUT_MS
    )
    answer = page.locator(ASSISTANT).last
    samples = await page.evaluate("window.__answerSamples")
    assert grew_while_streaming(samples), f"the answer did not grow while streaming: {samples}"
    final = (await answer.inner_text()).strip()
    assert final and final != samples[0].strip()
    await tab.shoot("chat")
    tab.assert_clean()


async def test_stop_keeps_the_partial_answer(tab: Tab) -> None:
    page = tab.page
    await sign_up(tab)
    await send(tab, LONG)
    stop = page.get_by_role("button", name="Stop", exact=True)
    await expect(stop).to_be_visible(timeout=MODEL_TIMEOUT_MS)
    # A few words in, then stop.
    await page.wait_for_function(
        """() => {
             const answer = [...document.querySelectorAll('[data-role="assistant"]')].pop();
             const text = answer ? answer.textContent.split("…").pop() : "";
             return /\\w+\\W+\\w+\\W+\\w+\\W+\\w+/.test(text);
           }""",
        timeout=MODEL_TIMEOUT_MS,
    )
    await stop.click()
    await expect(stop).to_have_count(0, timeout=60_000)
    shown = (await page.locator(ASSISTANT).last.inner_text()).strip()
    conversation = (await tab.api("/v1/conversations"))["items"][0]["id"]
    stored = (await tab.api(f"/v1/conversations/{conversation}/messages"))["items"][-1]
    assert stored["meta"]["cancelled"] is True, stored
    assert stored["content"].strip(), stored
    words = re.findall(r"\w+", stored["content"])
    assert " ".join(words[:3]) in " ".join(re.findall(r"\w+", shown)), (shown, stored)
    # What was kept is what the conversation shows when opened again.
    await page.goto(f"/c/{conversation}")
    await expect(page.locator(ASSISTANT).last).to_contain_text(words[0])
    tab.assert_clean()


async def test_regenerate_and_edit_make_branches_the_arrows_move_between(tab: Tab) -> None:
    page = tab.page
    await sign_up(tab)
    await send(tab, "Name a colour.")
    regenerate = page.get_by_role("button", name="Regenerate", exact=True)
    await expect(regenerate).to_be_enabled(timeout=MODEL_TIMEOUT_MS)
    await regenerate.click()
    answers = page.get_by_role("group", name="Versions of this answer")
    await expect(answers).to_contain_text("2/2", timeout=MODEL_TIMEOUT_MS)
    await expect(regenerate).to_be_enabled(timeout=MODEL_TIMEOUT_MS)
    await page.get_by_role("button", name="Previous answer", exact=True).click()
    await expect(answers).to_contain_text("1/2")

    question = page.locator('[data-role="user"]').last
    await question.get_by_role("button", name="Edit", exact=True).click()
    await page.get_by_label("Edit message", exact=True).fill("Name a fruit.")
    await page.get_by_role("button", name="Save and submit", exact=True).click()
    questions = page.get_by_role("group", name="Versions of this question")
    await expect(questions).to_contain_text("2/2")
    await expect(page.locator('[data-role="user"]')).to_have_text(re.compile("Name a fruit"))
    await expect(regenerate).to_be_enabled(timeout=MODEL_TIMEOUT_MS)
    await expect(page.get_by_role("group", name="Versions of this answer")).to_have_count(0)
    await page.get_by_role("button", name="Previous question", exact=True).click()
    await expect(page.locator('[data-role="user"]')).to_have_text(re.compile("Name a colour"))
    await expect(answers).to_contain_text("1/2")  # the branch as it was left
    conversation = (await tab.api("/v1/conversations"))["items"][0]["id"]
    stored = (await tab.api(f"/v1/conversations/{conversation}/messages"))["items"]
    asked = [m for m in stored if m["sender"] == "user"]
    assert [m["content"] for m in asked] == ["Name a colour.", "Name a fruit."]
    assert asked[0]["parent_id"] is None and asked[1]["parent_id"] is None
    assert sum(m["sender"] == "assistant" for m in stored) == 3
    tab.assert_clean()


async def test_model_output_that_looks_like_markup_is_shown_as_text(tab: Tab, settings) -> None:
    page = tab.page
    await sign_up(tab)
    me = await tab.api("/v1/me")
    payload = "<img src=x onerror=alert(1)>"
    answer = f"Here it is: {payload} and [a link](javascript:alert(2)) and <b>bold</b>."
    pool = create_pool(settings)
    await pool.open()
    try:  # the answer written for this user, as the chat would have stored it
        async with pool.connection() as conn:
            made = await conversations.create(conn, me["id"], title="markup")
            asked = await conversations.append_message(
                conn, me["id"], made.id, sender="user", content="Show me an image", meta={}
            )
            await conversations.append_message(
                conn, me["id"], made.id, sender="assistant", parent_id=asked.id, meta={},
                content=answer,
            )  # fmt: skip
    finally:
        await pool.close()
    await page.goto(f"/c/{made.id}")
    message = page.locator(ASSISTANT).last
    await expect(message).to_contain_text(payload)
    await expect(message).to_contain_text("<b>bold</b>")
    assert await message.locator("img").count() == 0
    assert await message.locator("b").count() == 0
    assert await message.locator('a[href^="javascript"]').count() == 0
    await page.wait_for_timeout(500)  # an onerror handler would have run by now
    tab.assert_clean()


async def test_the_admin_pages_are_refused_to_a_normal_user(tab: Tab, web_build) -> None:
    page = tab.page
    admin_files: list[str] = []
    page.on(
        "response", lambda r: admin_files.append(r.url) if r.ok and "/admin/" in r.url else None
    )
    anonymous = await page.goto("/admin/")
    assert anonymous is not None and anonymous.status == 401
    await sign_up(tab)
    admin_scripts = [p.name for p in (web_build / "admin" / "assets").iterdir()]
    assert admin_scripts
    for path in ("/admin/", "/admin/index.html", "/admin/users",
                 f"/admin/assets/{admin_scripts[0]}"):  # fmt: skip
        refused = await page.goto(path)
        assert refused is not None and refused.status == 403, path
        body = await page.locator("body").inner_text()
        assert "is for the admin role" in body, (path, body)
    assert admin_files == []  # not one file of the admin bundle reached the browser
    tab.assert_clean()


async def test_the_app_is_served_with_its_security_headers(tab: Tab, settings, web_build) -> None:
    page, base = tab.page, tab.base_url
    port = urlsplit(base).port
    policy = settings.model_copy(
        update={"public_base_url": base, "gateway_port": port}
    ).content_security_policy
    for path in ("/", "/verify-email#token=abc", "/reset-password#token=abc",
                 "/c/0b7f3c1e-2a4d-4a55-9a63-5d2f0e7f4c11"):  # fmt: skip
        opened = await page.goto(path)
        assert opened is not None and opened.status == 200, path
        headers = await opened.all_headers()
        assert headers["content-security-policy"] == policy, path
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "same-origin"
        assert headers["cache-control"] == "no-cache"
        assert "<title>Adaptive Chat</title>" in await opened.text()
    script = next((web_build / "assets").glob("*.js")).name
    asset = await page.request.get(f"/assets/{script}")
    assert asset.status == 200
    assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert asset.headers["content-security-policy"] == policy
    # Paths sent as they are (no client tidies them up): nothing outside the build.
    for raw in ("/..%2fpyproject.toml", "/assets/../../pyproject.toml", "/%2e%2e/pyproject.toml",
                "//admin/index.html", "/assets/..%2f..%2fpyproject.toml"):  # fmt: skip
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", raw, headers={"Accept": "text/html"})
        answered = connection.getresponse()
        body = answered.read().decode()
        connection.close()
        assert "[project]" not in body and "<title>Admin" not in body, raw
        assert answered.status in (200, 401, 404), (raw, answered.status)
