"""The single-page app (`Metadata.StaticSite` in template.yaml: the `frontend/dist` build),
served by the gateway for the GETs no route takes.

- A path names a file under the site's directory, or a directory with an `index.html`; a path
  with `.`/`..` segments, an empty segment (`//admin/`), a backslash or a NUL is refused
  outright (404), so nothing outside the directory, and no way around a guard, can be asked for.
- The SPA fallback: a GET/HEAD for a path that is no file, whose `Accept` takes `text/html`,
  gets the nearest `index.html` up the path (`/c/<id>` the app's, `/admin/users` the admin
  bundle's), with 200, so the app's own routes (`/verify-email#…`, `/c/<id>`) open it.
- Guards (`Metadata.StaticSite.Guards`) are checked before anything is looked up: a caller the
  guard refuses gets its 401/403 for a file and for the fallback alike.
- Every answer carries the site's security headers (a strict Content-Security-Policy built from
  the settings, `nosniff`, `same-origin` referrers). Hashed build assets
  (`assets/<name>-<hash>.<ext>`) are cached for a year as immutable; the rest is `no-cache`
  (revalidated by ETag); what a guard covers is `private`, never kept by a shared cache.
- No build yet (`frontend/dist` missing): a page (or, to a non-browser, the envelope) that says
  so with 503; the gateway itself starts and serves the API as ever.
"""

from __future__ import annotations

import os
import re
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from pathlib import Path
from typing import Any

from starlette.datastructures import Headers
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from shared.platform.errors import AppError
from shared.platform.template import StaticGuard, StaticSite

# A Vite build's content-hashed file: `assets/index-BdH2a8Xk.js` (8+ url-safe characters).
HASHED_ASSET = re.compile(r"(?:^|/)assets/(?:[^/]+/)*[^/]+-[A-Za-z0-9_-]{8,}\.[A-Za-z0-9]+$")
IMMUTABLE = "public, max-age=31536000, immutable"
NOT_BUILT_CODE = "frontend_not_built"
NOT_BUILT_MESSAGE = "the web app is not built: run `make frontend` (or `make run`)"
NOT_BUILT_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Adaptive Chat: not built</title></head>
<body><h1>The web app is not built</h1>
<p>Run <code>make frontend</code> (<code>make run</code> does it), then reload. The API is up:
<a href="/healthz">/healthz</a>, <a href="/v1/openapi.json">/v1/openapi.json</a>.</p>
</body></html>
"""

Refusal = Callable[[StaticGuard, Scope], Awaitable[AppError | None]]
Envelope = Callable[[Send, Scope, int, str, str], Awaitable[None]]


def security_headers(csp: str) -> dict[str, str]:
    """What every answer of the static site carries."""
    return {
        "content-security-policy": csp,
        "x-content-type-options": "nosniff",
        "referrer-policy": "same-origin",
    }


def normalized(path: str) -> str | None:
    """`path` with its segments checked, or None for one that could leave the directory or
    slip past a guard (dot segments, empty segments, backslashes, NUL)."""
    if not path.startswith("/"):
        return None
    inner = path[1:]
    if inner == "":
        return "/"
    segments = inner.split("/")
    if segments[-1] == "":  # a trailing slash: a directory
        segments = segments[:-1]
    for segment in segments:
        if segment in ("", ".", "..") or "\\" in segment or "\x00" in segment:
            return None
    return path


def accepts_html(scope: Scope) -> bool:
    return "text/html" in Headers(scope=scope).get("accept", "")


def is_api_path(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in ("/v1", "/healthz"))


class SiteServer:
    """Answers the static site's GET/HEAD requests; `serve` returns False for what is none of
    its business (the gateway's 404 then)."""

    def __init__(self, site: StaticSite, headers: Mapping[str, str], refusal: Refusal):
        self.site, self.headers, self.refusal = site, dict(headers), refusal
        self.files = StaticFiles(directory=site.directory, check_dir=False)

    @property
    def root(self) -> Path:
        return Path(os.path.realpath(self.site.directory))

    async def serve(self, scope: Scope, receive: Receive, send: Send, envelope: Envelope) -> bool:
        path = scope["path"]
        if scope["method"] not in ("GET", "HEAD") or is_api_path(path):
            return False
        clean = normalized(path)
        if clean is None:
            return False
        guard = self.site.guard_for(clean)
        secured = self._secured(send, private=guard is not None)
        if guard is not None:
            refused = await self.refusal(guard, scope)
            if refused is not None:  # the admin bundle is for admins, files and fallback alike
                await envelope(secured, scope, refused.status, refused.code, refused.message)
                return True
        root = self.root
        if not root.is_dir():
            if clean != "/" and not accepts_html(scope):
                return False
            if accepts_html(scope):
                page = HTMLResponse(NOT_BUILT_PAGE, status_code=503)
                page.headers["cache-control"] = "no-store"
                await page(scope, receive, secured)
            else:
                await envelope(secured, scope, 503, NOT_BUILT_CODE, NOT_BUILT_MESSAGE)
            return True
        try:
            response = self._file(root, clean, scope)
        except (OSError, ValueError):  # a name too long for the file system, say: no file
            response = None
        if response is None and accepts_html(scope):
            response = self._fallback(root, clean, scope)
        if response is None:
            return False
        await response(scope, receive, secured)
        return True

    def _file(self, root: Path, path: str, scope: Scope) -> Response | None:
        relative = path.strip("/")
        full = Path(os.path.realpath(root / relative)) if relative else root
        if full != root and root not in full.parents:  # a link out of the directory
            return None
        if full.is_dir():
            index = full / "index.html"
            if not index.is_file():
                return None
            if not path.endswith("/"):  # relative links in the page need the slash
                query = scope.get("query_string", b"").decode("latin-1")
                return RedirectResponse(path + "/" + (f"?{query}" if query else ""), 307)
            return self._response(index, f"{path}index.html", scope)
        if full.is_file():
            return self._response(full, path, scope)
        return None

    def _fallback(self, root: Path, path: str, scope: Scope) -> Response | None:
        """The nearest `index.html` up the path: the app's routes are the app's to answer."""
        parts = path.strip("/").split("/")[:-1] if path.strip("/") else []
        while True:
            try:
                index = Path(os.path.realpath(root.joinpath(*parts, "index.html")))
                if (index.parent == root or root in index.parents) and index.is_file():
                    return self._response(index, "/" + "/".join([*parts, "index.html"]), scope)
            except (OSError, ValueError):
                pass
            if not parts:
                return None
            parts.pop()

    def _response(self, full: Path, path: str, scope: Scope) -> Response:
        response = self.files.file_response(full, full.stat(), scope)
        cache = IMMUTABLE if HASHED_ASSET.search(path) else "no-cache"
        response.headers["cache-control"] = cache
        return response

    def _secured(self, send: Send, *, private: bool) -> Send:
        """`send` with the security headers on the response (and `private` caching on what a
        guard covers)."""
        extra = [(k.encode(), v.encode()) for k, v in self.headers.items()]

        async def secured(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in _SET]
                cache = next(
                    (v for k, v in message.get("headers", []) if k.lower() == b"cache-control"),
                    b"no-store",
                )
                if private:  # never kept by a shared cache
                    cache = b"private, " + cache.removeprefix(b"public, ")
                headers += [*extra, (b"cache-control", cache)]
                message = {**message, "headers": headers}
            await send(message)

        return secured


_SET = frozenset(
    {b"content-security-policy", b"x-content-type-options", b"referrer-policy", b"cache-control"}
)
