"""The admin console's ConfigOps patch queue in a browser, end to end (issue 20 item 7).

An admin's routing policy gets a proposed patch (through the API, as any proposer would send
it); in the console the admin reviews it (the dry-run stored at proposal, the diff of the
artifact before and after), approves it with a reason and applies it; the apply-patch function
runs under the real dispatcher (outbox → ApplyPatchQueue → the internal function host) and the
page, polling while the patch is `applying`, shows it applied with the new version. Then
"Roll back" proposes a patch that restores version 1. The clusters section shows, says
plainly when there are no skill adapters, and "Review skills now" reports what it proposed."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import expect

from tests.e2e.conftest import Tab, log_in_as_admin, sign_up
from tests.helpers import worker_processes
from tests.integration.configkit import ADD_RULE, POLICY

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


@pytest.fixture(scope="module")
def apply_workers(migrated, tmp_path_factory) -> Iterator[Path]:
    """The internal function host and the dispatcher (queue polling + outbox relay), so an
    applied patch really reaches the apply-patch function (as tests/integration's `workers`)."""
    with worker_processes(tmp_path_factory.mktemp("configops-workers")) as logs:
        yield logs


async def _as_admin(tab: Tab, settings) -> str:
    email = await sign_up(tab)
    await log_in_as_admin(tab, settings, email)
    return email


async def test_an_admin_reviews_approves_applies_and_rolls_back_a_patch(
    tab: Tab, settings, apply_workers
) -> None:
    page = tab.page
    await _as_admin(tab, settings)
    made = await tab.api("/v1/artifacts", "POST", {"name": "e2e routing", "schema": POLICY})
    artifact_id = made["id"]
    patch = await tab.api("/v1/config/propose_patch", "POST", {
        "artifact_id": artifact_id, "patch": ADD_RULE,
        "justification": "stay quiet when the turn looks risky",
    })  # fmt: skip
    assert patch["status"] == "pending", patch

    await page.goto("/admin/")
    queue = page.locator("#configops")
    await expect(queue.get_by_role("heading", name="ConfigOps patches")).to_be_visible()
    row = queue.locator(f'#patch-list tr[data-patch-id="{patch["id"]}"]')
    await expect(row).to_have_attribute("data-patch-status", "pending")
    await expect(row).to_contain_text("stay quiet when the turn looks risky")
    await row.get_by_role("button", name=f"Review patch {patch['id']}", exact=True).click()

    detail = queue.locator("#patch-detail")
    await expect(detail.locator("h3")).to_contain_text(f"Patch #{patch['id']}")
    # The dry-run stored at proposal (a new policy has no traffic: nothing replayed) and the diff.
    await expect(detail.locator(".dry-run-headline")).to_have_text(
        re.compile(r"replayed turns? change|Not replayed")
    )
    await expect(
        detail.locator(".diff-line.added").filter(has_text="quiet_when_risky")
    ).to_have_count(1)
    await expect(detail).to_contain_text("Valid: it applies")

    # A decision needs a reason.
    await detail.get_by_role("button", name="Approve", exact=True).click()
    await expect(queue.locator("#patch-action")).to_have_text(
        "A reason is required to approve or reject."
    )
    await detail.get_by_label("Reason", exact=True).fill("the dry-run changes no past turn")
    await detail.get_by_role("button", name="Approve", exact=True).click()
    await expect(row).to_have_attribute("data-patch-status", "approved")

    # Apply: queued, applied by the apply-patch function; the page reads it until it is done.
    await detail.get_by_role("button", name="Apply", exact=True).click()
    await expect(row).to_have_attribute("data-patch-status", "applied", timeout=90_000)
    await expect(queue.locator("#patch-action")).to_have_text(
        f"Patch #{patch['id']} applied: the artifact is now at v2."
    )
    now = await tab.api(f"/v1/artifacts/{artifact_id}")
    assert now["version"] == 2
    assert [r["id"] for r in now["schema"]["rules"]][-1] == "quiet_when_risky"

    # Roll back: restore v1, proposed as a patch of its own.
    await detail.get_by_role("button", name="Choose a version to restore", exact=True).click()
    version = queue.get_by_label("Version", exact=True)
    await expect(version).to_be_enabled()
    await version.select_option("1")
    await queue.get_by_label("Justification", exact=True).fill("back to the first policy")
    await queue.get_by_role("button", name="Roll back", exact=True).click()
    await expect(queue.locator("#rollback-status")).to_have_text(
        re.compile(r"Proposed patch #\d+ \(pending\) to restore v1\.")
    )
    restore = queue.locator("#patch-list tr").first
    await expect(restore).to_contain_text("restores v1")
    await expect(
        detail.locator(".diff-line.removed").filter(has_text="quiet_when_risky")
    ).to_have_count(1)

    # The clusters section: its list, and the skill adapters said plainly when there are none.
    clusters = page.locator("#clusters")
    await expect(
        clusters.get_by_role("heading", name="Clusters and skill adapters")
    ).to_be_visible()
    await expect(clusters.locator("#clusters-status")).to_have_text(
        re.compile(r"shown|No clusters yet")
    )
    await expect(
        clusters.get_by_role("button", name="Run clustering now", exact=True)
    ).to_be_visible()
    await expect(clusters.locator("#skill-adapters")).to_contain_text(
        re.compile(r"None yet|Adapters of type skill")
    )
    # "Review skills now": the system's skill, disable and merge proposals, counted.
    await clusters.get_by_role("button", name="Review skills now", exact=True).click()
    await expect(clusters.locator("#skills-status")).to_contain_text(
        re.compile(r"skills? proposed \(\d+ clusters? considered")
    )
    await tab.shoot("admin-configops")
    tab.assert_clean()
