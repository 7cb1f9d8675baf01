"""The static site's guards, as template.yaml declares them (`Metadata.StaticSite.Guards`):
a part of the single-page app (the admin bundle) that only some callers may fetch. The caller
is authenticated as by any route (bearer token, or the session cookie)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import Scope

from shared.platform.auth.perimeter import authenticate
from shared.platform.clients import Clients
from shared.platform.errors import AppError, Forbidden
from shared.platform.template import StaticGuard


async def refusal(guard: StaticGuard, scope: Scope, clients: Clients) -> AppError | None:
    """None when the caller may fetch what `guard` covers; otherwise the 401/403 to answer."""
    try:
        principal = await authenticate(Request(scope), clients)
    except AppError as exc:
        return exc
    if guard.access == "admin" and not principal.is_admin:
        return Forbidden(f"{guard.path_prefix} is for the admin role")
    return None
