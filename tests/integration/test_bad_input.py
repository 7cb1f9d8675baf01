"""Regressions for bad input found by schema fuzzing and by hand: every answer is in the
envelope, a client's mistake is a 4xx with a clear message, never a 500 (real stack)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.integration.authkit import PASSWORD, bearer, new_email, sign_up
from tests.integration.chatkit import user
from tests.integration.test_auth_mfa import _enrol
from tests.integration.test_files import file_rows, objects_under

pytestmark = pytest.mark.integration
JSON = {"Content-Type": "application/json"}


def assert_error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["status"] == "error" and body["error"]["code"] == code, body
    assert body["request_id"] == response.headers["x-request-id"]
    return body["error"]


async def test_a_body_that_is_not_utf8_is_a_400(api) -> None:
    sent = await api.post("/v1/auth/login", content=b"\xff", headers=JSON)
    assert "UTF-8" in assert_error(sent, 400, "validation_error")["message"]
    # UTF-16 is valid JSON to json.loads(bytes), not to us: the API speaks UTF-8.
    utf16 = '{"email": "a@example.test", "password": "x"}'.encode("utf-16")
    assert_error(await api.post("/v1/auth/login", content=utf16, headers=JSON), 400,
                 "validation_error")  # fmt: skip


async def test_deeply_nested_json_is_a_400(api) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    error = assert_error(await api.post("/v1/auth/login", content=deep, headers=JSON), 400,
                         "validation_error")  # fmt: skip
    assert error["details"] == {"max_depth": 64}
    # Brackets inside strings are text, not nesting.
    text = {"email": new_email(), "password": "[[[{{{" * 12}
    assert (await api.post("/v1/auth/login", json=text)).status_code == 401


async def test_nul_in_any_string_is_a_400_naming_where(api) -> None:
    _, headers = await user(api)
    titled = await api.post("/v1/conversations", headers=headers, json={"title": "a\u0000b"})
    error = assert_error(titled, 400, "validation_error")
    assert error["details"][0]["loc"] == ["title"]
    login = await api.post("/v1/auth/login", json={"email": "a\u0000@x.test", "password": "p"})
    assert assert_error(login, 400, "validation_error")["details"][0]["loc"] == ["email"]
    # A lone surrogate (valid JSON escape, no character of UTF-8), and in a key.
    lone = b'{"title": "x", "\\ud800": "\\udfff"}'
    error = assert_error(await api.post("/v1/conversations", headers={**headers, **JSON},
                                        content=lone), 400, "validation_error")  # fmt: skip
    assert [d["loc"] for d in error["details"]] == [["\\ud800"], ["\\ud800"]]
    query = await api.get("/v1/conversations", headers=headers, params={"cursor": "a\x00"})
    assert_error(query, 400, "validation_error")
    path = await api.get("/v1/contexts/a%00b", headers=headers)
    assert_error(path, 404, "not_found")


async def test_a_body_that_is_not_json_is_a_415(api) -> None:
    body = '{"email": "a@example.test", "password": "x"}'
    as_text = await api.post("/v1/auth/login", content=body, headers={"Content-Type": "text/plain"})
    assert_error(as_text, 415, "unsupported_media_type")
    bare = await api.post("/v1/auth/login", content=body)  # no content type at all
    assert_error(bare, 415, "unsupported_media_type")
    latin = await api.post(
        "/v1/auth/login",
        content=body,
        headers={"Content-Type": "application/json; charset=latin-1"},
    )
    assert_error(latin, 415, "unsupported_media_type")
    # application/*+json is JSON; an empty body needs no content type.
    typed = await api.post("/v1/auth/login", content=body,
                           headers={"Content-Type": "application/vnd.api+json"})  # fmt: skip
    assert typed.status_code == 401
    signed = await sign_up(api)
    empty = await api.post("/v1/auth/logout", headers=bearer(signed["access_token"]))
    assert empty.status_code == 200, empty.text


async def test_non_ascii_mfa_codes_are_refused_not_crashed(api) -> None:
    signed = await sign_up(api)
    await _enrol(api, signed)
    for code in ("١٢٣٤٥٦", "\uff43\uff4f\uff44\uff45-ü", "abcd-efgh-ijkl-mnop\u00e9"):
        login = await api.post(
            "/v1/auth/login",
            json={"email": signed["user"]["email"], "password": PASSWORD, "mfa_code": code},
        )
        assert login.status_code == 401, login.text
    disable = await api.post("/v1/auth/mfa/disable", headers=bearer(signed["access_token"]),
                             json={"code": "١٢٣٤٥٦"})  # fmt: skip
    # Five failures lock MFA (the three logins, then this one): 400 or 429, never 500.
    assert disable.status_code in (400, 429), disable.text


async def test_odd_paths_are_404s_in_the_envelope(api) -> None:
    _, headers = await user(api)
    for path in ("/v1/me%0A", "/v1/files/a%0Ab", "/v1/nope%0A", "/v1/conversations/%0D%0A",
                 "/v1/%00", "/nothing%0Ahere"):  # fmt: skip
        assert_error(await api.get(path, headers=headers), 404, "not_found")


async def test_unicode_and_rfc5987_file_names_are_accepted_and_sanitised(api) -> None:
    _, headers = await user(api)
    raw = await api.post("/v1/files/upload", headers=headers,
                         files={"file": ("文档.txt", b"hello", "text/plain")})  # fmt: skip
    assert raw.status_code == 201, raw.text
    assert raw.json()["data"]["file"]["name"] == "文档.txt"
    boundary = "b0undary"
    body = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="fallback.txt";'
        " filename*=UTF-8''..%2F..%2F%E7%AC%94%E8%AE%B0%20%C3%BC.md\r\n"
        "Content-Type: text/markdown\r\n\r\n# notes\r\n"
        f"--{boundary}--\r\n"
    ).encode()
    extended = await api.post(
        "/v1/files/upload", content=body,
        headers={**headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )  # fmt: skip
    assert extended.status_code == 201, extended.text
    assert extended.json()["data"]["file"]["name"] == "笔记 ü.md"  # no traversal, just the name
    bad = body.replace(b"UTF-8''", b"KOI8-R''")
    refused = await api.post(
        "/v1/files/upload", content=bad,
        headers={**headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )  # fmt: skip
    assert "RFC 5987" in assert_error(refused, 400, "validation_error")["message"]


async def test_a_multipart_body_without_its_closing_boundary_stores_nothing(api, services) -> None:
    user_id, headers = await user(api)
    boundary = "cut0ff"
    body = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="notes.txt"\r\n'
        "Content-Type: text/plain\r\n\r\nthe first half of a file"
    ).encode()
    for cut in (body, body + b"\r\n", body + f"\r\n--{boundary}\r\n".encode()):
        sent = await api.post(
            "/v1/files/upload", content=cut,
            headers={**headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
        )  # fmt: skip
        assert "closing boundary" in assert_error(sent, 400, "validation_error")["message"]
    assert await file_rows(services, user_id) == 0
    assert objects_under(services, f"users/{user_id}/") == []
    not_multipart = await api.post("/v1/files/upload", headers=headers, content=b"x",
                                   params={}, files=None)  # fmt: skip
    assert_error(not_multipart, 415, "unsupported_media_type")


async def test_a_signed_token_of_a_deleted_user_is_a_401(api, services) -> None:
    signed = await sign_up(api)
    headers = bearer(signed["access_token"])
    assert (await api.get("/v1/me", headers=headers)).status_code == 200
    async with services.db.connection() as conn:
        await conn.execute("DELETE FROM app_user WHERE id = %s", (signed["user"]["id"],))
    assert_error(await api.get("/v1/me", headers=headers), 401, "unauthorized")
    setup = await api.post("/v1/auth/mfa/enable", headers=headers)
    assert_error(setup, 401, "unauthorized")
    assert uuid.UUID(signed["user"]["id"])
