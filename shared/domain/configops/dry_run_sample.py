"""The past turns a dry-run replays: recent assistant messages whose trace names the artifact,
with their question (the parent message, which the trace does not copy), and the adapters'
current centroids (which the trace does not copy either)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

MAX_SAMPLE = 1000

# Which artifact a turn used: the router trace's policy id (older traces have it too, so they
# are counted as skipped), the inputs' workflow id (kept only since traces keep inputs).
_USED_BY = {
    "policy.routing": "m.meta->'trace'->'router'->>'policy_id'",
    "workflow.chat": "m.meta->'trace'->'inputs'->'workflow'->>'id'",
}

# Any routed turn: what an adapter's dry-run samples (its scope's recent traffic).
ROUTED = "m.meta->'trace' ? 'router'"

_TURNS = """
SELECT m.id::text AS message_id, m.conversation_id::text, u.content AS question,
       m.meta->'trace'->'inputs' AS inputs,
       m.meta->'trace'->'router'->'adapters' AS adapters,
       m.meta->'trace'->'workflow' AS nodes
  FROM message m
  JOIN conversation c ON c.id = m.conversation_id
  LEFT JOIN message u ON u.id = m.parent_id
 WHERE m.sender = 'assistant' AND {used_by}
   AND (%(owner)s::uuid IS NULL OR c.user_id = %(owner)s::uuid)
 ORDER BY m.created_at DESC, m.id DESC
 LIMIT %(limit)s
"""

_CENTROIDS = """
SELECT a.id::text AS id, s.centroid_vec::text AS centroid
  FROM artifact a LEFT JOIN adapter_router_state s ON s.artifact_id = a.id
 WHERE a.id::text = ANY(%(ids)s)
"""


@dataclass(frozen=True)
class PastTurn:
    message_id: str
    question: str | None  # None: the question was deleted
    inputs: dict[str, Any] | None  # None: the trace predates stored inputs
    adapters: list[dict[str, Any]]  # what the router chose then
    nodes: list[dict[str, Any]]  # the workflow trace then
    conversation_id: str | None = None  # the workflow's `input.conversation_id`


async def recent_turns(
    conn: psycopg.AsyncConnection,
    *,
    kind: str,
    artifact_id: str,
    owner_user_id: str | None,
    limit: int,
) -> list[PastTurn]:
    """Newest first. A user's private artifact: that user's turns only (`owner_user_id`);
    a global one (None): every user's turns that used it."""
    used_by = f"{_USED_BY[kind]} = %(artifact)s"
    return await _turns(conn, used_by, {"artifact": artifact_id}, owner_user_id, limit)


async def routed_turns(
    conn: psycopg.AsyncConnection, *, owner_user_id: str | None, limit: int
) -> list[PastTurn]:
    """Newest first: the user's routed turns (`owner_user_id`), or every user's (None)."""
    return await _turns(conn, ROUTED, {}, owner_user_id, limit)


async def _turns(
    conn: psycopg.AsyncConnection,
    used_by: str,
    params: dict[str, Any],
    owner_user_id: str | None,
    limit: int,
) -> list[PastTurn]:
    sql = _TURNS.format(used_by=used_by)
    params = {**params, "owner": owner_user_id, "limit": max(0, min(limit, MAX_SAMPLE))}
    cursor = await conn.cursor(row_factory=dict_row).execute(sql, params)
    return [
        PastTurn(
            row["message_id"],
            row["question"],
            row["inputs"],
            row["adapters"] or [],
            row["nodes"] or [],
            row["conversation_id"],
        )
        for row in await cursor.fetchall()
    ]


def _vector(text: str | None) -> tuple[float, ...] | None:
    return tuple(float(x) for x in text.strip("[]").split(",")) if text else None


async def current_centroids(
    conn: psycopg.AsyncConnection, adapter_ids: Iterable[str]
) -> dict[str, tuple[float, ...] | None]:
    """By id, each adapter that still exists with its centroid now (None: it has none); an
    id missing from the answer is an adapter deleted since."""
    ids = sorted(set(adapter_ids))
    if not ids:
        return {}
    cursor = await conn.cursor(row_factory=dict_row).execute(_CENTROIDS, {"ids": ids})
    return {row["id"]: _vector(row["centroid"]) for row in await cursor.fetchall()}
