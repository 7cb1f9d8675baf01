"""Artifacts and their versions in Postgres. Every function takes the acting
user: a private artifact of someone else is not found (never forbidden); a shared or global one
is readable by everyone, but only its owner changes or deletes it (admins also edit the
system's own, owner-less, artifacts). Each schema change writes the next `artifact_version`
under a row lock, so concurrent editors get consecutive versions and none is lost."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jsonpatch
import jsonpointer
import psycopg
from psycopg.types.json import Jsonb

from shared.domain.artifacts.checks import check
from shared.domain.artifacts.kinds import (
    MAX_SCHEMA_BYTES,
    SYSTEM_KINDS,
    fail,
    kind_of,
    problem,
    too_large,
    validate,
)
from shared.platform.db.cursor import (
    decode_cursor,
    encode_cursor,
    keyset_page,
    newest_first,
    probe_size,
)
from shared.platform.db.pool import Connection
from shared.platform.errors import Conflict, Forbidden, NotFound, ValidationError

VISIBILITIES = ("private", "shared", "global")
OWNERS = ("me", "global", "all")


@dataclass(frozen=True)
class Artifact:
    id: str
    type: str
    name: str
    description: str | None
    schema: dict[str, Any]
    visibility: str
    version: int
    owner: str  # "me" | "global" | "shared": never another user's id
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ArtifactVersion:
    artifact_id: str
    version: int
    schema: dict[str, Any]
    created_by: str
    change_note: str | None
    created_at: datetime


_READABLE = "(a.owner_user_id = %(user)s::uuid OR a.visibility IN ('shared', 'global'))"
_ARTIFACT = (
    "SELECT a.id::text, a.type, a.name, a.description, a.schema, a.visibility, a.version,"
    " CASE WHEN a.owner_user_id = %(user)s::uuid THEN 'me'"
    " WHEN a.visibility = 'global' OR a.owner_user_id IS NULL THEN 'global' ELSE 'shared' END,"
    " a.created_at, a.updated_at FROM artifact a"
)
_VERSION = (
    "SELECT v.artifact_id::text, v.version, v.schema, v.created_by, v.change_note, v.created_at,"
    " a.type, a.owner_user_id = %(user)s::uuid"
    " FROM artifact_version v JOIN artifact a ON a.id = v.artifact_id"
)


def _visible_schema(kind: str, schema: dict[str, Any], mine: bool) -> dict[str, Any]:
    # An adapter's object key holds its owner's user id: only the owner sees it.
    if kind in SYSTEM_KINDS and not mine and "fs_dir" in schema:
        return {k: v for k, v in schema.items() if k != "fs_dir"}
    return schema


def _artifact(row: tuple[Any, ...]) -> Artifact:
    item = Artifact(*row)
    schema = _visible_schema(item.type, item.schema, item.owner == "me")
    return item if schema is item.schema else dataclasses.replace(item, schema=schema)


def _version(row: tuple[Any, ...]) -> ArtifactVersion:
    *fields, kind, mine = row
    version = ArtifactVersion(*fields)
    schema = _visible_schema(kind, version.schema, bool(mine))
    return version if schema is version.schema else dataclasses.replace(version, schema=schema)


def _duplicate(name: str) -> Conflict:
    return Conflict(
        f"you already have an artifact of this type named {name!r}",
        details={"reason": "duplicate", "field": "name"},
    )


def _may_publish(visibility: str, is_admin: bool) -> None:
    if visibility == "global" and not is_admin:
        raise Forbidden("only admins make artifacts global")


def _may_hold(schema: dict[str, Any], is_admin: bool) -> None:
    if schema.get("privileged") and not is_admin:
        raise Forbidden("only admins define privileged tools")


async def create(
    conn: Connection,
    user_id: str,
    *,
    name: str,
    schema: Any,
    type: str | None = None,
    description: str | None = None,
    visibility: str = "private",
    is_admin: bool = False,
    created_by: str = "user",
) -> Artifact:
    """Version 1 of a new artifact; `type`, when given, must be the schema's kind.
    `created_by` (user | llm | system): who wrote it, recorded on the version."""
    if type is not None and type != kind_of(schema):
        raise fail("type and schema.kind differ", [
            problem(("kind",), f"the schema's kind must be the artifact type {type!r}")
        ])  # fmt: skip
    kind = validate(schema)
    if kind in SYSTEM_KINDS:
        raise fail(f"{kind} artifacts are made by training and publishing, not through the API",
                   [problem(("kind",), f"{kind} cannot be created here")])  # fmt: skip
    _may_publish(visibility, is_admin)
    _may_hold(schema, is_admin)
    try:
        async with conn.transaction():
            await check(conn, user_id, schema, visibility=visibility)
            row = await (
                await conn.execute(
                    "INSERT INTO artifact (owner_user_id, type, name, description, schema,"
                    " visibility, version) VALUES (%s, %s, %s, %s, %s, %s, 1) RETURNING id::text",
                    (user_id, kind, name, description, Jsonb(schema), visibility),
                )
            ).fetchone()
            assert row is not None
            await conn.execute(
                "INSERT INTO artifact_version (artifact_id, version, schema, created_by,"
                " change_note) VALUES (%s, 1, %s, %s, 'created')",
                (row[0], Jsonb(schema), created_by),
            )
            return await _get(conn, user_id, row[0])
    except psycopg.errors.UniqueViolation as exc:
        raise _duplicate(name) from exc


async def get(conn: Connection, user_id: str, artifact_id: str) -> Artifact:
    return await _get(conn, user_id, artifact_id)


async def list_for(
    conn: Connection,
    user_id: str,
    *,
    type: str | None = None,
    visibility: str | None = None,
    owner: str = "all",
    cursor: str | None = None,
    limit: int = 30,
) -> tuple[list[Artifact], str | None]:
    """What the user may read, most recently updated first (keyset on (updated_at, id)).
    `type` is a kind (`workflow.chat`) or its family (`workflow`); `owner` is me|global|all."""
    if owner not in OWNERS:
        raise ValidationError(f"owner must be one of {', '.join(OWNERS)}")
    where, params = [_READABLE], {"user": user_id}
    if owner == "me":
        where.append("a.owner_user_id = %(user)s::uuid")
    elif owner == "global":
        where.append("a.visibility = 'global'")
    if type:
        where.append("(a.type = %(type)s OR split_part(a.type, '.', 1) = %(type)s)")
        params["type"] = type
    if visibility:
        where.append("a.visibility = %(visibility)s")
        params["visibility"] = visibility
    return await newest_first(
        conn, f"{_ARTIFACT} WHERE {' AND '.join(where)}", params,
        order=("a.updated_at", "a.id"), cursor=cursor, limit=limit, row=_artifact,
        key=lambda a: (a.updated_at, a.id),
    )  # fmt: skip


async def update(
    conn: Connection,
    user_id: str,
    artifact_id: str,
    *,
    patch: list[dict[str, Any]] | None = None,
    schema: Any = None,
    name: str | None = None,
    description: str | None = None,
    visibility: str | None = None,
    change_note: str | None = None,
    base_version: int | None = None,
    is_admin: bool = False,
    created_by: str = "user",
) -> Artifact:
    """Applies a JSON Patch (RFC 6902) or a whole new schema and/or new metadata. A changed
    schema is validated and checked again and becomes version N+1 (created_by as given);
    `base_version`, when given, must still be the current version (else 409 stale_version)."""
    if patch is not None and schema is not None:
        raise ValidationError("send either a JSON Patch or a whole schema, not both")
    try:
        async with conn.transaction():
            owner, kind, current, version, old_visibility = await _lock_visible(
                conn, user_id, artifact_id
            )
            if owner != user_id and not (owner is None and is_admin):
                raise Forbidden("only the owner changes this artifact")
            if base_version is not None and base_version != version:
                raise Conflict(
                    f"the artifact is at version {version}, not {base_version}",
                    details={"reason": "stale_version", "current_version": version},
                )
            new = _apply(current, patch) if patch is not None else schema
            changed = new is not None and new != current
            if changed:
                _revalidate(kind, new)
            new_visibility = visibility or old_visibility
            if new_visibility != old_visibility:
                _may_publish(new_visibility, is_admin)
            final = new if changed else current
            _may_hold(final, is_admin)
            if changed or new_visibility != old_visibility:
                await check(conn, owner, final, visibility=new_visibility)
            await conn.execute(
                "UPDATE artifact SET name = coalesce(%s, name),"
                " description = coalesce(%s, description), visibility = %s, schema = %s,"
                " version = %s, updated_at = now() WHERE id = %s",
                (name, description, new_visibility, Jsonb(final),
                 version + 1 if changed else version, artifact_id),
            )  # fmt: skip
            if changed:
                await conn.execute(
                    "INSERT INTO artifact_version (artifact_id, version, schema, created_by,"
                    " change_note) VALUES (%s, %s, %s, %s, %s)",
                    (artifact_id, version + 1, Jsonb(final), created_by, change_note),
                )
            return await _get(conn, user_id, artifact_id)
    except psycopg.errors.UniqueViolation as exc:
        raise _duplicate(name or "") from exc


def _apply(current: dict[str, Any], patch: list[dict[str, Any]]) -> Any:
    """Op by op, so a failure names the operation and its path, and a patch that copies the
    document into itself stops growing at MAX_SCHEMA_BYTES."""
    document: Any = copy.deepcopy(current)
    for index, op in enumerate(patch):
        try:
            document = jsonpatch.apply_patch(document, [op], in_place=True)
            if op.get("op") in ("add", "copy", "replace") and too_large(document):
                raise fail("the patched schema is too large",
                           [problem((), f"over {MAX_SCHEMA_BYTES} bytes of JSON")])  # fmt: skip
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException,
                TypeError, KeyError) as exc:  # fmt: skip
            path = op.get("path")
            at = path if isinstance(path, str) else ""
            raise fail("the JSON Patch does not apply", [
                {"path": at[:500], "message": f"operation {index}: {exc}"[:300]}
            ]) from exc  # fmt: skip
    return document


def _revalidate(kind: str, schema: Any) -> None:
    if kind in SYSTEM_KINDS:
        raise fail(f"{kind} schemas are written by training and publishing", [
            problem((), "only name, description and visibility of an adapter change here")
        ])  # fmt: skip
    if kind_of(schema) != kind:
        raise fail("the kind of an artifact never changes",
                   [problem(("kind",), f"must stay {kind!r}")])  # fmt: skip
    validate(schema)


async def _lock_visible(
    conn: psycopg.AsyncConnection, user_id: str, artifact_id: str
) -> tuple[Any, ...]:
    """(owner, type, schema, version, visibility) of an artifact the user may read, locked
    for the change; 404 for anything else (no existence leak)."""
    row = await (
        await conn.execute(
            "SELECT a.owner_user_id::text, a.type, a.schema, a.version, a.visibility"
            " FROM artifact a WHERE a.id = %(id)s AND (a.owner_user_id = %(user)s::uuid"
            " OR a.visibility IN ('shared', 'global')) FOR UPDATE",
            {"id": artifact_id, "user": user_id},
        )
    ).fetchone()
    if row is None:
        raise NotFound("no such artifact")
    return tuple(row)


async def delete(conn: Connection, user_id: str, artifact_id: str) -> list[str]:
    """Deletes the artifact with its versions; answers the object-store prefixes of an adapter's
    versions, for the caller to remove once this has committed."""
    async with conn.transaction():
        owner, *_ = await _lock_visible(conn, user_id, artifact_id)
        if owner != user_id:
            raise Forbidden("only the owner deletes this artifact")
        prefixes = await (
            await conn.execute(
                "SELECT DISTINCT coalesce(v.fs_path, v.schema->>'fs_dir') FROM artifact_version v"
                " JOIN artifact a ON a.id = v.artifact_id WHERE a.id = %s"
                " AND a.type = 'adapter.lora' AND coalesce(v.fs_path, v.schema->>'fs_dir') <> ''",
                (artifact_id,),
            )
        ).fetchall()
        await conn.execute("DELETE FROM artifact WHERE id = %s", (artifact_id,))
    return sorted(p for (p,) in prefixes if p)


async def versions(
    conn: Connection,
    user_id: str,
    artifact_id: str,
    *,
    cursor: str | None = None,
    limit: int = 30,
) -> tuple[list[ArtifactVersion], str | None]:
    """Newest first; the cursor holds the last version number seen."""
    params: dict[str, Any] = {"id": artifact_id, "user": user_id, "limit": probe_size(limit),
                              "before": None}  # fmt: skip
    if cursor:
        (before,) = decode_cursor(cursor, 1)
        if not isinstance(before, int):
            raise ValidationError("invalid cursor")
        params["before"] = before
    await _get(conn, user_id, artifact_id)
    rows = await (
        await conn.execute(
            f"{_VERSION} WHERE v.artifact_id = %(id)s AND {_READABLE}"
            " AND (%(before)s::int IS NULL OR v.version < %(before)s::int)"
            " ORDER BY v.version DESC LIMIT %(limit)s",
            params,
        )
    ).fetchall()
    return keyset_page([_version(row) for row in rows], limit, lambda v: encode_cursor(v.version))


async def version(conn: Connection, user_id: str, artifact_id: str, number: int) -> ArtifactVersion:
    row = await (
        await conn.execute(
            f"{_VERSION} WHERE v.artifact_id = %(id)s AND v.version = %(number)s AND {_READABLE}",
            {"id": artifact_id, "number": number, "user": user_id},
        )
    ).fetchone()
    if row is None:
        raise NotFound("no such artifact version")
    return _version(row)


async def _get(conn: psycopg.AsyncConnection, user_id: str, artifact_id: str) -> Artifact:
    row = await (
        await conn.execute(
            f"{_ARTIFACT} WHERE a.id = %(id)s AND {_READABLE}", {"id": artifact_id, "user": user_id}
        )
    ).fetchone()
    if row is None:
        raise NotFound("no such artifact")
    return _artifact(row)
