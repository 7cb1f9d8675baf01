"""What the router knows of an adapter besides its artifact (`adapter_router_state`): the
centroid of the contexts it was trained on (`centroid_vec`, what `adapter_centroid` means in a
routing policy), when it was last trained, and how its answers were rated (`success_score`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pgvector import Vector

from shared.platform.db.pool import Connection


def _array(vector: Any) -> np.ndarray:
    """A vector as pgvector's psycopg adapter reads it (`Vector`), or any sequence."""
    return np.asarray(vector.to_numpy() if isinstance(vector, Vector) else vector, np.float64)


def moved_centroid(
    current: Any | None, embeddings: Sequence[Any], *, ema: float
) -> list[float] | None:
    """An exponential moving average over training jobs: the centroid moves `ema` of the way
    toward the mean of this job's context embeddings (the first job's mean is the centroid),
    normalized, as the embeddings are (cosine). None without embeddings."""
    if not embeddings:
        return None
    mean = np.mean([_array(e) for e in embeddings], axis=0)
    moved = mean if current is None else (1.0 - ema) * _array(current) + ema * mean
    norm = float(np.linalg.norm(moved))
    return [float(x) for x in (moved / norm if norm > 0 else moved)]


async def record_training(
    conn: Connection, adapter_id: str, embeddings: Sequence[Any], *, ema: float
) -> list[float] | None:
    """After a trained version is served: the centroid moves toward the contexts it learned
    from, and `last_trained_at` is now. Returns the new centroid."""
    row = await (
        await conn.execute(
            "SELECT centroid_vec FROM adapter_router_state WHERE artifact_id = %s FOR UPDATE",
            (adapter_id,),
        )
    ).fetchone()
    centroid = moved_centroid(row[0] if row is not None else None, embeddings, ema=ema)
    await conn.execute(
        "INSERT INTO adapter_router_state AS s (artifact_id, centroid_vec, last_trained_at)"
        " VALUES (%(id)s, %(centroid)s, now()) ON CONFLICT (artifact_id) DO UPDATE SET"
        " centroid_vec = coalesce(EXCLUDED.centroid_vec, s.centroid_vec),"
        " last_trained_at = now(),"
        " meta = s.meta || jsonb_build_object('centroid_events',"
        "   coalesce((s.meta->>'centroid_events')::int, 0) + %(n)s)",
        {"id": adapter_id, "centroid": Vector(centroid) if centroid else None,
         "n": len(embeddings)},
    )  # fmt: skip
    return centroid
