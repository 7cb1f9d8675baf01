"""The `config_patch` rows: insert, read as a viewer may, lock for a change, list newest first.

A user sees the patches they proposed and those on their own artifacts; anything else is not
found (never forbidden). Admins (and the system) see every patch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb

from shared.domain.configops.models import COLUMNS, Patch, patch_of
from shared.platform.db.cursor import decode_cursor, encode_cursor, keyset_page, probe_size
from shared.platform.db.pool import Connection
from shared.platform.errors import NotFound, ValidationError

_VISIBLE = "(%(admin)s OR p.proposed_by = %(user)s::uuid OR p.owner_user_id = %(user)s::uuid)"


@dataclass(frozen=True)
class Viewer:
    user_id: str | None
    is_admin: bool

    def params(self) -> dict[str, Any]:
        return {"user": self.user_id, "admin": self.is_admin or self.user_id is None}


async def pending_same(conn: Connection, artifact_id: str, ops: Any) -> int | None:
    """A patch still awaiting a decision with exactly these operations on this artifact (the
    architect does not put the same question to the admins twice)."""
    row = await (
        await conn.execute(
            "SELECT id FROM config_patch WHERE artifact_id = %s AND status = 'pending'"
            " AND patch = %s ORDER BY id LIMIT 1",
            (artifact_id, Jsonb(ops)),
        )
    ).fetchone()
    return int(row[0]) if row else None


async def insert(conn: Connection, **fields: Any) -> int:
    """One new row; `fields` are column names (JSON columns as plain values)."""
    json_columns = {"patch", "validation", "dry_run", "meta"}
    names = list(fields)
    values = [Jsonb(v) if k in json_columns and v is not None else v for k, v in fields.items()]
    row = await (
        await conn.execute(
            f"INSERT INTO config_patch ({', '.join(names)})"  # noqa: S608 - names are ours
            f" VALUES ({', '.join(['%s'] * len(names))}) RETURNING id",
            values,
        )
    ).fetchone()
    assert row is not None
    return int(row[0])


async def get(conn: Connection, patch_id: int, viewer: Viewer) -> Patch:
    row = await (
        await conn.execute(
            f"SELECT {COLUMNS} FROM config_patch p WHERE p.id = %(id)s AND {_VISIBLE}",  # noqa: S608
            {"id": patch_id, **viewer.params()},
        )
    ).fetchone()
    if row is None:
        raise NotFound("no such patch")
    return patch_of(row)


async def lock(conn: Connection, patch_id: int, viewer: Viewer) -> Patch:
    """The row, locked until the caller's transaction ends (concurrent deciders and appliers
    of one patch take turns and each sees the other's outcome)."""
    row = await (
        await conn.execute(
            f"SELECT {COLUMNS} FROM config_patch p WHERE p.id = %(id)s AND {_VISIBLE}"  # noqa: S608
            " FOR UPDATE",
            {"id": patch_id, **viewer.params()},
        )
    ).fetchone()
    if row is None:
        raise NotFound("no such patch")
    return patch_of(row)


async def update(conn: Connection, patch_id: int, **fields: Any) -> None:
    """Sets columns (`now()` for the timestamps named in `stamp`) and `updated_at`."""
    stamp = fields.pop("stamp", ())
    json_columns = {"validation", "dry_run", "meta"}
    sets = [f"{k} = %s" for k in fields] + [f"{k} = now()" for k in stamp] + ["updated_at = now()"]
    values = [Jsonb(v) if k in json_columns and v is not None else v for k, v in fields.items()]
    await conn.execute(
        f"UPDATE config_patch SET {', '.join(sets)} WHERE id = %s",  # noqa: S608 - ours
        [*values, patch_id],
    )


async def list_for(
    conn: Connection,
    viewer: Viewer,
    *,
    status: str | None = None,
    artifact_id: str | None = None,
    cursor: str | None = None,
    limit: int = 30,
) -> tuple[list[Patch], str | None]:
    """Newest first (keyset on the id, which only grows); the cursor holds the last id seen."""
    params: dict[str, Any] = {**viewer.params(), "status": status, "artifact": artifact_id,
                              "before": None, "limit": probe_size(limit)}  # fmt: skip
    if cursor:
        (before,) = decode_cursor(cursor, 1)
        if not isinstance(before, int) or isinstance(before, bool):
            raise ValidationError("invalid cursor")
        params["before"] = before
    rows = await (
        await conn.execute(
            f"SELECT {COLUMNS} FROM config_patch p WHERE {_VISIBLE}"  # noqa: S608 - ours
            " AND (%(status)s::text IS NULL OR p.status = %(status)s::text)"
            " AND (%(artifact)s::uuid IS NULL OR p.artifact_id = %(artifact)s::uuid)"
            " AND (%(before)s::bigint IS NULL OR p.id < %(before)s::bigint)"
            " ORDER BY p.id DESC LIMIT %(limit)s",
            params,
        )
    ).fetchall()
    return keyset_page([patch_of(r) for r in rows], limit, lambda p: encode_cursor(p.id))
