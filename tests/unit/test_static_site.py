"""The web app as the gateway serves it (infra/gateway/static.py): files, the SPA fallback,
guards, security headers, caching, traversal, and a missing build. ASGI calls with scopes made
here, so no client tidies a path up first (no network, no stack)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from infra.gateway.app import PublicGateway
from infra.gateway.sockets import SocketGateway
from infra.gateway.static import SiteServer, normalized, security_headers
from shared.platform.errors import Forbidden, Unauthorized
from shared.platform.settings import Settings
from shared.platform.template import StaticGuard, StaticSite

HTML = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
CSP = "default-src 'self'; connect-src 'self' ws://test:1"
ADMIN = StaticGuard("/admin", "admin")


def build(root: Path) -> Path:
    dist = root / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "admin" / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<title>app</title>")
    (dist / "assets" / "index-BdH2a8Xk.js").write_text("console.log('app')")
    (dist / "favicon.svg").write_text("<svg/>")
    (dist / "admin" / "index.html").write_text("<title>admin</title>")
    (dist / "admin" / "assets" / "admin-Zz09_-aQ.js").write_text("console.log('admin')")
    (root / "pyproject.toml").write_text("secret = true")
    return dist


async def refusal(guard: StaticGuard, scope: dict[str, Any]) -> Any:
    """Stands in for the perimeter: `x-role: admin` may, `x-role: user` is a 403, none a 401."""
    role = dict(scope["headers"]).get(b"x-role")
    if role is None:
        return Unauthorized("a bearer access token or the session cookie is required")
    return None if role == b"admin" else Forbidden(f"{guard.path_prefix} is for the admin role")


async def envelope(send: Any, scope: Any, status: int, code: str, message: str) -> None:
    body = json.dumps({"status": "error", "error": {"code": code, "message": message}}).encode()
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Receiver:
    """The request's (empty) body, then nothing until the response is done (a response may
    listen for the client going away meanwhile)."""

    def __init__(self) -> None:
        self.sent = False

    async def __call__(self) -> dict[str, Any]:
        if self.sent:
            await asyncio.Event().wait()
        self.sent = True
        return {"type": "http.request", "body": b"", "more_body": False}


class Answer:
    def __init__(self, handled: bool, messages: list[dict[str, Any]]):
        self.handled = handled
        start = next((m for m in messages if m["type"] == "http.response.start"), None)
        self.status = start["status"] if start else None
        self.headers = {k.decode().lower(): v.decode() for k, v in (start or {}).get("headers", [])}
        self.body = b"".join(
            m.get("body", b"") for m in messages if m["type"] == "http.response.body"
        )

    @property
    def text(self) -> str:
        return self.body.decode()


def scope_for(path: str, method: str = "GET", headers: dict[str, str] | None = None) -> dict:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
    }


async def call(server: SiteServer, path: str, method: str = "GET", **headers: str) -> Answer:
    messages: list[dict[str, Any]] = []

    receive = Receiver()

    async def send(message: Any) -> None:
        messages.append(dict(message))

    named = {k.replace("_", "-"): v for k, v in headers.items()}
    handled = await server.serve(scope_for(path, method, named), receive, send, envelope)
    return Answer(handled, messages)


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    return build(tmp_path)


@pytest.fixture
def server(dist: Path) -> SiteServer:
    return SiteServer(StaticSite(dist, (ADMIN,)), security_headers(CSP), refusal)


def assert_secured(answer: Answer) -> None:
    assert answer.headers["content-security-policy"] == CSP
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["referrer-policy"] == "same-origin"


async def test_the_app_and_its_assets_are_served_with_the_security_headers(server) -> None:
    page = await call(server, "/", accept=HTML)
    assert page.status == 200 and page.text == "<title>app</title>"
    assert_secured(page)
    assert page.headers["cache-control"] == "no-cache"
    assert page.headers["content-type"].startswith("text/html")
    script = await call(server, "/assets/index-BdH2a8Xk.js")
    assert script.status == 200 and "console.log" in script.text
    assert_secured(script)
    assert script.headers["cache-control"] == "public, max-age=31536000, immutable"
    icon = await call(server, "/favicon.svg")
    assert icon.status == 200 and icon.headers["cache-control"] == "no-cache"
    assert (await call(server, "/index.html")).headers["cache-control"] == "no-cache"


async def test_head_answers_without_a_body(server) -> None:
    head = await call(server, "/", "HEAD", accept=HTML)
    assert head.status == 200 and head.body == b""
    assert_secured(head)


async def test_an_unchanged_file_is_not_sent_again(server) -> None:
    first = await call(server, "/assets/index-BdH2a8Xk.js")
    again = await call(server, "/assets/index-BdH2a8Xk.js", if_none_match=first.headers["etag"])
    assert again.status == 304 and again.body == b""
    assert_secured(again)


@pytest.mark.parametrize(
    "path", ["/verify-email", "/reset-password", "/c/0b7f3c1e-2a4d-4a55-9a63-5d2f0e7f4c11", "/x/y/"]
)
async def test_the_app_routes_fall_back_to_the_app(server, path) -> None:
    page = await call(server, path, accept=HTML)
    assert page.handled and page.status == 200 and page.text == "<title>app</title>"
    assert_secured(page)
    assert page.headers["cache-control"] == "no-cache"
    head = await call(server, path, "HEAD", accept=HTML)
    assert head.status == 200 and head.body == b""


async def test_no_fallback_for_what_is_not_a_page(server) -> None:
    """A missing script or image (no text/html in Accept), the API, other methods: not the
    site's (the gateway answers its 404 or the route's own)."""
    assert not (await call(server, "/assets/missing-AAAAAAAA.js", accept="*/*")).handled
    assert not (await call(server, "/missing.png")).handled
    for path in ("/v1/unknown", "/v1", "/healthz", "/healthz/x"):
        assert not (await call(server, path, accept=HTML)).handled, path
    assert not (await call(server, "/", "POST", accept=HTML)).handled


async def test_the_admin_bundle_is_for_admins_files_and_fallback_alike(server) -> None:
    for path in ("/admin", "/admin/", "/admin/index.html", "/admin/users/42",
                 "/admin/assets/admin-Zz09_-aQ.js", "/admin/missing.js"):  # fmt: skip
        anonymous = await call(server, path, accept=HTML)
        assert anonymous.status == 401, path
        assert_secured(anonymous)
        assert "admin" not in anonymous.text.replace("/admin", ""), path
        user = await call(server, path, accept=HTML, x_role="user")
        assert user.status == 403 and "is for the admin role" in user.text, path
        assert "no-store" in user.headers["cache-control"]
    admin = await call(server, "/admin/", accept=HTML, x_role="admin")
    assert admin.status == 200 and admin.text == "<title>admin</title>"
    assert admin.headers["cache-control"] == "private, no-cache"
    assert_secured(admin)
    fallback = await call(server, "/admin/users/42", accept=HTML, x_role="admin")
    assert fallback.status == 200 and fallback.text == "<title>admin</title>"
    asset = await call(server, "/admin/assets/admin-Zz09_-aQ.js", x_role="admin")
    assert asset.status == 200
    assert asset.headers["cache-control"] == "private, max-age=31536000, immutable"
    bare = await call(server, "/admin", accept=HTML, x_role="admin")
    assert bare.status == 307 and bare.headers["location"] == "/admin/"


@pytest.mark.parametrize(
    "path",
    [
        "/../pyproject.toml",  # `/..%2fpyproject.toml` once the server has decoded it
        "/..%2fpyproject.toml",
        "/assets/../../pyproject.toml",
        "/assets/./index-BdH2a8Xk.js",
        "/assets/..\\..\\pyproject.toml",
        "//admin/index.html",  # an empty segment must not get past the /admin guard
        "/assets//../admin/index.html",
        "/index.html\x00.js",
        "/%2e%2e/pyproject.toml",
    ],
)
async def test_no_traversal_and_no_way_around_a_guard(server, path) -> None:
    for accept in (HTML, "*/*"):
        answer = await call(server, path, accept=accept)
        if answer.handled and answer.status == 200:  # a page of the app's, at most
            assert accept == HTML and answer.text == "<title>app</title>", path
        else:
            assert not answer.handled or answer.status in (401, 403, 404), path
        assert "secret" not in answer.text and "<title>admin" not in answer.text, path


async def test_a_name_too_long_for_the_file_system_is_no_file(server) -> None:
    long = "/c/" + "a" * 300 + "/" + "b" * 300
    assert not (await call(server, long)).handled  # the gateway's 404, not a 500
    page = await call(server, long, accept=HTML)
    assert page.status == 200 and page.text == "<title>app</title>"


async def test_a_link_out_of_the_directory_is_not_followed(dist: Path, server) -> None:
    (dist / "leak.toml").symlink_to(dist.parent / "pyproject.toml")
    assert not (await call(server, "/leak.toml")).handled


def test_paths_are_normalized_or_refused() -> None:
    assert normalized("/") == "/"
    assert normalized("/c/abc") == "/c/abc"
    assert normalized("/admin/") == "/admin/"
    for bad in ("", "admin", "//admin", "/a//b", "/a/./b", "/a/../b", "/a\\b", "/a\x00"):
        assert normalized(bad) is None, bad


async def test_a_missing_build_is_a_clear_503_not_a_crash(tmp_path: Path) -> None:
    server = SiteServer(StaticSite(tmp_path / "dist", (ADMIN,)), security_headers(CSP), refusal)
    page = await call(server, "/", accept=HTML)
    assert page.status == 503 and "make frontend" in page.text
    assert_secured(page)
    assert (await call(server, "/c/1", accept=HTML)).status == 503
    api_like = await call(server, "/", accept="application/json")
    assert api_like.status == 503
    assert json.loads(api_like.body)["error"]["code"] == "frontend_not_built"
    assert not (await call(server, "/missing.js")).handled  # the gateway's 404
    assert (await call(server, "/admin/", accept=HTML)).status == 401  # the guard first


async def test_the_gateway_starts_without_a_build_and_says_so(tmp_path: Path) -> None:
    """The whole gateway, with no routes: `/` is the 503 page, the guard still refuses."""
    settings = Settings(_env_file=None, env="test", gateway_port=8123)
    site = StaticSite(tmp_path / "missing", (ADMIN,))
    gateway = PublicGateway([], SocketGateway({}), site, SimpleNamespace(settings=settings))  # type: ignore[arg-type]
    messages: list[dict[str, Any]] = []

    receive = Receiver()

    async def send(message: Any) -> None:
        messages.append(dict(message))

    await gateway(scope_for("/", headers={"accept": HTML}), receive, send)
    page = Answer(True, messages)
    assert page.status == 503 and "make frontend" in page.text
    assert page.headers["content-security-policy"] == settings.content_security_policy
    assert page.headers["x-request-id"]
    messages.clear()
    await gateway(scope_for("/admin/"), receive, send)
    assert Answer(True, messages).status == 401


def test_the_policy_comes_from_the_settings() -> None:
    local = Settings(_env_file=None, env="test", gateway_port=8123, s3_port=8444)
    assert local.content_security_policy == (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        "media-src 'self' blob:; connect-src 'self' ws://127.0.0.1:8123 http://127.0.0.1:8444; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    )
    public = Settings(
        _env_file=None,
        env="test",
        public_base_url="https://chat.example.com/",
        s3_public_endpoint_url="https://files.example.com:9000/some/path",
    )
    assert "connect-src 'self' wss://chat.example.com https://files.example.com:9000;" in (
        public.content_security_policy
    )
    local_store = Settings(_env_file=None, env="test", aws_region="eu-west-1")
    assert local_store.s3_public_origin == "http://127.0.0.1:8333"  # dev and test
    for region, origin in (("eu-west-1", "https://s3.eu-west-1.amazonaws.com"),
                           ("us-east-1", "https://s3.amazonaws.com")):  # fmt: skip
        aws = Settings.model_construct(env="prod", aws_region=region)  # as boto3 signs them
        assert aws.s3_public_origin == origin
    assert "'unsafe-inline'" not in public.content_security_policy
