"""Adapters as artifacts: an `adapter.lora` artifact row whose `version` is the pointer to
the version served, and an `artifact_version` row per version whose schema records where the
files are and their checksum (and, for a trained version, its job, metrics and training
config). Versions are numbered max + 1 (`versions.next_number`), never pointer + 1, so a
version kept as a candidate (not served) or left behind by a rollback keeps its number and its
files; serving another version moves the pointer only (`versions.point`).

`publish` writes the files first and the rows after, in one transaction, so a reader never
resolves a version whose files are not there; `resolve` reads the version a request gets (the
served one unless it names another)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from shared.domain.adapters import versions
from shared.domain.adapters.objects import CONFIG_FILE, delete_version, put_version, version_prefix
from shared.platform.db.pool import Connection, Pool
from shared.platform.errors import Conflict, NotFound

KIND = "adapter.lora"
ADAPTER_TYPES = ("persona", "skill", "domain", "style")


@dataclass(frozen=True)
class AdapterRecord:
    adapter_id: str
    owner_user_id: str | None
    name: str
    version: int
    checksum: str
    prefix: str
    rank: int
    alpha: float
    adapter_type: str
    visibility: str

    @property
    def key(self) -> tuple[str, int]:
        return (self.adapter_id, self.version)


@dataclass(frozen=True)
class AdapterFiles:
    """One adapter version as PEFT writes it: `adapter_config.json` and
    `adapter_model.safetensors`, with the checksum over both, and optionally
    `training_config.json` (outside the checksum: serving never reads it). The model package
    (or a trainer) makes them; this module only stores them and records what the config
    says."""

    files: dict[str, bytes]
    checksum: str

    def config(self) -> dict[str, Any]:
        config: dict[str, Any] = json.loads(self.files[CONFIG_FILE])
        return config


def adapter_schema(
    adapter: AdapterFiles, *, prefix: str, adapter_type: str, version: int
) -> dict[str, Any]:
    """The artifact's schema (the adapter kind's fields, plus what loading needs)."""
    config = adapter.config()
    return {
        "kind": KIND,
        "mode": "local",
        "backend": "local",
        "provider": "local",
        "format": "peft",
        "base_model": config["base_model_name_or_path"],
        "adapter_type": adapter_type,
        "rank": int(config["r"]),
        "alpha": float(config["lora_alpha"]),
        "target_modules": sorted(config["target_modules"]),
        "fs_dir": prefix,
        "checksum": adapter.checksum,
        "version": version,
        "remote_model_id": None,
        "prompt_instructions": None,
    }


_RESOLVE = """
SELECT a.id::text, a.owner_user_id::text, a.name, v.version, v.schema, a.visibility
  FROM artifact a JOIN artifact_version v ON v.artifact_id = a.id
 WHERE a.id = %(id)s AND a.type = 'adapter.lora'
   AND v.version = COALESCE(%(version)s, a.version)
   AND (%(user)s::uuid IS NULL OR a.owner_user_id = %(user)s::uuid
        OR a.visibility IN ('shared', 'global'))
"""


async def resolve(
    conn: Connection,
    adapter_id: str,
    version: int | None = None,
    *,
    user_id: str | None = None,
) -> AdapterRecord:
    """The record of one adapter version; `user_id` limits it to what that user may use.
    Unknown, foreign and malformed ids all answer NotFound (no existence leak)."""
    try:
        key = str(uuid.UUID(adapter_id))
    except ValueError:
        raise NotFound(f"adapter {adapter_id!r} not found") from None
    cursor = await conn.execute(_RESOLVE, {"id": key, "version": version, "user": user_id})
    row = await cursor.fetchone()
    if row is None:
        which = f" version {version}" if version is not None else ""
        raise NotFound(f"adapter {adapter_id!r}{which} not found")
    artifact_id, owner, name, number, schema, visibility = row
    return AdapterRecord(
        adapter_id=artifact_id,
        owner_user_id=owner,
        name=name,
        version=number,
        checksum=schema["checksum"],
        prefix=schema["fs_dir"],
        rank=int(schema["rank"]),
        alpha=float(schema["alpha"]),
        adapter_type=schema.get("adapter_type", "persona"),
        visibility=visibility,
    )


async def publish(
    pool: Pool,
    s3: Any,
    bucket: str,
    adapter: AdapterFiles,
    *,
    owner_user_id: str | None,
    name: str,
    adapter_id: str | None = None,
    adapter_type: str = "persona",
    visibility: str = "private",
    created_by: str = "system",
    change_note: str | None = None,
    serve: bool = True,
    extra_schema: Mapping[str, Any] | None = None,
) -> AdapterRecord:
    """A new adapter (no `adapter_id`; its version 1 is served) or its next version, numbered
    max + 1 (`versions.next_number`). `serve`: the pointer moves to the new version; otherwise
    it is only a candidate row (an admin may serve it later). `extra_schema`: fields the version
    carries besides the kind's (a trained version's `job_id`, `metrics`, `promoted`,
    `training_config`); they may not replace those. Two publishers racing for the same number:
    one wins, the other gets Conflict and its files are removed."""
    if adapter_type not in ADAPTER_TYPES:
        raise ValueError(f"adapter_type must be one of {ADAPTER_TYPES}")
    new = adapter_id is None
    if adapter_id is None:
        if not serve:
            raise ValueError("a new adapter serves its first version")
        adapter_id, version = str(uuid.uuid4()), 1
    else:
        version = await _next_version(pool, adapter_id, owner_user_id)
    prefix = version_prefix(owner_user_id, adapter_id, version)
    schema = adapter_schema(adapter, prefix=prefix, adapter_type=adapter_type, version=version)
    clash = sorted(set(extra_schema or {}) & set(schema))
    if clash:
        raise ValueError(f"extra_schema may not replace {clash}")
    schema = {**schema, **(extra_schema or {})}
    await asyncio.to_thread(put_version, s3, bucket, prefix, adapter.files)
    try:
        async with pool.connection() as conn, conn.transaction():
            if new:
                await conn.execute(
                    "INSERT INTO artifact (id, owner_user_id, type, name, schema, fs_path,"
                    " version, visibility) VALUES (%s, %s, %s, %s, %s, %s, 1, %s)",
                    (adapter_id, owner_user_id, KIND, name, Jsonb(schema), prefix, visibility),
                )
            elif await _locked_next_version(conn, adapter_id) != version:
                raise Conflict(f"adapter {adapter_id} changed while publishing; retry")
            await conn.execute(
                "INSERT INTO artifact_version (artifact_id, version, schema, fs_path,"
                " created_by, change_note) VALUES (%s, %s, %s, %s, %s, %s)",
                (adapter_id, version, Jsonb(schema), prefix, created_by, change_note),
            )
            if serve and not new:
                await versions.point(conn, adapter_id, version)
    except BaseException as exc:
        await asyncio.to_thread(delete_version, s3, bucket, prefix)
        if isinstance(exc, psycopg.errors.UniqueViolation):
            raise Conflict(f"an adapter named {name!r} exists already") from exc
        raise
    return AdapterRecord(
        adapter_id=adapter_id,
        owner_user_id=owner_user_id,
        name=name,
        version=version,
        checksum=adapter.checksum,
        prefix=prefix,
        rank=schema["rank"],
        alpha=schema["alpha"],
        adapter_type=adapter_type,
        visibility=visibility,
    )


async def promote(conn: Connection, adapter_id: str, version: int, *, over: int) -> bool:
    """Serves `version` (a trained version the trainer promoted) if the version it was judged
    against, `over`, is still the one served: a rollback or an approval made while it trained
    stands. False when the pointer did not move."""
    row = await (
        await conn.execute(
            "SELECT version FROM artifact WHERE id = %s AND type = 'adapter.lora' FOR UPDATE",
            (adapter_id,),
        )
    ).fetchone()
    if row is None or int(row[0]) != over:
        return False
    return (await versions.point(conn, adapter_id, version)).moved


async def annotate_version(
    conn: Connection, adapter_id: str, version: int, fields: Mapping[str, Any]
) -> None:
    """Merges `fields` into one version's schema (and the artifact's, while it is served)."""
    await conn.execute(
        "UPDATE artifact_version SET schema = schema || %s WHERE artifact_id = %s AND version = %s",
        (Jsonb(dict(fields)), adapter_id, version),
    )
    await conn.execute(
        "UPDATE artifact SET schema = schema || %s WHERE id = %s AND version = %s",
        (Jsonb(dict(fields)), adapter_id, version),
    )


async def _next_version(pool: Pool, adapter_id: str, owner_user_id: str | None) -> int:
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT 1 FROM artifact WHERE id = %s AND type = 'adapter.lora'"
            " AND owner_user_id IS NOT DISTINCT FROM %s",
            (str(uuid.UUID(adapter_id)), owner_user_id),
        )
        if await cursor.fetchone() is None:
            raise NotFound(f"adapter {adapter_id!r} not found")
        return await versions.next_number(conn, adapter_id)


async def _locked_next_version(conn: Connection, adapter_id: str) -> int:
    """The next number (`versions.next_number`), with the artifact row locked for this
    transaction."""
    await conn.execute("SELECT 1 FROM artifact WHERE id = %s FOR UPDATE", (adapter_id,))
    return await versions.next_number(conn, adapter_id)
