"""The dry-run of an adapter patch (configops.adapter_patches): what recent traffic says of it.

- A new skill: of its scope's recent routed turns (the cluster's user's, or every user's for a
  global cluster), those whose stored context embedding is near enough the cluster's centroid
  for the seeded policy's `cluster_near_skill` rule to have offered the skill (cosine above
  `OFFER_THRESHOLD`).
- A disable, merge or re-enable: of its scope's recent routed turns, those the router gave
  this adapter (the trace's router adapters), the newest of them, and its router state
  (usage, success score, last use).

Deterministic (newest turns first, ties by id), read-only, no model call."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from psycopg.rows import dict_row

from shared.domain.configops.adapter_patches import ACTIVE, cluster_of, status_of
from shared.domain.configops.dry_run_sample import PastTurn, routed_turns
from shared.domain.expressions.functions import cosine_similarity
from shared.domain.routing import recorded

# The seeded default policy's `cluster_near_skill` rule: cosine(ctx, centroid) > 0.6.
OFFER_THRESHOLD = 0.6
MAX_EXAMPLES = 10


async def replay_adapter(
    conn: psycopg.AsyncConnection,
    *,
    artifact_id: str | None,
    owner_user_id: str | None,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    sample: int,
) -> dict[str, Any]:
    scope = "owner" if owner_user_id is not None else "all users"
    turns = await routed_turns(conn, owner_user_id=owner_user_id, limit=sample)
    summary: dict[str, Any] = {"kind": "adapter.lora", "sample": sample, "scope": scope}
    if artifact_id is None:
        centroid = await _cluster_centroid(conn, cluster_of(after))
        return {**summary, "change": "create", "cluster_id": cluster_of(after),
                **offered_turns(turns, centroid)}  # fmt: skip
    state = await _router_state(conn, artifact_id)
    return {**summary, "change": change_of(before, after),
            **active_turns(turns, artifact_id), "router_state": state}  # fmt: skip


def change_of(before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    """disable | merge | enable | applicability (what the patch does, in a word)."""
    if after.get("merged_into") and after.get("merged_into") != before.get("merged_into"):
        return "merge"
    if status_of(after) != status_of(before):
        return "enable" if status_of(after) == ACTIVE else "disable"
    return "applicability"


def _embedding(turn: PastTurn) -> tuple[float, ...] | None:
    stored = ((turn.inputs or {}).get("routing")) or {}
    try:
        return recorded.decode_vector(stored.get("embedding"))
    except (recorded.NotReplayable, ValueError):
        return None


def offered_turns(turns: Sequence[PastTurn], centroid: Sequence[float] | None) -> dict[str, Any]:
    """The pure core of a new skill's dry-run: the turns it would have been offered for."""
    near: list[dict[str, Any]] = []
    without = 0
    for turn in turns:
        embedding = _embedding(turn)
        if embedding is None or centroid is None or len(embedding) != len(centroid):
            without += 1
            continue
        similarity = cosine_similarity(embedding, centroid)
        if similarity > OFFER_THRESHOLD:
            near.append({"message_id": turn.message_id, "similarity": round(similarity, 4)})
    return {
        "selected": len(turns),
        "without_embedding": without,
        "threshold": OFFER_THRESHOLD,
        "would_offer": len(near),
        "examples": near[:MAX_EXAMPLES],
    }


def active_turns(turns: Sequence[PastTurn], adapter_id: str) -> dict[str, Any]:
    """The pure core of a disable's or merge's dry-run: the turns that had the adapter."""
    had = [
        {"message_id": turn.message_id, "weight": round(float(a.get("weight") or 0.0), 6)}
        for turn in turns
        for a in turn.adapters
        if isinstance(a, Mapping) and a.get("id") == adapter_id
    ]
    return {"selected": len(turns), "active_in": len(had), "examples": had[:MAX_EXAMPLES]}


async def _cluster_centroid(
    conn: psycopg.AsyncConnection, cluster_id: str | None
) -> tuple[float, ...] | None:
    if cluster_id is None:
        return None
    row = await (
        await conn.execute(
            "SELECT centroid::text FROM semantic_cluster WHERE id::text = %s", (cluster_id.lower(),)
        )
    ).fetchone()
    text = row[0] if row else None
    return tuple(float(x) for x in text.strip("[]").split(",")) if text else None


async def _router_state(conn: psycopg.AsyncConnection, artifact_id: str) -> dict[str, Any] | None:
    row = await (
        await conn.cursor(row_factory=dict_row).execute(
            "SELECT usage_count, success_score, last_used_at, last_trained_at"
            " FROM adapter_router_state WHERE artifact_id = %s",
            (artifact_id,),
        )
    ).fetchone()
    if row is None:
        return None
    return {
        "usage_count": int(row["usage_count"]),
        "success_score": row["success_score"],
        "last_used_at": row["last_used_at"].isoformat() if row["last_used_at"] else None,
        "last_trained_at": row["last_trained_at"].isoformat() if row["last_trained_at"] else None,
    }
