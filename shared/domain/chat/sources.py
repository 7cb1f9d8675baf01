"""What a chat turn reads besides the conversation: the user's routing policy and workflow
(their own artifact, else the global default), the adapters they may use with their router
state (not the disabled ones, nor skills not trained yet), and the message's embedding
(cached in Redis per text: the same message is embedded once however often it is routed)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

from shared.domain.adapters.versions import has_weights
from shared.domain.llm.backend import LLMBackend
from shared.domain.preferences import persona
from shared.domain.routing.candidates import AdapterCandidate
from shared.platform.errors import NotFound, ServerError

DEFAULT_POLICY = "default_user_routing"
DEFAULT_WORKFLOW = "default_chat"
EMBEDDING_TTL_S = 7 * 86400


@dataclass(frozen=True)
class LoadedArtifact:
    id: str
    name: str
    version: int
    schema: dict[str, Any]


_BY_ID = """
SELECT id::text, name, version, schema FROM artifact
 WHERE id = %(id)s AND type = %(type)s
   AND (owner_user_id = %(user)s::uuid OR visibility IN ('shared', 'global'))
"""

# The user's own artifact of that type wins (most recently changed); else the named default.
_DEFAULT = """
SELECT id::text, name, version, schema FROM artifact
 WHERE type = %(type)s AND (owner_user_id = %(user)s::uuid
       OR (owner_user_id IS NULL AND name = %(default)s))
 ORDER BY (owner_user_id IS NULL), updated_at DESC LIMIT 1
"""

_ADAPTERS = """
SELECT a.id::text, a.name, a.version, a.schema, s.centroid_vec::text AS centroid,
       c.label AS cluster_label
  FROM artifact a
  LEFT JOIN adapter_router_state s ON s.artifact_id = a.id
  LEFT JOIN semantic_cluster c ON c.id::text = a.schema->>'cluster_id'
 WHERE a.type = 'adapter.lora'
   AND (a.owner_user_id = %(user)s::uuid OR a.visibility IN ('shared', 'global'))
 ORDER BY a.updated_at DESC LIMIT 200
"""


async def _one(conn: psycopg.AsyncConnection, sql: str, params: dict[str, Any]) -> Any:
    cursor = await conn.cursor(row_factory=dict_row).execute(sql, params)
    return await cursor.fetchone()


async def load_artifact(
    conn: psycopg.AsyncConnection, user_id: str, *, kind: str, artifact_id: str | None,
    default_name: str,
) -> LoadedArtifact:  # fmt: skip
    if artifact_id is not None:
        row = await _one(conn, _BY_ID, {"id": artifact_id, "type": kind, "user": user_id})
        if row is None:
            raise NotFound(f"no {kind} artifact {artifact_id}")
    else:
        row = await _one(conn, _DEFAULT, {"type": kind, "user": user_id, "default": default_name})
        if row is None:
            raise ServerError(f"no {kind} artifact: the seed {default_name!r} is missing")
    return LoadedArtifact(row["id"], row["name"], row["version"], row["schema"])


def _vector(text: str | None) -> tuple[float, ...] | None:
    return tuple(float(x) for x in text.strip("[]").split(",")) if text else None


def routable(schema: dict[str, Any]) -> bool:
    """Whether the router may choose the adapter at its served version: never a disabled one
    (pruned, or merged into another: SPEC §7.4), nor a skill with nothing to apply yet (no
    weights, remote id or instructions: made by ConfigOps, not trained yet). The persona is
    always offered: `persona.shape_candidates` decides how."""
    if schema.get("status") == "disabled":
        return False
    if str(schema.get("adapter_type") or "persona") == "persona":
        return True
    return has_weights(schema) or bool(
        schema.get("remote_adapter_id") or schema.get("remote_model_id")
        or schema.get("prompt_instructions")
    )  # fmt: skip


async def adapter_candidates(
    conn: psycopg.AsyncConnection, user_id: str
) -> tuple[AdapterCandidate, ...]:
    cursor = await conn.cursor(row_factory=dict_row).execute(_ADAPTERS, {"user": user_id})
    out = []
    for row in await cursor.fetchall():
        schema = row["schema"]
        if not routable(schema):
            continue
        out.append(
            AdapterCandidate(
                id=row["id"],
                adapter_type=str(schema.get("adapter_type") or "persona"),
                mode=schema.get("mode") or "local",
                version=row["version"],
                name=row["name"],
                cluster_id=schema.get("cluster_id"),
                cluster_label=row["cluster_label"],
                centroid=_vector(row["centroid"]),
                remote_model_id=schema.get("remote_model_id"),
                remote_adapter_id=schema.get("remote_adapter_id"),
                prompt_instructions=schema.get("prompt_instructions"),
            )
        )
    # The user's persona: its mode and instructions follow its weights (preferences.persona).
    return await persona.shape_candidates(conn, user_id, tuple(out))


async def embedding(redis: Any, backend: LLMBackend, text: str) -> tuple[float, ...]:
    key = "emb:minilm:" + hashlib.sha256(text.encode()).hexdigest()
    cached = await redis.get(key)
    if cached:
        return tuple(json.loads(cached))
    vector = (await backend.embed([text]))[0]
    await redis.set(key, json.dumps(vector), ex=EMBEDDING_TTL_S)
    return tuple(vector)
