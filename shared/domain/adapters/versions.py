"""An adapter's versions and the pointer that names the one served.

Every version of an `adapter.lora` artifact is an `artifact_version` row, and `artifact.version`
*is* the pointer: the inference service (`registry.resolve`) and the router
(`chat.sources.adapter_candidates`) read it, so moving it changes what the next request gets
and nothing else. Files are never overwritten: a rollback or an approval moves the pointer to a
version that exists (the artifact row also takes that version's schema and `fs_path`, which the
router reads), and a new version is numbered `next_number` (max + 1).

A version's schema carries, besides what loading needs (`checksum`, `fs_dir`: null for a
weightless, prompt-only version), what training recorded: `metrics` (held-out loss and
alignment of the new and the current version, `n_heldout`, train loss, steps, seconds),
`job_id`, `promoted` (the trainer's decision) and `training_config`. A version the trainer did
not promote is a **candidate**: kept, not served, until an admin approves (`point` with
`candidate_only`) or discards it.

Numbers are never reused: the inference service caches an adapter by (id, version), so a
reused number could serve the discarded version's weights. `discard` records the highest
number it removed in `artifact.meta.last_version`, and `next_number` counts it.

Store functions: each takes a connection and runs one transaction; `discard` answers the
object-store prefix for the caller to remove with `remove_files` *after* the commit, so a
reader never resolves a version whose files are gone.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from shared.domain.adapters.objects import delete_version
from shared.platform.db.cursor import decode_cursor, encode_cursor, keyset_page, probe_size
from shared.platform.db.pool import Connection
from shared.platform.errors import Conflict, NotFound, ValidationError

MAX_VERSION = 2**31 - 1  # a Postgres INT


@dataclass(frozen=True)
class Version:
    adapter_id: str
    version: int
    served: bool
    has_weights: bool
    mode: str | None
    checksum: str | None
    rank: int | None
    alpha: float | None
    metrics: dict[str, Any] | None
    job_id: str | None
    promoted: bool | None
    training_config: dict[str, Any] | None
    created_by: str
    change_note: str | None
    created_at: datetime
    prefix: str | None

    @property
    def candidate(self) -> bool:
        """Kept for review: the trainer did not promote it and it is not served."""
        return self.promoted is False and not self.served


@dataclass(frozen=True)
class Pointer:
    adapter_id: str
    owner_user_id: str | None
    version: int
    previous_version: int
    moved: bool
    updated_at: datetime


@dataclass(frozen=True)
class Discarded:
    adapter_id: str
    owner_user_id: str | None
    version: int
    had_weights: bool
    # The object-store prefix to remove once the row's deletion has committed; None when the
    # version had no files (or another row still names them).
    prefix: str | None


def has_weights(schema: dict[str, Any]) -> bool:
    return bool(schema.get("fs_dir")) and bool(schema.get("checksum"))


def version_of(
    adapter_id: str, number: int, schema: dict[str, Any], *, served: bool, created_by: str,
    change_note: str | None, created_at: datetime, fs_path: str | None = None,
) -> Version:  # fmt: skip
    """A version as its schema records it (fields a version published before training
    recorded them lacks are None)."""
    metrics, config = schema.get("metrics"), schema.get("training_config")
    promoted, job_id = schema.get("promoted"), schema.get("job_id")
    rank, alpha = schema.get("rank"), schema.get("alpha")
    return Version(
        adapter_id=adapter_id, version=number, served=served, has_weights=has_weights(schema),
        mode=schema.get("mode"), checksum=schema.get("checksum"),
        rank=int(rank) if isinstance(rank, int | float) else None,
        alpha=float(alpha) if isinstance(alpha, int | float) else None,
        metrics=metrics if isinstance(metrics, dict) else None,
        job_id=str(job_id) if job_id else None,
        promoted=promoted if isinstance(promoted, bool) else None,
        training_config=config if isinstance(config, dict) else None,
        created_by=created_by, change_note=change_note, created_at=created_at,
        prefix=fs_path or schema.get("fs_dir") or None,
    )  # fmt: skip


def parse_number(raw: str) -> int:
    """A `{version}` path parameter: a positive INT, else it names no version (404)."""
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_VERSION:
        raise NotFound(f"no such version: {raw[:16]!r}")
    return int(raw)


def _adapter_key(adapter_id: str) -> str:
    try:
        return str(uuid.UUID(adapter_id))
    except ValueError:
        raise NotFound(f"adapter {adapter_id[:64]!r} not found") from None


def page_cursor(cursor: str | None) -> int | None:
    """The version a `page` cursor stops before; 400 for a cursor that is not one."""
    if not cursor:
        return None
    (before,) = decode_cursor(cursor, 1)
    if not isinstance(before, int) or isinstance(before, bool) or not 1 <= before <= MAX_VERSION:
        raise ValidationError("invalid cursor")
    return before


_VERSIONS = """
SELECT v.version, v.schema, v.created_by, v.change_note, v.created_at, v.fs_path,
       v.version = a.version
  FROM artifact_version v JOIN artifact a ON a.id = v.artifact_id
 WHERE v.artifact_id = %(id)s AND a.type = 'adapter.lora'
   AND (%(before)s::int IS NULL OR v.version < %(before)s::int)
 ORDER BY v.version DESC LIMIT %(limit)s
"""


async def page(
    conn: Connection, adapter_id: str, *, cursor: str | None = None, limit: int = 20
) -> tuple[list[Version], str | None]:
    """An adapter's versions, newest first, with their metrics and which one is served. The
    caller has checked that its user may read the adapter."""
    params = {"id": _adapter_key(adapter_id), "before": page_cursor(cursor),
              "limit": probe_size(limit)}  # fmt: skip
    rows = await (await conn.execute(_VERSIONS, params)).fetchall()
    items = [
        version_of(adapter_id, number, schema, served=served, created_by=by, change_note=note,
                   created_at=at, fs_path=fs_path)
        for number, schema, by, note, at, fs_path, served in rows
    ]  # fmt: skip
    return keyset_page(items, limit, lambda v: encode_cursor(v.version))


async def next_number(conn: Connection, adapter_id: str) -> int:
    """The number of the adapter's next version: max + 1 over its versions, and over the
    numbers discarded (never reused)."""
    row = await (
        await conn.execute(
            "SELECT greatest(coalesce((SELECT max(version) FROM artifact_version"
            " WHERE artifact_id = a.id), 0), coalesce((a.meta->>'last_version')::int, 0)) + 1"
            " FROM artifact a WHERE a.id = %s",
            (_adapter_key(adapter_id),),
        )
    ).fetchone()
    if row is None:
        raise NotFound(f"adapter {adapter_id!r} not found")
    return int(row[0])


async def _lock(conn: Connection, adapter_id: str) -> tuple[str, str | None, int]:
    """(id, owner, served version) of the adapter, its row locked for this transaction."""
    key = _adapter_key(adapter_id)
    row = await (
        await conn.execute(
            "SELECT owner_user_id::text, version FROM artifact"
            " WHERE id = %s AND type = 'adapter.lora' FOR UPDATE",
            (key,),
        )
    ).fetchone()
    if row is None:
        raise NotFound(f"adapter {adapter_id!r} not found")
    return key, row[0], int(row[1])


async def point(
    conn: Connection, adapter_id: str, version: int, *, candidate_only: bool = False
) -> Pointer:
    """Serves `version` (an existing version of the adapter) from now on: a rollback, or with
    `candidate_only` the approval of a candidate (409 `not_a_candidate` for a version the
    trainer promoted: roll back to it instead). Under the adapter's row lock; pointing at the
    version already served changes nothing (`moved: false`)."""
    async with conn.transaction():
        key, owner, served = await _lock(conn, adapter_id)
        target = await (
            await conn.execute(
                "SELECT schema, coalesce(fs_path, schema->>'fs_dir') FROM artifact_version"
                " WHERE artifact_id = %s AND version = %s",
                (key, version),
            )
        ).fetchone()
        if target is None:
            raise NotFound(f"adapter {adapter_id} has no version {version}")
        schema, fs_path = target
        if version == served:
            stamp = await (
                await conn.execute("SELECT updated_at FROM artifact WHERE id = %s", (key,))
            ).fetchone()
            assert stamp is not None
            return Pointer(key, owner, served, served, False, stamp[0])
        if candidate_only and schema.get("promoted") is not False:
            raise Conflict(
                f"version {version} is not a candidate (its training promoted it, or recorded"
                " no decision): roll back to it instead",
                details={"reason": "not_a_candidate", "version": version},
            )
        moved = await (
            await conn.execute(
                "UPDATE artifact SET version = %s, schema = %s, fs_path = %s, updated_at = now()"
                " WHERE id = %s RETURNING updated_at",
                (version, Jsonb(schema), fs_path, key),
            )
        ).fetchone()
        assert moved is not None
    return Pointer(key, owner, version, served, True, moved[0])


async def discard(conn: Connection, adapter_id: str, version: int) -> Discarded:
    """Deletes a version that is not served (409 `served` for the served one: move the
    pointer first). Answers the prefix whose files the caller removes after the commit."""
    async with conn.transaction():
        key, owner, served = await _lock(conn, adapter_id)
        if version == served:
            raise Conflict(
                f"version {version} is the one served: roll back to another version first",
                details={"reason": "served", "version": version},
            )
        gone = await (
            await conn.execute(
                "DELETE FROM artifact_version WHERE artifact_id = %s AND version = %s"
                " RETURNING schema, coalesce(fs_path, schema->>'fs_dir')",
                (key, version),
            )
        ).fetchone()
        if gone is None:
            raise NotFound(f"adapter {adapter_id} has no version {version}")
        schema, prefix = gone
        await conn.execute(
            "UPDATE artifact SET meta = meta || jsonb_build_object('last_version',"
            " greatest(coalesce((meta->>'last_version')::int, 0), %s::int)) WHERE id = %s",
            (version, key),
        )
        if prefix:
            shared = await (
                await conn.execute(
                    "SELECT 1 FROM artifact_version WHERE artifact_id = %(id)s"
                    " AND coalesce(fs_path, schema->>'fs_dir') = %(prefix)s"
                    " UNION ALL SELECT 1 FROM artifact WHERE id = %(id)s AND fs_path = %(prefix)s",
                    {"id": key, "prefix": prefix},
                )
            ).fetchone()
            prefix = None if shared is not None else prefix
    return Discarded(key, owner, version, has_weights(schema), prefix or None)


def remove_files(s3: Any, bucket: str, discarded: Discarded) -> bool:
    """The discarded version's files (blocking: run it in a thread). False: nothing to do."""
    if not discarded.prefix:
        return False
    delete_version(s3, bucket, discarded.prefix)
    return True
