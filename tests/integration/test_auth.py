"""Accounts, tokens and sessions through the gateway, on the real Postgres and Redis."""

from __future__ import annotations

import base64
import json
import logging
import time

import pytest
from argon2 import PasswordHasher

from shared.platform.auth.tokens import Principal, issue_access
from shared.platform.db.pool import create_pool
from tests.integration.authkit import PASSWORD, bearer, new_email, sign_up

pytestmark = pytest.mark.integration


async def test_sign_up_log_in_and_me(api) -> None:
    email = new_email()
    signed = await sign_up(api, email.upper())  # emails are case-insensitive
    assert signed["user"]["email"] == email and signed["user"]["role"] == "user"
    me = await api.get("/v1/me", headers=bearer(signed["access_token"]))
    assert me.json()["data"]["id"] == signed["user"]["id"]
    logged = await api.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert logged.status_code == 200 and logged.json()["data"]["expires_in"] == 900
    wrong = await api.post("/v1/auth/login", json={"email": email, "password": "x" * 12})
    unknown = await api.post("/v1/auth/login", json={"email": new_email(), "password": PASSWORD})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["error"]["message"] == unknown.json()["error"]["message"]
    again = await api.post("/v1/auth/signup", json={"email": email, "password": PASSWORD})
    assert again.status_code == 409


@pytest.mark.parametrize(
    ("password", "reason"),
    [("short", "characters"), ("1234567890", "guess"), ("aaaaaaaaaaaa", "guess")],
)
async def test_weak_passwords_are_refused_with_the_reason(api, password, reason) -> None:
    response = await api.post("/v1/auth/signup", json={"email": new_email(), "password": password})
    assert response.status_code == 400
    assert reason in json.dumps(response.json()["error"]["details"])


async def test_user_id_headers_are_ignored_and_bad_tokens_refused(api, settings) -> None:
    signed = await sign_up(api)
    user, session = signed["user"]["id"], _claims(signed["access_token"])["sid"]
    assert (await api.get("/v1/me", headers={"X-User-Id": user})).status_code == 401
    expired = issue_access(settings, Principal(user, "user", session), now=time.time() - 3600)
    header, payload, signature = signed["access_token"].split(".")
    forged = dict(_claims(signed["access_token"]), role="admin")
    tampered = f"{header}.{_b64(forged)}.{signature}"
    none_alg = f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': 'k1'})}.{payload}."
    other_kid = f"{_b64({'alg': 'HS256', 'typ': 'JWT', 'kid': 'k9'})}.{payload}.{signature}"
    for token in (expired, tampered, none_alg, other_kid, "not-a-jwt", ""):
        response = await api.get("/v1/me", headers=bearer(token))
        assert response.status_code == 401, token
        assert response.json()["error"]["code"] == "unauthorized"


async def test_refresh_rotates_and_reuse_revokes_the_family(api) -> None:
    signed = await sign_up(api)
    first = signed["refresh_token"]
    rotated = await api.post("/v1/auth/refresh", json={"refresh_token": first})
    assert rotated.status_code == 200
    second = rotated.json()["data"]
    assert second["refresh_token"] != first
    assert (await api.get("/v1/me", headers=bearer(second["access_token"]))).status_code == 200
    reused = await api.post("/v1/auth/refresh", json={"refresh_token": first})
    assert reused.status_code == 401 and "reused" in reused.json()["error"]["message"]
    # The whole family is gone: the newest refresh token and the session's access tokens too.
    late = await api.post("/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert late.status_code == 401
    assert (await api.get("/v1/me", headers=bearer(second["access_token"]))).status_code == 401
    other = await sign_up(api)  # another session of another user is untouched
    assert (await api.get("/v1/me", headers=bearer(other["access_token"]))).status_code == 200


async def test_logout_ends_the_session(api) -> None:
    signed = await sign_up(api)
    headers = bearer(signed["access_token"])
    assert (await api.post("/v1/auth/logout", headers=headers)).status_code == 200
    assert (await api.get("/v1/me", headers=headers)).status_code == 401
    refresh = await api.post("/v1/auth/refresh", json={"refresh_token": signed["refresh_token"]})
    assert refresh.status_code == 401


async def test_a_hash_with_old_parameters_is_upgraded_at_login(api, settings) -> None:
    signed = await sign_up(api)
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    async with create_pool(settings) as pool, pool.connection() as conn:
        await conn.execute(
            "UPDATE user_auth_credential SET password_hash = %s WHERE user_id = %s",
            (weak, signed["user"]["id"]),
        )
    login = {"email": signed["user"]["email"], "password": PASSWORD}
    assert (await api.post("/v1/auth/login", json=login)).status_code == 200
    async with create_pool(settings) as pool, pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT password_hash FROM user_auth_credential WHERE user_id = %s",
            (signed["user"]["id"],),
        )
        (stored,) = await cursor.fetchone()
    assert stored != weak and not PasswordHasher().check_needs_rehash(stored)


async def test_passwords_and_tokens_never_reach_the_logs(api, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    signed = await sign_up(api)
    await api.post("/v1/auth/login", json={"email": signed["user"]["email"], "password": PASSWORD})
    await api.post("/v1/auth/refresh", json={"refresh_token": signed["refresh_token"]})
    await api.post("/v1/auth/login", json={"email": signed["user"]["email"], "password": "x"})
    logged = caplog.text
    assert caplog.records  # the gateway did log these requests
    for secret in (PASSWORD, signed["access_token"], signed["refresh_token"]):
        assert secret not in logged


def _claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
