"""Clusters in Postgres: the events a scope clusters, the clusters a run replaces, the event
mapping, the lists the API shows and the router's nearest clusters.

A scope is a user's events (`user_id`) or the global set (None): the events of users whose
`personalization.global_clustering` is on, and only those the content check let through.
The preference and personalization tables are read directly (this package sits beside, not
above, the preferences package)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pgvector import Vector

from shared.platform.db.cursor import newest_first
from shared.platform.db.pool import Connection

MAX_GLOBAL_EVENTS = 200_000  # the newest; older ones wait for a larger run budget
POSITIVE = ("like", "always")


@dataclass(frozen=True)
class Events:
    ids: list[int]
    message_ids: list[str]
    vectors: np.ndarray  # (n, 384) the events' context embeddings, cached at feedback time
    texts: list[str]
    positive: np.ndarray  # (n,) bool


@dataclass(frozen=True)
class Existing:
    id: str
    centroid: np.ndarray
    keywords: list[str]
    labeled_by: str | None
    described: bool  # the model gave it a description


def scope_of(user_id: str | None) -> str:
    return "user" if user_id else "global"


def _array(value: Any) -> np.ndarray:
    return np.asarray(value.to_numpy() if hasattr(value, "to_numpy") else value, np.float32)


async def lock(conn: Connection, user_id: str | None) -> None:
    """Serialises runs of one scope (a redelivered message, the schedule and an admin's run)."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"cluster:{user_id or '*'}",)
    )


_EVENTS = """
SELECT e.id, e.message_id::text, e.context_embedding,
       concat_ws(' ', e.context_text, e.corrected_text), e.explicit_signal IN ('like', 'always')
  FROM preference_event e
"""


async def events(conn: Connection, user_id: str | None) -> Events:
    if user_id:
        sql = _EVENTS + " WHERE e.user_id = %s ORDER BY e.id"
        params: tuple[Any, ...] = (user_id,)
    else:
        sql = _EVENTS + (
            " JOIN personalization p ON p.user_id = e.user_id AND p.global_clustering"
            " WHERE e.filtered_reason IS NULL ORDER BY e.id DESC LIMIT %s"
        )
        params = (MAX_GLOBAL_EVENTS,)
    rows = await (await conn.execute(sql, params)).fetchall()
    vectors = np.stack([_array(r[2]) for r in rows]) if rows else np.zeros((0, 384), np.float32)
    return Events([r[0] for r in rows], [r[1] for r in rows], vectors,
                  [r[3] or "" for r in rows], np.array([bool(r[4]) for r in rows]))  # fmt: skip


_EXISTING = (
    "SELECT id::text, centroid, keywords, labeled_by, description IS NOT NULL FROM semantic_cluster"
)


async def existing(conn: Connection, user_id: str | None) -> list[Existing]:
    """The scope's live clusters (retired ones are not matched again)."""
    sql = _EXISTING + (" WHERE user_id = %s" if user_id else " WHERE user_id IS NULL")
    params = (user_id,) if user_id else ()
    rows = await (
        await conn.execute(sql + " AND retired_at IS NULL ORDER BY created_at, id", params)
    ).fetchall()
    return [Existing(r[0], _array(r[1]), list(r[2]), r[3], r[4]) for r in rows]


@dataclass(frozen=True)
class ClusterWrite:
    centroid: np.ndarray
    size: int
    keywords: list[str]
    label: str
    positive: int
    negative: int
    sample_event_ids: list[int]
    sample_message_ids: list[str]
    keep_label: bool  # a matched cluster whose keywords held: its (model) label stays


async def save(
    conn: Connection, user_id: str | None, old_id: str | None, cluster: ClusterWrite
) -> str:
    """Updates the matched cluster `old_id`, or inserts a new one; returns its id."""
    values = {
        "user": user_id, "scope": scope_of(user_id), "centroid": Vector(cluster.centroid.tolist()),
        "size": cluster.size, "keywords": cluster.keywords, "label": cluster.label,
        "pos": cluster.positive, "neg": cluster.negative, "events": cluster.sample_event_ids,
        "messages": cluster.sample_message_ids, "keep": cluster.keep_label, "id": old_id,
    }  # fmt: skip
    if old_id is None:
        sql = (
            "INSERT INTO semantic_cluster (user_id, scope, centroid, size, keywords, label,"
            " labeled_by, positive_count, negative_count, sample_event_ids, sample_message_ids)"
            " VALUES (%(user)s, %(scope)s, %(centroid)s, %(size)s, %(keywords)s, %(label)s,"
            " 'keywords', %(pos)s, %(neg)s, %(events)s, %(messages)s::uuid[]) RETURNING id::text"
        )
    else:
        sql = (
            "UPDATE semantic_cluster SET centroid = %(centroid)s, size = %(size)s,"
            " keywords = %(keywords)s, positive_count = %(pos)s, negative_count = %(neg)s,"
            " sample_event_ids = %(events)s, sample_message_ids = %(messages)s::uuid[],"
            " label = CASE WHEN %(keep)s THEN label ELSE %(label)s END,"
            " description = CASE WHEN %(keep)s THEN description END,"
            " labeled_by = CASE WHEN %(keep)s THEN labeled_by ELSE 'keywords' END,"
            " updated_at = now() WHERE id = %(id)s RETURNING id::text"
        )
    row = await (await conn.execute(sql, values)).fetchone()
    assert row is not None
    return str(row[0])


async def retire(conn: Connection, ids: Sequence[str]) -> None:
    if ids:
        await conn.execute(
            "UPDATE semantic_cluster SET retired_at = now(), size = 0, updated_at = now()"
            " WHERE id = ANY(%s::uuid[])",
            (list(ids),),
        )


async def map_events(
    conn: Connection, user_id: str | None, event_ids: Sequence[int],
    cluster_ids: Sequence[str], similarities: Sequence[float],
) -> None:  # fmt: skip
    """Replaces the scope's event → cluster rows (and a user's `preference_event.cluster_id`)."""
    scope = scope_of(user_id)
    if user_id:
        await conn.execute(
            "DELETE FROM cluster_event ce USING preference_event e WHERE ce.event_id = e.id"
            " AND ce.scope = 'user' AND e.user_id = %s",
            (user_id,),
        )
    else:
        await conn.execute("DELETE FROM cluster_event WHERE scope = 'global'")
    await conn.execute(
        "INSERT INTO cluster_event (event_id, scope, cluster_id, similarity)"
        " SELECT e, %s, c, s FROM unnest(%s::bigint[], %s::uuid[], %s::real[]) AS t(e, c, s)",
        (scope, list(event_ids), list(cluster_ids), list(similarities)),
    )
    if user_id:
        await conn.execute(
            "UPDATE preference_event e SET cluster_id = ce.cluster_id FROM cluster_event ce"
            " WHERE ce.event_id = e.id AND ce.scope = 'user' AND e.user_id = %s"
            " AND e.cluster_id IS DISTINCT FROM ce.cluster_id",
            (user_id,),
        )


async def set_label(
    conn: Connection, cluster_id: str, keywords: Sequence[str], label: str | None,
    description: str | None,
) -> bool:  # fmt: skip
    """The model's label (None: the keywords' stays) and description, unless a later run
    changed the cluster's keywords meanwhile."""
    done = await conn.execute(
        "UPDATE semantic_cluster SET label = coalesce(%(label)s, label),"
        " labeled_by = CASE WHEN %(label)s::text IS NULL THEN labeled_by ELSE 'model' END,"
        " description = %(description)s, updated_at = now()"
        " WHERE id = %(id)s AND keywords = %(keywords)s AND retired_at IS NULL",
        {"label": label, "description": description, "id": cluster_id,
         "keywords": list(keywords)},
    )  # fmt: skip
    return done.rowcount == 1


# --- reading -----------------------------------------------------------------------------

# The skill adapter bound to a cluster (at most one: sql/020's artifact_skill_cluster_idx).
_LIST = """
SELECT id::text, scope, user_id::text, label, description, labeled_by, keywords, size,
       positive_count, negative_count, created_at, updated_at,
       (SELECT u.email::text FROM app_user u WHERE u.id = semantic_cluster.user_id),
       (SELECT jsonb_build_object(
                 'adapter_id', a.id::text, 'name', a.name, 'version', a.version,
                 'status', coalesce(a.schema->>'status', 'active'),
                 'has_weights', a.schema->>'fs_dir' IS NOT NULL
                                AND a.schema->>'checksum' IS NOT NULL)
          FROM artifact a WHERE a.type = 'adapter.lora'
           AND a.schema->>'cluster_id' = semantic_cluster.id::text)
  FROM semantic_cluster WHERE retired_at IS NULL
"""


async def page(
    conn: Connection, *, user_id: str | None, scope: str | None, cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """Live clusters, most recently updated first, with their owner's e-mail (None: global)
    and the skill adapter bound to each (None: none yet); `user_id` narrows to one user's."""
    sql, params = _LIST, dict[str, Any]()
    if user_id is not None:
        sql += " AND user_id = %(user)s"
        params["user"] = user_id
    if scope is not None:
        sql += " AND scope = %(scope)s"
        params["scope"] = scope
    return await newest_first(
        conn,
        sql,
        params,
        order=("updated_at", "id"),
        cursor=cursor,
        limit=limit,
        row=_row,
        key=lambda c: (c["updated_at"], c["id"]),
    )


def _row(r: Any) -> dict[str, Any]:
    names = ("id", "scope", "user_id", "label", "description", "labeled_by", "keywords", "size",
             "positive_count", "negative_count", "created_at", "updated_at",
             "owner_email", "skill")  # fmt: skip
    return dict(zip(names, r, strict=True))


_NEAREST = """
SELECT id::text, scope, label, keywords, size, 1 - (centroid <=> %(v)s) AS similarity
  FROM semantic_cluster WHERE {where} AND retired_at IS NULL AND centroid IS NOT NULL
 ORDER BY centroid <=> %(v)s LIMIT %(k)s
"""


async def nearest(
    conn: Connection, user_id: str, vector: Sequence[float] | None, *, limit: int = 3
) -> list[dict[str, Any]]:
    """The user's and the global clusters nearest `vector`, most similar first: the user's few
    sorted exactly, the global ones through the partial HNSW index."""
    if vector is None:
        return []
    params = {"v": Vector(list(vector)), "k": limit, "user": user_id}
    found: list[dict[str, Any]] = []
    for where in ("user_id = %(user)s", "user_id IS NULL"):
        rows = await (await conn.execute(_NEAREST.format(where=where), params)).fetchall()
        for r in rows:
            found.append({"id": r[0], "scope": r[1], "label": r[2], "keywords": list(r[3]),
                          "size": r[4], "similarity": round(float(r[5]), 4)})  # fmt: skip
    found.sort(key=lambda c: (-c["similarity"], c["id"]))
    return found[:limit]


async def set_consent(conn: Connection, user_id: str, allowed: bool) -> None:
    """The user's consent to global clustering. Withdrawing it also takes their events out of
    the global clusters at once (the next global run recomputes centroids without them)."""
    await conn.execute(
        "INSERT INTO personalization (user_id, global_clustering) VALUES (%s, %s)"
        " ON CONFLICT (user_id) DO UPDATE SET global_clustering = EXCLUDED.global_clustering,"
        " updated_at = now()",
        (user_id, allowed),
    )
    if not allowed:
        await conn.execute(
            "DELETE FROM cluster_event ce USING preference_event e WHERE ce.event_id = e.id"
            " AND ce.scope = 'global' AND e.user_id = %s",
            (user_id,),
        )


async def consent(conn: Connection, user_id: str) -> bool:
    row = await (
        await conn.execute(
            "SELECT global_clustering FROM personalization WHERE user_id = %s", (user_id,)
        )
    ).fetchone()
    return bool(row and row[0])
