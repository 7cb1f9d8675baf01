"""Roles, the admin surface (API and front-end bundle) and the hash-chained audit log."""

from __future__ import annotations

import psycopg
import pyotp
import pytest
from psycopg.types.json import Jsonb

from infra.admin import promote
from tests.integration.authkit import PASSWORD, bearer, sign_up

pytestmark = pytest.mark.integration


async def _admin(api, settings) -> dict:
    """A fresh account promoted the way `make admin` does it, with a token carrying the role."""
    signed = await sign_up(api)
    assert "now an admin" in await promote(settings, signed["user"]["email"])
    refreshed = await api.post("/v1/auth/refresh", json={"refresh_token": signed["refresh_token"]})
    tokens = refreshed.json()["data"]
    return {
        **signed,
        "access_token": tokens["access_token"],
        "refresh_token": tokens["refresh_token"],
    }


async def test_the_admin_api_and_bundle_are_for_admins_only(api, settings) -> None:
    admin, user = await _admin(api, settings), await sign_up(api)
    for path in ("/v1/admin/audit", "/v1/admin/users", "/admin/", "/admin/index.html"):
        assert (await api.get(path)).status_code == 401, path
        assert (await api.get(path, headers=bearer(user["access_token"]))).status_code == 403, path
        allowed = await api.get(path, headers=bearer(admin["access_token"]))
        assert allowed.status_code == 200, path
    page = await api.get("/admin/", headers=bearer(admin["access_token"]))
    assert "Adaptive Chat admin" in page.text and "Audit log" in page.text
    # A page of the admin bundle's own (the SPA fallback) is guarded the same way.
    html = {"Accept": "text/html"}
    assert (await api.get("/admin/audit/42", headers=html)).status_code == 401
    as_user = {**html, **bearer(user["access_token"])}
    assert (await api.get("/admin/audit/42", headers=as_user)).status_code == 403
    as_admin = {**html, **bearer(admin["access_token"])}
    fallback = await api.get("/admin/audit/42", headers=as_admin)
    assert fallback.status_code == 200 and fallback.text == page.text
    assert fallback.headers["cache-control"] == "private, no-cache"
    # The bundle through cookie mode too (how a browser loads it).
    login = {"email": admin["user"]["email"], "password": PASSWORD, "use_cookies": True}
    logged_in = await api.post("/v1/auth/login", json=login, headers={"Origin": "http://gateway"})
    cookie = logged_in.headers.get_list("set-cookie")[0]
    in_browser = await api.get("/admin/", headers={"Cookie": cookie.split(";", 1)[0]})
    assert in_browser.status_code == 200 and "Adaptive Chat admin" in in_browser.text


async def test_security_events_are_audited_and_role_changes_take_effect_at_once(
    api, settings
) -> None:
    admin, user = await _admin(api, settings), await sign_up(api)
    email, user_id = user["user"]["email"], user["user"]["id"]
    await api.post("/v1/auth/login", json={"email": email, "password": "wrong password!"})
    await api.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    headers = bearer(admin["access_token"])
    changed = await api.patch(f"/v1/admin/users/{user_id}", headers=headers, json={"role": "admin"})
    assert changed.status_code == 200 and changed.json()["data"]["role"] == "admin"
    # Tokens issued before carry the old role: the user's sessions end with the change.
    assert (await api.get("/v1/me", headers=bearer(user["access_token"]))).status_code == 401
    own = await api.patch(
        f"/v1/admin/users/{admin['user']['id']}", headers=headers, json={"role": "user"}
    )
    assert own.status_code == 409
    missing = "00000000-0000-4000-8000-000000000000"
    assert (
        await api.patch(f"/v1/admin/users/{missing}", headers=headers, json={"is_active": False})
    ).status_code == 404
    audit = await api.get("/v1/admin/audit", headers=headers, params={"user_id": user_id})
    events = [e["event"] for e in audit.json()["data"]["items"]]
    assert {"signup", "login", "role_changed"} <= set(events)
    changed_event = next(e for e in audit.json()["data"]["items"] if e["event"] == "role_changed")
    assert changed_event["actor_user_id"] == admin["user"]["id"]
    assert changed_event["details"] == {"from": "user", "to": "admin"}
    failed = await api.get("/v1/admin/audit", headers=headers, params={"event": "login_failed"})
    assert any(e["details"].get("email") == email for e in failed.json()["data"]["items"])
    for item in audit.json()["data"]["items"]:
        assert PASSWORD not in str(item) and "wrong password!" not in str(item)
    listed = await api.get("/v1/admin/users", headers=headers, params={"email_contains": email})
    assert [u["id"] for u in listed.json()["data"]["items"]] == [user_id]


async def test_the_audit_log_is_append_only_and_tampering_breaks_the_chain(api, settings) -> None:
    admin = await _admin(api, settings)
    headers = bearer(admin["access_token"])
    verified = (await api.get("/v1/admin/audit/verify", headers=headers)).json()["data"]
    assert verified["ok"] and verified["checked"] > 0
    async with await psycopg.AsyncConnection.connect(settings.postgres_dsn, autocommit=True) as c:
        for statement in ("UPDATE audit_event SET event = 'x'", "DELETE FROM audit_event"):
            with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                await c.execute(statement)
        # Someone with the power to switch the guard off edits one event: the chain shows where.
        row = await (
            await c.execute("SELECT id, details FROM audit_event ORDER BY id DESC LIMIT 1 OFFSET 2")
        ).fetchone()
        target, original = row
        await c.execute("ALTER TABLE audit_event DISABLE TRIGGER audit_event_no_update")
        try:
            await c.execute(
                "UPDATE audit_event SET details = %s WHERE id = %s",
                (Jsonb({**original, "forged": True}), target),
            )
            broken = (await api.get("/v1/admin/audit/verify", headers=headers)).json()["data"]
            assert not broken["ok"] and broken["first_broken_id"] == target
        finally:
            await c.execute(
                "UPDATE audit_event SET details = %s WHERE id = %s", (Jsonb(original), target)
            )
            await c.execute("ALTER TABLE audit_event ENABLE TRIGGER audit_event_no_update")
    assert (await api.get("/v1/admin/audit/verify", headers=headers)).json()["data"]["ok"]


async def test_the_user_list_tells_active_disabled_and_deleting_apart(api, settings) -> None:
    """An account whose deletion was asked for is disabled too, but it cannot be enabled again:
    admins see it as `deleting` (with the time it was asked for), not as `disabled`. The list
    says whose MFA is on."""
    headers = bearer((await _admin(api, settings))["access_token"])
    active, disabled, leaving = [await sign_up(api) for _ in range(3)]
    own = bearer(active["access_token"])
    setup = (await api.post("/v1/auth/mfa/enable", headers=own)).json()["data"]
    confirmed = await api.post("/v1/auth/mfa/verify", headers=own,
                               json={"code": pyotp.TOTP(setup["secret"]).now()})  # fmt: skip
    assert confirmed.status_code == 200, confirmed.text
    turned_off = await api.patch(f"/v1/admin/users/{disabled['user']['id']}", headers=headers,
                                 json={"is_active": False})  # fmt: skip
    assert turned_off.json()["data"]["status"] == "disabled"
    gone = await api.request("DELETE", "/v1/me", headers=bearer(leaving["access_token"]),
                             json={"password": PASSWORD})  # fmt: skip
    assert gone.status_code == 202, gone.text

    async def listed(signed: dict) -> dict:
        page = await api.get("/v1/admin/users", headers=headers,
                             params={"email_contains": signed["user"]["email"]})  # fmt: skip
        [user] = page.json()["data"]["items"]
        return user

    rows = [await listed(s) for s in (active, disabled, leaving)]
    states = [(u["status"], u["is_active"], u["deletion_requested_at"] is not None,
               u["mfa_enabled"]) for u in rows]  # fmt: skip
    assert states == [("active", True, False, True), ("disabled", False, False, False),
                      ("deleting", False, True, False)]  # fmt: skip
    # PATCH answers the same shape: a role change leaves the account deleting.
    kept = await api.patch(f"/v1/admin/users/{leaving['user']['id']}", headers=headers,
                           json={"role": "user"})  # fmt: skip
    assert kept.status_code == 200 and kept.json()["data"]["status"] == "deleting"
