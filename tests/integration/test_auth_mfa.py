"""TOTP MFA with real codes from pyotp, recovery codes, the MFA login ticket and the MFA lock
(real Postgres+Redis), at SPEC §18's paths (`mfa/enable`, `mfa/verify`)."""

from __future__ import annotations

import logging
import time
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest

from tests.integration.authkit import PASSWORD, bearer, sign_up

pytestmark = pytest.mark.integration


async def _enrol(api, signed: dict) -> tuple[pyotp.TOTP, list[str]]:
    headers = bearer(signed["access_token"])
    setup = (await api.post("/v1/auth/mfa/enable", headers=headers)).json()["data"]
    uri = urlsplit(setup["otpauth_uri"])
    query = parse_qs(uri.query)
    # What authenticator apps read: TOTP, this secret, and the defaults they assume (SHA-1,
    # 6 digits, 30 s): an algorithm other than the one used must never be implied.
    assert uri.scheme == "otpauth" and uri.netloc == "totp"
    assert query["secret"] == [setup["secret"]] and query.get("algorithm", ["SHA1"]) == ["SHA1"]
    assert signed["user"]["email"] in uri.path.replace("%40", "@")
    assert setup["qr_svg"].lstrip().startswith("<svg")
    assert setup["qr_png"].startswith("data:image/png;base64,")
    totp = pyotp.TOTP(setup["secret"])
    wrong = await api.post("/v1/auth/mfa/verify", headers=headers, json={"code": "000000"})
    assert wrong.status_code == 400
    anonymous = await api.post("/v1/auth/mfa/verify", json={"code": totp.now()})
    assert anonymous.status_code == 401  # no ticket and no access token
    confirmed = await api.post("/v1/auth/mfa/verify", headers=headers, json={"code": totp.now()})
    assert confirmed.status_code == 200, confirmed.text
    codes = confirmed.json()["data"]["recovery_codes"]
    assert len(codes) == len(set(codes)) == 10
    return totp, codes


def _next_code(totp: pyotp.TOTP) -> str:
    """The code of the next time step: the current one was spent by the previous use."""
    return totp.at(time.time() + totp.interval)


async def test_totp_login_refresh_and_recovery_codes(api, settings, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    signed = await sign_up(api)
    email = signed["user"]["email"]
    totp, codes = await _enrol(api, signed)
    login = {"email": email, "password": PASSWORD}
    missing = await api.post("/v1/auth/login", json=login)
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "mfa_required"
    assert missing.json()["error"]["details"]["mfa_ticket"]
    bad = await api.post("/v1/auth/login", json={**login, "mfa_code": "123456"})
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "unauthorized"
    ok = await api.post("/v1/auth/login", json={**login, "mfa_code": _next_code(totp)})
    assert ok.status_code == 200, ok.text
    session = ok.json()["data"]
    me = await api.get("/v1/me", headers=bearer(session["access_token"]))
    assert me.json()["data"]["mfa_enabled"] is True
    # The same code again (a replay within its window) is refused.
    replay = await api.post("/v1/auth/login", json={**login, "mfa_code": _next_code(totp)})
    assert replay.status_code == 401
    # Refresh needs no code: the session was verified at login.
    refreshed = await api.post("/v1/auth/refresh", json={"refresh_token": session["refresh_token"]})
    assert refreshed.status_code == 200
    # A recovery code works once, in any case and with spaces.
    recovery = {**login, "mfa_code": " " + codes[0].upper() + " "}
    assert (await api.post("/v1/auth/login", json=recovery)).status_code == 200
    assert (await api.post("/v1/auth/login", json=recovery)).status_code == 401
    assert caplog.records  # the requests were logged, without the secrets
    for secret in (totp.secret, *codes, PASSWORD):
        assert secret not in caplog.text


async def test_five_wrong_codes_lock_mfa_for_five_minutes(api) -> None:
    signed = await sign_up(api)
    totp, _ = await _enrol(api, signed)
    login = {"email": signed["user"]["email"], "password": PASSWORD}
    for _ in range(5):
        wrong = await api.post("/v1/auth/login", json={**login, "mfa_code": "999999"})
        assert wrong.status_code == 401
    locked = await api.post("/v1/auth/login", json={**login, "mfa_code": _next_code(totp)})
    assert locked.status_code == 429 and locked.json()["error"]["code"] == "rate_limited"
    assert 240 < int(locked.headers["Retry-After"]) <= 300


async def test_disabling_mfa_needs_a_code(api) -> None:
    signed = await sign_up(api)
    headers = bearer(signed["access_token"])
    totp, _ = await _enrol(api, signed)
    refused = await api.post("/v1/auth/mfa/disable", headers=headers, json={"code": "111111"})
    assert refused.status_code == 400
    done = await api.post("/v1/auth/mfa/disable", headers=headers, json={"code": _next_code(totp)})
    assert done.status_code == 200
    login = {"email": signed["user"]["email"], "password": PASSWORD}
    assert (await api.post("/v1/auth/login", json=login)).status_code == 200


async def _ticket(api, login: dict, headers: dict | None = None) -> str:
    missing = await api.post("/v1/auth/login", json=login, headers=headers or {})
    assert missing.status_code == 401, missing.text
    error = missing.json()["error"]
    assert error["code"] == "mfa_required" and error["details"]["expires_in"] == 300
    assert "recovery_code" in error["details"]["methods"]
    return str(error["details"]["mfa_ticket"])


async def test_a_login_without_a_code_finishes_with_its_ticket(api) -> None:
    signed = await sign_up(api)
    totp, codes = await _enrol(api, signed)
    login = {"email": signed["user"]["email"], "password": PASSWORD}
    ticket = await _ticket(api, login)
    # A wrong code is a 401 and leaves the ticket usable.
    wrong = await api.post("/v1/auth/mfa/verify", json={"mfa_ticket": ticket, "code": "123456"})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "unauthorized"
    # The ticket is bound to the client that proved the password.
    elsewhere = await api.post("/v1/auth/mfa/verify", headers={"User-Agent": "another client"},
                               json={"mfa_ticket": ticket, "code": _next_code(totp)})  # fmt: skip
    assert elsewhere.status_code == 401
    done = await api.post(
        "/v1/auth/mfa/verify", json={"mfa_ticket": ticket, "code": _next_code(totp)}
    )
    assert done.status_code == 200, done.text
    tokens = done.json()["data"]
    assert tokens["mode"] == "bearer" and tokens["user"]["id"] == signed["user"]["id"]
    me = await api.get("/v1/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200 and me.json()["data"]["mfa_enabled"] is True
    # Spent on success.
    again = await api.post("/v1/auth/mfa/verify", json={"mfa_ticket": ticket, "code": codes[0]})
    assert again.status_code == 401
    # A recovery code is accepted where a TOTP code is, once.
    ticket = await _ticket(api, login)
    recovered = await api.post("/v1/auth/mfa/verify", json={"mfa_ticket": ticket, "code": codes[0]})
    assert recovered.status_code == 200, recovered.text
    ticket = await _ticket(api, login)
    reused = await api.post("/v1/auth/mfa/verify", json={"mfa_ticket": ticket, "code": codes[0]})
    assert reused.status_code == 401


async def test_a_ticket_keeps_the_cookie_mode_of_its_login(api) -> None:
    signed = await sign_up(api)
    totp, _ = await _enrol(api, signed)
    own = {"Origin": "http://gateway"}
    login = {"email": signed["user"]["email"], "password": PASSWORD, "use_cookies": True}
    ticket = await _ticket(api, login, own)
    body = {"mfa_ticket": ticket, "code": _next_code(totp)}
    cross_site = await api.post("/v1/auth/mfa/verify", json=body,
                                headers={"Origin": "https://evil.example"})  # fmt: skip
    assert cross_site.status_code == 403  # login CSRF, as at login
    done = await api.post("/v1/auth/mfa/verify", json=body, headers=own)
    assert done.status_code == 200, done.text
    data = done.json()["data"]
    assert data["mode"] == "cookie" and data["access_token"] is None
    cookies = {c.split("=", 1)[0] for c in done.headers.get_list("set-cookie")}
    assert {"acs_access", "acs_refresh"} <= cookies


async def test_five_wrong_codes_on_a_ticket_lock_mfa(api) -> None:
    signed = await sign_up(api)
    totp, _ = await _enrol(api, signed)
    ticket = await _ticket(api, {"email": signed["user"]["email"], "password": PASSWORD})
    for _ in range(5):
        wrong = await api.post("/v1/auth/mfa/verify", json={"mfa_ticket": ticket, "code": "999999"})
        assert wrong.status_code == 401
    locked = await api.post(
        "/v1/auth/mfa/verify", json={"mfa_ticket": ticket, "code": _next_code(totp)}
    )
    assert locked.status_code == 429 and locked.json()["error"]["code"] == "rate_limited"
    assert 240 < int(locked.headers["Retry-After"]) <= 300
