"""MigrateFunction serves no routes: CloudFormation invokes `functions.migrate.handler.handler`
directly (a custom resource, not HTTP, so not behind the Lambda Web Adapter). The empty table
keeps the template's rule that every function package has its ROUTES; locally `make migrate`
(`python -m infra.migrate`) does the same work."""

from __future__ import annotations

from shared.platform.runtime.routes import RouteTable

ROUTES = RouteTable("migrate", [])
