"""Admin function: the security audit log (and its integrity check) and user management.
Every route needs the admin role."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from functions.auth.schemas import UserOut
from shared.domain.accounts import admin_users
from shared.domain.accounts.admin_users import AccountState
from shared.platform import audit
from shared.platform.auth.perimeter import client_of, perimeter, sessions
from shared.platform.runtime.routes import Access, Call, Route, RouteTable
from shared.services import Services

UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


class AuditQuery(BaseModel):
    cursor: int | None = Field(default=None, ge=1, description="`next_cursor` of the last page")
    limit: int = Field(default=50, ge=1, le=200)
    event: str | None = Field(default=None, max_length=64)
    # A UUID exactly: 36 hex digits and dashes in any order would reach Postgres as a bad uuid.
    user_id: str | None = Field(default=None, pattern=UUID_PATTERN)


class AuditPage(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: str | None


class ChainOut(BaseModel):
    ok: bool
    checked: int
    first_broken_id: int | None


class UserQuery(BaseModel):
    cursor: str | None = Field(default=None, max_length=200)
    limit: int = Field(default=50, ge=1, le=200)
    email_contains: str | None = Field(default=None, max_length=254)


class AdminUserOut(UserOut):
    is_active: bool
    # What the console shows: `deleting` is an account whose deletion was asked for (by the
    # user or an admin): disabled, not to be enabled again, gone once its data is purged.
    status: AccountState = Field(
        description="active, disabled, or deleting (a queued purge removes the account)"
    )
    deletion_requested_at: datetime | None = Field(
        default=None, description="When the deletion was asked for; null unless deleting"
    )


class UserPage(BaseModel):
    items: list[AdminUserOut]
    next_cursor: str | None


class UserUpdate(BaseModel):
    role: Literal["user", "admin"] | None = None
    is_active: bool | None = None


async def audit_log(call: Call[AuditQuery], *, services: Services) -> AuditPage:
    query = call.body
    events = await audit.page(
        services.db,
        before_id=query.cursor,
        limit=query.limit,
        event=query.event,
        user_id=query.user_id,
    )
    more = len(events) == query.limit
    return AuditPage(
        items=[e.public() for e in events], next_cursor=str(events[-1].id) if more else None
    )


async def audit_verify(call: Call[Any], *, services: Services) -> ChainOut:
    report = await audit.verify_chain(services.db)
    return ChainOut.model_validate(report, from_attributes=True)


async def list_users(call: Call[UserQuery], *, services: Services) -> UserPage:
    query = call.body
    async with services.db.connection() as conn:
        users, cursor = await admin_users.list_users(
            conn,
            cursor=query.cursor,
            limit=query.limit,
            email_contains=query.email_contains,
        )
    return UserPage(
        items=[AdminUserOut.model_validate(u, from_attributes=True) for u in users],
        next_cursor=cursor,
    )


async def update_user(call: Call[UserUpdate], *, services: Services) -> AdminUserOut:
    user_id = call.uuid_param("id")
    async with services.db.connection() as conn:
        user = await admin_users.update_user(
            conn,
            user_id,
            role=call.body.role,
            is_active=call.body.is_active,
            actor=client_of(call.request, call.user.user_id),
        )
    if call.body.role is not None or call.body.is_active is False:
        await sessions(services).revoke_all(user_id)  # old tokens carry the old role
    return AdminUserOut.model_validate(user, from_attributes=True)


ROUTES = RouteTable(
    "admin",
    [
        Route("GET", "/v1/admin/audit", audit_log, "Security audit events, newest first",
              access=Access.ADMIN, request_model=AuditQuery, response_model=AuditPage),
        Route("GET", "/v1/admin/audit/verify", audit_verify,
              "Re-walk the audit hash chain", access=Access.ADMIN, response_model=ChainOut),
        Route("GET", "/v1/admin/users", list_users, "Accounts, newest first",
              access=Access.ADMIN, request_model=UserQuery, response_model=UserPage),
        Route("PATCH", "/v1/admin/users/{id}", update_user, "Change a role, disable or enable",
              access=Access.ADMIN, request_model=UserUpdate, response_model=AdminUserOut),
    ],
    **perimeter(),
)  # fmt: skip
