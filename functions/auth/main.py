"""Auth function: accounts, sessions, email verification, passwords, MFA and OIDC login."""

from __future__ import annotations

from functions.auth import account_routes, mfa_routes, oidc_routes
from shared.platform.auth.perimeter import perimeter
from shared.platform.runtime.routes import RouteTable

ROUTES = RouteTable(
    "auth", [*account_routes.ROUTES, *mfa_routes.ROUTES, *oidc_routes.ROUTES], **perimeter()
)
