"""The web app's "Your model" tab, the Artifacts tab's version diff and the admin console, in a
browser, end to end.

- An artifact given a second version through the API shows the diff of the two in the
  Artifacts tab.
- A training job made by real feedback (this module's gateway queues one at the first
  trainable event) shows in "Your model" as queued; no train host runs in these tests, so the
  job is then claimed and its progress reported with the train function's own calls
  (`jobs.claim`, `jobs.heartbeat`), and the page shows it without a reload (it polls while a
  job is queued or running).
- An admin (promoted with `make admin`'s helper) sees the console's users list and the audit
  chain check. That a normal user is refused the console is in test_web_app.py."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
from playwright.async_api import expect

from shared.domain.chat import conversations
from shared.domain.preferences import jobs
from shared.platform.db.pool import create_pool
from tests.e2e.conftest import PASSWORD, Tab, gateway_process, log_in_as_admin, sign_up

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

# A tool.spec (tests/integration/test_artifacts.py's), whose second version changes a timeout.
TOOL = {
    "kind": "tool.spec",
    "name": "demo.echo_v1",
    "description": "Echo.",
    "input_schema": {"type": "object", "properties": {"text": {"type": "string"}}},
    "output_schema": {"type": "object", "properties": {"text": {"type": "string"}}},
    "timeout_ms": 2000,
}


@pytest.fixture(scope="module")
def web_gateway(migrated, service, web_build, tmp_path_factory) -> Iterator[str]:
    """conftest's gateway, with training scheduled at the first trainable event, no cooldown
    and a two-step budget (the feedback queues a job at once)."""
    with gateway_process(
        service, tmp_path_factory.mktemp("web-gateway-model"), TRAINING_THRESHOLD_EVENTS="1",
        TRAINING_COOLDOWN_S="0", TRAINING_STEP_BUDGET="2", RATE_FEEDBACK_PER_MIN="1000",
    ) as url:  # fmt: skip
        yield url


async def test_the_artifacts_tab_shows_the_diff_of_two_versions(tab: Tab) -> None:
    page = tab.page
    await sign_up(tab)
    name = f"tool-{uuid.uuid4().hex[:8]}"
    made = await tab.api("/v1/artifacts", "POST", {"name": name, "schema": TOOL})
    assert made["version"] == 1
    changed = await tab.api(
        f"/v1/artifacts/{made['id']}", "PATCH",
        {"schema": {**TOOL, "timeout_ms": 3000}, "change_note": "a longer timeout"},
    )  # fmt: skip
    assert changed["version"] == 2
    await page.get_by_role("tab", name="Artifacts", exact=True).click()
    await page.get_by_label("Owner").select_option("me")  # its name includes the option shown
    await page.get_by_role("button", name=name, exact=True).click()
    await expect(page.get_by_role("heading", name="Version history")).to_be_visible()
    await expect(page.get_by_role("cell", name="a longer timeout")).to_be_visible()
    diff = page.get_by_label("Changes from v1 to v2", exact=True)
    await expect(diff).to_be_visible()
    await expect(diff.locator(".diff-line.removed")).to_have_count(1)
    await expect(diff.locator(".diff-line.removed")).to_contain_text('"timeout_ms": 2000')
    await expect(diff.locator(".diff-line.added")).to_have_count(1)
    await expect(diff.locator(".diff-line.added")).to_contain_text('"timeout_ms": 3000')
    await expect(page.get_by_text("1 line added, 1 removed")).to_be_visible()
    await tab.shoot("artifact-diff")
    tab.assert_clean()


async def test_your_model_shows_a_training_job_and_its_progress(tab: Tab, settings) -> None:
    page = tab.page
    await sign_up(tab)
    me = await tab.api("/v1/me")
    pool = create_pool(settings)
    await pool.open()
    try:
        async with pool.connection() as conn:  # an answer, as the chat would have stored it
            made = await conversations.create(conn, me["id"], title="units")
            asked = await conversations.append_message(
                conn, me["id"], made.id, sender="user", content="How far is it?", meta={}
            )
            said = await conversations.append_message(
                conn, me["id"], made.id, sender="assistant", parent_id=asked.id, meta={},
                content="It is about three miles.",
            )  # fmt: skip
        feedback = await tab.api("/v1/preferences", "POST", {
            "conversation_id": made.id, "message_id": said.id, "explicit_signal": "dislike",
            "corrected_text": "It is about 4.8 km.",
        })  # fmt: skip
        assert feedback["training"]["outcome"] == "queued", feedback
        job_id = feedback["training"]["job_id"]

        await page.get_by_role("tab", name="Your model", exact=True).click()
        learned = page.get_by_role("heading", name="What your model has learned")
        await expect(learned).to_be_visible()
        await expect(page.get_by_role("button", name="Pause learning", exact=True)).to_be_visible()
        row = page.locator(f'tr:has(td[title="{job_id}"])')
        await expect(row).to_have_attribute("data-job-status", "queued")
        await expect(row).to_contain_text("no progress reported")

        # What the train function does when it takes the job and reports a step.
        async with pool.connection() as conn, conn.transaction():
            claimed = await jobs.claim(conn, job_id)
            assert claimed is not None and claimed.step_budget == 2  # this gateway's settings
        async with pool.connection() as conn, conn.transaction():
            assert await jobs.heartbeat(conn, job_id, {"step": 1, "total": 2, "loss": 0.75})
    finally:
        await pool.close()
    # The page polls while the job is queued or running: no reload.
    await expect(row).to_have_attribute("data-job-status", "running", timeout=15_000)
    progress = row.get_by_role("progressbar")
    await expect(progress).to_have_attribute("value", "1")
    await expect(progress).to_have_attribute("max", "2")
    await expect(row).to_contain_text("1/2 (50 %)")
    await expect(row).to_contain_text("0.7500")
    await tab.shoot("your-model-training")
    tab.assert_clean()


async def test_an_admin_sees_the_users_and_the_audit_chain_check(tab: Tab, settings) -> None:
    page = tab.page
    email = await sign_up(tab)
    me = await tab.api("/v1/me")
    await log_in_as_admin(tab, settings, email)

    await page.goto("/admin/")
    await expect(page.get_by_role("heading", name="Users", exact=True)).to_be_visible()
    await page.get_by_label("Find users", exact=True).fill(email)
    await page.get_by_role("button", name="Search", exact=True).click()
    mine = page.locator(f'tr[data-user="{email}"]')
    await expect(mine).to_be_visible()
    await expect(mine.get_by_label(f"Role of {email}")).to_have_value("admin")
    await expect(page.get_by_role("heading", name="Stack health")).to_be_visible()
    await expect(page.locator("#health")).to_contain_text("Overall:")

    await page.get_by_role("button", name="Verify the hash chain", exact=True).click()
    verdict = await tab.api("/v1/admin/audit/verify")
    expected = r"Chain intact: \d+ events checked\." if verdict["ok"] else r"Chain BROKEN at event"
    await expect(page.locator("#chain")).to_have_text(re.compile(expected))
    # The promotion itself is in the log the console shows.
    await page.get_by_label("Event", exact=True).fill("role_changed")
    await page.get_by_role("button", name="Filter", exact=True).click()
    await expect(page.locator("#events")).to_contain_text(me["id"])
    await tab.shoot("admin-console")
    tab.assert_clean()


async def test_an_admin_sees_another_users_training_job_and_its_adapter(
    tab: Tab, browser, settings
) -> None:
    """Another user's correction queues a job for their persona; the admin console's all-jobs
    table shows it with its owner, keeps it under the `queued` filter, and its "Adapter" button
    shows that user's adapter versions (which the admin could not read through the user
    routes)."""
    page = tab.page
    other = await browser.new_context(base_url=tab.base_url)  # the other user: bearer tokens
    pool = create_pool(settings)
    await pool.open()
    try:
        owner = f"e2e-{uuid.uuid4().hex[:12]}@example.test"
        signed = await other.request.post(
            "/v1/auth/signup", data={"email": owner, "password": PASSWORD}
        )
        assert signed.ok, await signed.text()
        data = (await signed.json())["data"]
        owner_id = data["user"]["id"]
        async with pool.connection() as conn:
            made = await conversations.create(conn, owner_id, title="units")
            asked = await conversations.append_message(
                conn, owner_id, made.id, sender="user", content="How far?", meta={}
            )
            said = await conversations.append_message(
                conn, owner_id, made.id, sender="assistant", parent_id=asked.id,
                content="About three miles.", meta={},
            )  # fmt: skip
        sent = await other.request.post(
            "/v1/preferences",
            data={"conversation_id": made.id, "message_id": said.id,
                  "explicit_signal": "dislike", "corrected_text": "About 4.8 km."},
            headers={"Authorization": f"Bearer {data['access_token']}",
                     "Idempotency-Key": str(uuid.uuid4())},
        )  # fmt: skip
        assert sent.ok, await sent.text()
        training = (await sent.json())["data"]["training"]
        assert training["outcome"] == "queued", training
        job_id = training["job_id"]
    finally:
        await pool.close()
        await other.close()

    admin = await sign_up(tab)
    await log_in_as_admin(tab, settings, admin)

    await page.goto("/admin/")
    await expect(page.get_by_role("heading", name="Training jobs (all users)")).to_be_visible()
    row = page.locator(f'#jobs tr[data-job-id="{job_id}"]')
    await expect(row).to_be_visible()
    await expect(row).to_have_attribute("data-job-status", "queued")
    await expect(row).to_contain_text(owner)
    status = page.get_by_label("Status", exact=True)
    await status.select_option("failed")
    await expect(page.locator("#jobs-status")).to_contain_text("shown")
    await expect(row).to_have_count(0)
    await status.select_option("queued")
    await expect(row).to_be_visible()

    await row.get_by_role("button").click()
    detail = page.locator("#adapter-detail")
    await expect(detail).to_contain_text(owner)
    served = detail.locator('#versions tr[data-version="1"]')
    await expect(served).to_have_attribute("data-state", "served")
    # The adapters list, filtered by that owner.
    await page.get_by_label("Owner", exact=True).fill(owner_id)
    await page.get_by_role("button", name="List adapters", exact=True).click()
    listed = page.locator("#adapter-list tr")
    await expect(listed).to_have_count(1)
    await expect(listed).to_contain_text(owner)
    await tab.shoot("admin-training")
    tab.assert_clean()
