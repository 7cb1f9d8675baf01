"""Accounts, tokens and sessions through the gateway, on the real Postgres and Redis."""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid

import httpx
import pytest
from argon2 import PasswordHasher

from infra.gateway.app import public_app
from shared.auth.tokens import Principal, issue_access
from shared.db.pool import create_pool
from shared.runtime.template import load_template
from tests.integration.conftest import random_ip

pytestmark = pytest.mark.integration
PASSWORD = "correct horse battery staple"


@pytest.fixture
async def client(migrated, settings):
    template = load_template(settings.template_path, settings)
    transport = httpx.ASGITransport(
        app=public_app(settings, template=template), client=(random_ip(), 50_000)
    )
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        yield client


def _email() -> str:
    return f"user-{uuid.uuid4().hex[:10]}@example.test"


async def _sign_up(client, email: str | None = None) -> dict:
    response = await client.post(
        "/v1/auth/signup", json={"email": email or _email(), "password": PASSWORD}
    )
    assert response.status_code == 201, response.text
    return response.json()["data"]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_sign_up_log_in_and_me(client) -> None:
    email = _email()
    signed = await _sign_up(client, email.upper())  # emails are case-insensitive
    assert signed["user"]["email"] == email and signed["user"]["role"] == "user"
    me = await client.get("/v1/me", headers=_bearer(signed["access_token"]))
    assert me.json()["data"]["id"] == signed["user"]["id"]
    logged = await client.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert logged.status_code == 200 and logged.json()["data"]["expires_in"] == 900
    wrong = await client.post("/v1/auth/login", json={"email": email, "password": "x" * 12})
    unknown = await client.post("/v1/auth/login", json={"email": _email(), "password": PASSWORD})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["error"]["message"] == unknown.json()["error"]["message"]
    again = await client.post("/v1/auth/signup", json={"email": email, "password": PASSWORD})
    assert again.status_code == 409


@pytest.mark.parametrize(
    ("password", "reason"),
    [("short", "characters"), ("1234567890", "guess"), ("aaaaaaaaaaaa", "guess")],
)
async def test_weak_passwords_are_refused_with_the_reason(client, password, reason) -> None:
    response = await client.post("/v1/auth/signup", json={"email": _email(), "password": password})
    assert response.status_code == 400
    assert reason in json.dumps(response.json()["error"]["details"])


async def test_user_id_headers_are_ignored_and_bad_tokens_refused(client, settings) -> None:
    signed = await _sign_up(client)
    user, session = signed["user"]["id"], _claims(signed["access_token"])["sid"]
    assert (await client.get("/v1/me", headers={"X-User-Id": user})).status_code == 401
    expired = issue_access(settings, Principal(user, "user", session), now=time.time() - 3600)
    header, payload, signature = signed["access_token"].split(".")
    forged = dict(_claims(signed["access_token"]), role="admin")
    tampered = f"{header}.{_b64(forged)}.{signature}"
    none_alg = f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': 'k1'})}.{payload}."
    other_kid = f"{_b64({'alg': 'HS256', 'typ': 'JWT', 'kid': 'k9'})}.{payload}.{signature}"
    for token in (expired, tampered, none_alg, other_kid, "not-a-jwt", ""):
        response = await client.get("/v1/me", headers=_bearer(token))
        assert response.status_code == 401, token
        assert response.json()["error"]["code"] == "unauthorized"


async def test_refresh_rotates_and_reuse_revokes_the_family(client) -> None:
    signed = await _sign_up(client)
    first = signed["refresh_token"]
    rotated = await client.post("/v1/auth/refresh", json={"refresh_token": first})
    assert rotated.status_code == 200
    second = rotated.json()["data"]
    assert second["refresh_token"] != first
    assert (await client.get("/v1/me", headers=_bearer(second["access_token"]))).status_code == 200
    reused = await client.post("/v1/auth/refresh", json={"refresh_token": first})
    assert reused.status_code == 401 and "reused" in reused.json()["error"]["message"]
    # The whole family is gone: the newest refresh token and the session's access tokens too.
    late = await client.post("/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert late.status_code == 401
    assert (await client.get("/v1/me", headers=_bearer(second["access_token"]))).status_code == 401
    other = await _sign_up(client)  # another session of another user is untouched
    assert (await client.get("/v1/me", headers=_bearer(other["access_token"]))).status_code == 200


async def test_logout_ends_the_session(client) -> None:
    signed = await _sign_up(client)
    headers = _bearer(signed["access_token"])
    assert (await client.post("/v1/auth/logout", headers=headers)).status_code == 200
    assert (await client.get("/v1/me", headers=headers)).status_code == 401
    refresh = await client.post("/v1/auth/refresh", json={"refresh_token": signed["refresh_token"]})
    assert refresh.status_code == 401


async def test_a_hash_with_old_parameters_is_upgraded_at_login(client, settings) -> None:
    signed = await _sign_up(client)
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    async with create_pool(settings) as pool, pool.connection() as conn:
        await conn.execute(
            "UPDATE user_auth_credential SET password_hash = %s WHERE user_id = %s",
            (weak, signed["user"]["id"]),
        )
    login = {"email": signed["user"]["email"], "password": PASSWORD}
    assert (await client.post("/v1/auth/login", json=login)).status_code == 200
    async with create_pool(settings) as pool, pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT password_hash FROM user_auth_credential WHERE user_id = %s",
            (signed["user"]["id"],),
        )
        (stored,) = await cursor.fetchone()
    assert stored != weak and not PasswordHasher().check_needs_rehash(stored)


async def test_passwords_and_tokens_never_reach_the_logs(client, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    signed = await _sign_up(client)
    await client.post(
        "/v1/auth/login", json={"email": signed["user"]["email"], "password": PASSWORD}
    )
    await client.post("/v1/auth/refresh", json={"refresh_token": signed["refresh_token"]})
    await client.post("/v1/auth/login", json={"email": signed["user"]["email"], "password": "x"})
    logged = caplog.text
    assert caplog.records  # the gateway did log these requests
    for secret in (PASSWORD, signed["access_token"], signed["refresh_token"]):
        assert secret not in logged


def _claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
