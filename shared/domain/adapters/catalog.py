"""The adapters a user may use, as the adapters API lists them: their own and the shared and
global ones, each with the version served (the pointer, `artifact.version`), whether that
version has weights, how many versions are kept, and the router's state (usage, success
score, when it was last used and last trained). Another user's private adapter is not found,
never forbidden. Admins read every adapter with its owner (`list_all`, `get_any`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.domain.adapters.registry import ADAPTER_TYPES
from shared.domain.adapters.versions import has_weights
from shared.platform.db.cursor import newest_first
from shared.platform.db.pool import Connection
from shared.platform.errors import NotFound, ValidationError

OWNERS = ("me", "global", "all")


@dataclass(frozen=True)
class Adapter:
    id: str
    name: str
    description: str | None
    adapter_type: str
    mode: str | None
    visibility: str
    owner: str  # "me" | "shared" | "global" ("private": another's, for admins only)
    version: int  # the one served
    latest_version: int
    version_count: int
    has_weights: bool
    base_model: str | None
    usage_count: int
    success_score: float | None
    last_used_at: datetime | None
    last_trained_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @property
    def mine(self) -> bool:
        return self.owner == "me"


@dataclass(frozen=True)
class OwnedAdapter(Adapter):
    """Any adapter with its owner, as an admin sees it (`owner` is relative to the admin:
    another user's private adapter is `private`)."""

    owner_user_id: str | None  # None: a global adapter nobody owns
    owner_email: str | None
    status: str  # "active" | "disabled" (SPEC §7.4: pruned, or merged into another)
    merged_into: str | None  # the adapter it was merged into
    cluster_id: str | None  # the cluster a skill adapter serves
    cluster_label: str | None  # that cluster's label (None: no such cluster)


_COLUMNS = """
SELECT a.id::text, a.name, a.description, a.schema, a.visibility,
       CASE WHEN a.owner_user_id = %(user)s::uuid THEN 'me'
            WHEN a.visibility = 'global' OR a.owner_user_id IS NULL THEN 'global'
            WHEN a.visibility = 'shared' THEN 'shared'
            ELSE 'private' END,
       a.version, coalesce(v.latest, a.version), coalesce(v.kept, 0),
       coalesce(s.usage_count, 0), s.success_score, s.last_used_at, s.last_trained_at,
       a.created_at, a.updated_at"""
_FROM = """
  FROM artifact a
  LEFT JOIN adapter_router_state s ON s.artifact_id = a.id
  LEFT JOIN LATERAL (SELECT max(version) AS latest, count(*) AS kept FROM artifact_version
                      WHERE artifact_id = a.id) v ON true"""
# What the user may read: their own, and the shared and global ones (never `private`).
_ADAPTER = (
    _COLUMNS + _FROM + "\n WHERE a.type = 'adapter.lora'"
    "\n   AND (a.owner_user_id = %(user)s::uuid OR a.visibility IN ('shared', 'global'))\n"
)
# Every adapter, with its owner (admins only: the caller checks the role).
_ANY_ADAPTER = (
    _COLUMNS + ", a.owner_user_id::text, u.email::text, c.label" + _FROM
    + "\n  LEFT JOIN app_user u ON u.id = a.owner_user_id"
    + "\n  LEFT JOIN semantic_cluster c ON c.id::text = a.schema->>'cluster_id'"
    + "\n WHERE a.type = 'adapter.lora'\n"
)  # fmt: skip


def _adapter(row: tuple[Any, ...]) -> Adapter:
    (id_, name, description, schema, visibility, owner, version, latest, kept, usage,
     success, used_at, trained_at, created_at, updated_at) = row  # fmt: skip
    return Adapter(
        id=id_, name=name, description=description,
        adapter_type=str(schema.get("adapter_type") or "persona"), mode=schema.get("mode"),
        visibility=visibility, owner=owner, version=int(version), latest_version=int(latest),
        version_count=int(kept), has_weights=has_weights(schema),
        base_model=schema.get("base_model"), usage_count=int(usage), success_score=success,
        last_used_at=used_at, last_trained_at=trained_at, created_at=created_at,
        updated_at=updated_at,
    )  # fmt: skip


async def list_for(
    conn: Connection, user_id: str, *, adapter_type: str | None = None, owner: str = "all",
    cursor: str | None = None, limit: int = 30,
) -> tuple[list[Adapter], str | None]:  # fmt: skip
    """The adapters the user may use, most recently changed first (a pointer move counts)."""
    if owner not in OWNERS:
        raise ValidationError(f"owner must be one of {', '.join(OWNERS)}")
    where, params = _type_filter(adapter_type)
    if owner == "me":
        where.append("a.owner_user_id = %(user)s::uuid")
    elif owner == "global":
        where.append("(a.visibility = 'global' OR a.owner_user_id IS NULL)")
    return await newest_first(
        conn, _ADAPTER + "".join(f" AND {w}" for w in where), {**params, "user": user_id},
        order=("a.updated_at", "a.id"), cursor=cursor, limit=limit, row=_adapter,
        key=lambda a: (a.updated_at, a.id),
    )  # fmt: skip


def _type_filter(adapter_type: str | None) -> tuple[list[str], dict[str, Any]]:
    if adapter_type is None:
        return [], {}
    if adapter_type not in ADAPTER_TYPES:
        raise ValidationError(f"type must be one of {', '.join(ADAPTER_TYPES)}")
    return ["coalesce(a.schema->>'adapter_type', 'persona') = %(type)s"], {"type": adapter_type}


def _key(adapter_id: str) -> str:
    try:
        return str(uuid.UUID(adapter_id))
    except ValueError:
        raise NotFound("no such adapter") from None


async def get(conn: Connection, user_id: str, adapter_id: str) -> Adapter:
    """One adapter the user may use; NotFound for anything else (no existence leak)."""
    row = await (
        await conn.execute(
            _ADAPTER + " AND a.id = %(id)s", {"user": user_id, "id": _key(adapter_id)}
        )
    ).fetchone()
    if row is None:
        raise NotFound("no such adapter")
    return _adapter(row)


# --- admins: every user's adapters, with their owners ---------------------------------------


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _owned(row: tuple[Any, ...]) -> OwnedAdapter:
    *adapter, owner_user_id, email, cluster_label = row
    schema = adapter[3]
    return OwnedAdapter(
        **_adapter(tuple(adapter)).__dict__, owner_user_id=owner_user_id, owner_email=email,
        status="disabled" if schema.get("status") == "disabled" else "active",
        merged_into=_text(schema.get("merged_into")),
        cluster_id=_text(schema.get("cluster_id")), cluster_label=cluster_label,
    )  # fmt: skip


async def list_all(
    conn: Connection, admin_id: str, *, adapter_type: str | None = None,
    owner_user_id: str | None = None, cursor: str | None = None, limit: int = 30,
) -> tuple[list[OwnedAdapter], str | None]:  # fmt: skip
    """Every adapter (or `owner_user_id`'s), most recently changed first; `owner` is relative
    to `admin_id`. For admins only (the caller checks the role)."""
    where, params = _type_filter(adapter_type)
    if owner_user_id is not None:
        try:
            params["owner"] = str(uuid.UUID(owner_user_id))
        except ValueError as exc:
            raise ValidationError("user_id must be a UUID") from exc
        where.append("a.owner_user_id = %(owner)s::uuid")
    return await newest_first(
        conn, _ANY_ADAPTER + "".join(f" AND {w}" for w in where), {**params, "user": admin_id},
        order=("a.updated_at", "a.id"), cursor=cursor, limit=limit, row=_owned,
        key=lambda a: (a.updated_at, a.id),
    )  # fmt: skip


async def get_any(conn: Connection, admin_id: str, adapter_id: str) -> OwnedAdapter:
    """Any adapter, with its owner (admins only); NotFound when there is none."""
    row = await (
        await conn.execute(
            _ANY_ADAPTER + " AND a.id = %(id)s", {"user": admin_id, "id": _key(adapter_id)}
        )
    ).fetchone()
    if row is None:
        raise NotFound("no such adapter")
    return _owned(row)
