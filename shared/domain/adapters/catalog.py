"""The adapters a user may use, as the adapters API lists them: their own and the shared and
global ones, each with the version served (the pointer, `artifact.version`), whether that
version has weights, how many versions are kept, and the router's state (usage, success
score, when it was last used and last trained). Another user's private adapter is not found,
never forbidden."""

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
    owner: str  # "me" | "shared" | "global": never another user's id
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


# What the user may read: their own, and the shared and global ones.
_ADAPTER = """
SELECT a.id::text, a.name, a.description, a.schema, a.visibility,
       CASE WHEN a.owner_user_id = %(user)s::uuid THEN 'me'
            WHEN a.visibility = 'global' OR a.owner_user_id IS NULL THEN 'global'
            ELSE 'shared' END,
       a.version, coalesce(v.latest, a.version), coalesce(v.kept, 0),
       coalesce(s.usage_count, 0), s.success_score, s.last_used_at, s.last_trained_at,
       a.created_at, a.updated_at
  FROM artifact a
  LEFT JOIN adapter_router_state s ON s.artifact_id = a.id
  LEFT JOIN LATERAL (SELECT max(version) AS latest, count(*) AS kept FROM artifact_version
                      WHERE artifact_id = a.id) v ON true
 WHERE a.type = 'adapter.lora'
   AND (a.owner_user_id = %(user)s::uuid OR a.visibility IN ('shared', 'global'))
"""


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
    if adapter_type is not None and adapter_type not in ADAPTER_TYPES:
        raise ValidationError(f"type must be one of {', '.join(ADAPTER_TYPES)}")
    where, params = [], {"user": user_id}
    if owner == "me":
        where.append("a.owner_user_id = %(user)s::uuid")
    elif owner == "global":
        where.append("(a.visibility = 'global' OR a.owner_user_id IS NULL)")
    if adapter_type:
        where.append("coalesce(a.schema->>'adapter_type', 'persona') = %(type)s")
        params["type"] = adapter_type
    return await newest_first(
        conn, _ADAPTER + "".join(f" AND {w}" for w in where), params,
        order=("a.updated_at", "a.id"), cursor=cursor, limit=limit, row=_adapter,
        key=lambda a: (a.updated_at, a.id),
    )  # fmt: skip


async def get(conn: Connection, user_id: str, adapter_id: str) -> Adapter:
    """One adapter the user may use; NotFound for anything else (no existence leak)."""
    try:
        key = str(uuid.UUID(adapter_id))
    except ValueError:
        raise NotFound("no such adapter") from None
    row = await (
        await conn.execute(_ADAPTER + " AND a.id = %(id)s", {"user": user_id, "id": key})
    ).fetchone()
    if row is None:
        raise NotFound("no such adapter")
    return _adapter(row)
