"""An admin deletes another user's account from the admin console, in a browser (issue 23,
DESIGN.md §5a): "Delete user" on that user's row (not on the admin's own), a dialog that wants
the user's e-mail typed out, then the row shows the user as deleting and the section's live
status says so, and still does after a reload (the list says `deleting`, not `disabled`: no
"Enable" is offered; no queue worker runs here, so the purge is still pending). The deleted
user's session is refused at once: the access token, the refresh token and a new login all
fail."""

from __future__ import annotations

import uuid

import pytest
from playwright.async_api import expect

from tests.e2e.conftest import PASSWORD, Tab, log_in_as_admin, sign_up

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


async def test_an_admin_deletes_a_user_whose_session_is_refused_at_once(
    tab: Tab, browser, settings
) -> None:
    page = tab.page
    # The user to delete, signed in with bearer tokens in a context of their own.
    other = await browser.new_context(base_url=tab.base_url)
    try:
        victim = f"e2e-{uuid.uuid4().hex[:12]}@example.test"
        signed = await other.request.post(
            "/v1/auth/signup", data={"email": victim, "password": PASSWORD}
        )
        assert signed.ok, await signed.text()
        tokens = (await signed.json())["data"]
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        assert (await other.request.get("/v1/me", headers=bearer)).status == 200

        admin = await sign_up(tab)
        await log_in_as_admin(tab, settings, admin)

        await page.goto("/admin/")
        users = page.locator("#users")
        await users.get_by_label("Find users", exact=True).fill(admin)
        await users.get_by_role("button", name="Search", exact=True).click()
        mine = users.locator(f'tr[data-user="{admin}"]')
        await expect(mine).to_be_visible()
        await expect(mine.get_by_role("button", name=f"Disable {admin}")).to_be_visible()
        await expect(mine.get_by_role("button", name=f"Delete {admin}")).to_have_count(0)

        await users.get_by_label("Find users", exact=True).fill(victim)
        await users.get_by_role("button", name="Search", exact=True).click()
        row = users.locator(f'tr[data-user="{victim}"]')
        await row.get_by_role("button", name=f"Delete {victim}", exact=True).click()
        dialog = page.get_by_role("dialog", name="Delete user")
        confirm = dialog.get_by_label(f"Type {victim} to confirm", exact=True)
        await expect(confirm).to_be_focused()
        destroy = dialog.get_by_role("button", name="Delete permanently", exact=True)
        await confirm.fill(admin)  # the wrong address does not unlock it
        await expect(destroy).to_be_disabled()
        await confirm.fill(victim)
        await tab.shoot("admin-delete-user")
        await destroy.click()

        await expect(dialog).to_have_count(0)
        await expect(row).to_contain_text("Deleting…")
        said = f"{victim} is being deleted: signed out everywhere, account disabled, data purge"
        await expect(users.get_by_role("status")).to_have_text(f"{said} queued.")

        # After a reload the server's list says so too: no enable, disable or delete offered.
        await page.reload()
        await expect(users.get_by_role("status")).to_contain_text("shown.")  # the first page
        await users.get_by_label("Find users", exact=True).fill(victim)
        await users.get_by_role("button", name="Search", exact=True).click()
        await expect(row).to_have_attribute("data-status", "deleting")
        await expect(row).to_contain_text("Deleting…")
        await expect(row.get_by_role("button")).to_have_count(0)

        # The deleted user's session is over: the access token, the refresh token, a new login.
        assert (await other.request.get("/v1/me", headers=bearer)).status == 401
        refreshed = await other.request.post(
            "/v1/auth/refresh", data={"refresh_token": tokens["refresh_token"]}
        )
        assert refreshed.status == 401, await refreshed.text()
        login = await other.request.post(
            "/v1/auth/login", data={"email": victim, "password": PASSWORD}
        )
        assert login.status in (401, 403), await login.text()
    finally:
        await other.close()
    tab.assert_clean()
