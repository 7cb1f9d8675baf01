"""Lockouts, rate limits, concurrency caps, cookie mode and CSRF, sessions and single-session
mode, on the real Redis and Postgres."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.asyncio as aioredis

from shared.domain.accounts.lockout import Lockout
from shared.platform.auth.sessions import Sessions
from shared.platform.db.pool import create_pool
from shared.platform.errors import Conflict, RateLimited
from shared.platform.limits.caps import ConcurrencyCaps
from shared.platform.limits.rate import RateLimiter, RateRule
from tests.integration.authkit import PASSWORD, bearer, new_email, sign_up

pytestmark = pytest.mark.integration


@pytest.fixture
async def redis_client(local_stack, settings):
    client = aioredis.Redis.from_url(settings.redis_dsn)
    yield client
    await client.aclose()


# --- lockouts and budgets ---------------------------------------------------------------------
async def test_five_failed_logins_lock_the_account_even_for_the_right_password(api) -> None:
    signed = await sign_up(api)
    email = signed["user"]["email"]
    for _ in range(5):
        wrong = await api.post("/v1/auth/login", json={"email": email, "password": "x" * 12})
        assert wrong.status_code == 401
    locked = await api.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert locked.status_code == 429 and locked.json()["error"]["code"] == "rate_limited"
    assert 800 < int(locked.headers["Retry-After"]) <= 900
    other = await sign_up(api)  # another account is not affected
    login = {"email": other["user"]["email"], "password": PASSWORD}
    assert (await api.post("/v1/auth/login", json=login)).status_code == 200


async def test_a_lockout_expires(redis_client) -> None:
    lockout = Lockout(redis_client, f"t{uuid.uuid4().hex[:6]}", max_failures=3, window_s=1)
    for _ in range(3):
        await lockout.fail("someone@example.test")
    with pytest.raises(RateLimited):
        await lockout.check("SOMEONE@example.test")  # subjects are case-insensitive
    await asyncio.sleep(1.2)
    await lockout.check("someone@example.test")


async def test_the_per_ip_login_budget_answers_429_with_retry_after(api, settings) -> None:
    statuses = []
    # The bucket refills one token per 2 s while argon2 runs: room for a slow machine.
    for _ in range(settings.auth_login_ip_per_min * 2):
        response = await api.post("/v1/auth/login", json={"email": new_email(), "password": "x"})
        statuses.append(response.status_code)
        if response.status_code == 429:
            break
    assert statuses[-1] == 429, statuses
    assert set(statuses[:-1]) == {401}
    assert len(statuses) > settings.auth_login_ip_per_min  # the whole burst was allowed first
    assert 1 <= int(response.headers["Retry-After"]) <= 2
    assert response.json()["error"]["details"] == {"limit": "login_ip"}


async def test_a_token_bucket_refills(redis_client) -> None:
    limiter, rule = RateLimiter(redis_client), RateRule(f"t{uuid.uuid4().hex[:6]}", 3, 1.5)
    assert [await limiter.take(rule, "u1") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = await limiter.take(rule, "u1")
    assert 0 < wait <= 0.5
    assert await limiter.take(rule, "u2") == 0.0  # buckets are per subject
    await asyncio.sleep(wait + 0.05)
    assert await limiter.take(rule, "u1") == 0.0


async def test_concurrency_caps_answer_busy_and_free_on_exit(redis_client) -> None:
    caps = ConcurrencyCaps(redis_client, {"decodes": 2}, lease_s=60)
    user = uuid.uuid4().hex
    async with caps.hold("decodes", user), caps.hold("decodes", user):
        with pytest.raises(Conflict) as busy:
            async with caps.hold("decodes", user):
                pass
        assert busy.value.details["reason"] == "busy" and busy.value.status == 409
    assert await caps.running("decodes", user) == 0
    async with caps.hold("decodes", user):
        assert await caps.running("decodes", user) == 1


async def test_a_dead_holders_lease_frees_itself(redis_client) -> None:
    caps = ConcurrencyCaps(redis_client, {"workflows": 1}, lease_s=0.3)
    user = uuid.uuid4().hex
    held = caps.hold("workflows", user)
    await held.__aenter__()  # a holder that never exits (a killed function)
    with pytest.raises(Conflict):
        async with caps.hold("workflows", user):
            pass
    await asyncio.sleep(0.4)
    async with caps.hold("workflows", user):
        pass


# --- cookie mode and CSRF ---------------------------------------------------------------------
def _cookies(response) -> dict[str, str]:
    jar = {}
    for header in response.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        jar[name] = {"value": rest.split(";", 1)[0], "attributes": rest.lower()}
    return jar


async def test_cookie_mode_sets_httponly_cookies_and_refuses_cross_site_writes(api) -> None:
    signed = await sign_up(api)
    login = {"email": signed["user"]["email"], "password": PASSWORD, "use_cookies": True}
    # Asking for cookies from another site (login CSRF) is refused; from the app's own, allowed.
    cross = await api.post("/v1/auth/login", json=login, headers={"Origin": "https://evil.example"})
    assert cross.status_code == 403 and not cross.headers.get_list("set-cookie")
    response = await api.post("/v1/auth/login", json=login, headers={"Origin": "http://gateway"})
    body = response.json()["data"]
    assert (
        body["mode"] == "cookie" and body["access_token"] is None and body["refresh_token"] is None
    )
    jar = _cookies(response)
    access, refresh = jar["acs_access"], jar["acs_refresh"]
    for cookie in (access, refresh):
        assert "httponly" in cookie["attributes"] and "secure" in cookie["attributes"]
    assert "samesite=lax" in access["attributes"] and "path=/;" in access["attributes"] + ";"
    assert "samesite=strict" in refresh["attributes"] and "path=/v1/auth" in refresh["attributes"]
    cookie = {"Cookie": f"acs_access={access['value']}"}
    me = await api.get("/v1/me", headers=cookie)
    assert me.status_code == 200 and me.json()["data"]["id"] == signed["user"]["id"]
    # A state change with the cookie but from another site (or saying nothing) is refused.
    for origin in ({"Origin": "https://evil.example"}, {}, {"Referer": "https://evil.example/x"}):
        refused = await api.post("/v1/auth/logout", headers={**cookie, **origin})
        assert refused.status_code == 403, origin
    assert (await api.get("/v1/me", headers=cookie)).status_code == 200  # still signed in
    # Refresh by cookie, from the app's own origin: new cookies, body still without tokens.
    rotated = await api.post(
        "/v1/auth/refresh",
        headers={"Cookie": f"acs_refresh={refresh['value']}", "Origin": "http://gateway"},
    )
    assert rotated.status_code == 200 and rotated.json()["data"]["access_token"] is None
    new_access = _cookies(rotated)["acs_access"]["value"]
    assert new_access != access["value"]
    cross = await api.post(
        "/v1/auth/refresh",
        headers={"Cookie": f"acs_refresh={refresh['value']}", "Origin": "https://evil.example"},
    )
    assert cross.status_code == 403
    out = await api.post(
        "/v1/auth/logout",
        headers={"Cookie": f"acs_access={new_access}", "Origin": "http://gateway"},
    )
    assert out.status_code == 200
    assert all("max-age=0" in c["attributes"] for c in _cookies(out).values())


# --- sessions -------------------------------------------------------------------------------
async def test_users_list_and_end_their_own_sessions_only(api) -> None:
    a = await sign_up(api)
    login = {"email": a["user"]["email"], "password": PASSWORD}
    phone = await api.post("/v1/auth/login", json=login, headers={"User-Agent": "phone/1.0"})
    phone_token = phone.json()["data"]["access_token"]
    listed = (await api.get("/v1/auth/sessions", headers=bearer(a["access_token"]))).json()
    items = listed["data"]["items"]
    assert len(items) == 2 and sum(i["current"] for i in items) == 1
    phone_session = next(i for i in items if i["user_agent"] == "phone/1.0")
    b = await sign_up(api)
    path = f"/v1/auth/sessions/{phone_session['id']}"
    assert (await api.delete(path, headers=bearer(b["access_token"]))).status_code == 404
    assert (await api.get("/v1/me", headers=bearer(phone_token))).status_code == 200
    assert (await api.delete(path, headers=bearer(a["access_token"]))).status_code == 200
    assert (await api.get("/v1/me", headers=bearer(phone_token))).status_code == 401
    bad = await api.delete("/v1/auth/sessions/not-a-uuid", headers=bearer(a["access_token"]))
    assert bad.status_code == 404


async def test_single_session_mode_ends_the_other_sessions(settings, redis_client) -> None:
    async with create_pool(settings) as pool:
        async with pool.connection() as conn:
            row = await (
                await conn.execute(
                    "INSERT INTO app_user (email) VALUES (%s) RETURNING id::text", (new_email(),)
                )
            ).fetchone()
        single = Sessions(
            settings.model_copy(update={"auth_single_session": True}), pool, redis_client
        )
        first = await single.open(row[0], "user", user_agent="laptop", ip="10.0.0.1")
        second = await single.open(row[0], "user", user_agent="phone", ip="10.0.0.2")
        assert not await single.is_active(first.principal)
        assert await single.is_active(second.principal)
        assert [s.user_agent for s in await single.list_for(row[0])] == ["phone"]
