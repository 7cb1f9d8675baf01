"""One cluster run of one scope (a user's events, or the consenting users' events globally),
and the schedule's choice of which runs are due.

A run is one transaction under the scope's advisory lock: read the events (their context
embeddings were cached at feedback time, so nothing is embedded again), cluster them, match
the new centroids to the scope's live clusters, upsert the clusters with their c-TF-IDF
keywords, retire the unmatched ones and replace the event mapping. A redelivered message
runs again and writes the same rows (the clustering is seeded). The model labels sizeable
clusters after the commit, so a slow or failing model never holds the lock or fails the run.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shared.domain.clusters import algorithm, labels, store
from shared.domain.clusters.algorithm import ClusterParams
from shared.domain.llm.backend import LLMBackend
from shared.platform import outbox
from shared.platform.db.pool import Connection, Pool

CLUSTER_QUEUE = "ClusterQueue"
LABEL_MIN_SIZE = 5  # a cluster the model labels (smaller ones keep their keywords)
MAX_MODEL_LABELS = 8  # per run: the model is slow on a CPU
SAMPLES = 5  # events kept on a cluster (nearest its centroid)
USER_PARAMS = ClusterParams()  # a user's few domains
GLOBAL_PARAMS = ClusterParams(k_max=24)  # many users' domains


@dataclass
class RunReport:
    scope: str
    user_id: str | None
    events: int = 0
    k: int = 0
    silhouette: dict[int, float] = field(default_factory=dict)
    clusters: list[str] = field(default_factory=list)
    created: int = 0
    kept: int = 0
    retired: int = 0
    labeled: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "silhouette": {str(k): v for k, v in self.silhouette.items()}}


@dataclass(frozen=True)
class _ToLabel:
    id: str
    keywords: list[str]
    samples: list[str]
    centroid: list[float]


async def run(
    pool: Pool, backend: LLMBackend | None, user_id: str | None,
    params: ClusterParams | None = None,
) -> RunReport:  # fmt: skip
    params = params or (USER_PARAMS if user_id else GLOBAL_PARAMS)
    started = time.perf_counter()
    report = RunReport(store.scope_of(user_id), user_id)
    async with pool.connection() as conn, conn.transaction():
        await store.lock(conn, user_id)
        found = await store.events(conn, user_id)
        old = await store.existing(conn, user_id)
        # CPU-bound (seconds for the global scope): off the event loop.
        result = await asyncio.to_thread(algorithm.cluster, found.vectors, params)
        to_label = await _write(conn, user_id, found, old, result, params, report)
    for item in to_label[:MAX_MODEL_LABELS]:
        if backend is None:
            break
        named = await labels.from_model(
            backend, item.samples, item.keywords, item.centroid, request_id=f"cluster:{item.id}"
        )
        if named is not None:
            async with pool.connection() as conn:
                report.labeled += await store.set_label(conn, item.id, item.keywords, *named)
    report.seconds = round(time.perf_counter() - started, 3)
    return report


async def _write(
    conn: Connection, user_id: str | None, found: store.Events, old: list[store.Existing],
    result: algorithm.Clustering, params: ClusterParams, report: RunReport,
) -> list[_ToLabel]:  # fmt: skip
    report.events, report.k, report.silhouette = (
        len(found.ids),
        len(result.centroids),
        dict(result.choice.scores),
    )
    old_centroids = np.stack([o.centroid for o in old]) if old else np.zeros((0, 384))
    pairs = algorithm.match(old_centroids, result.centroids, params.match_min_similarity)
    members = [np.flatnonzero(result.labels == i) for i in range(len(result.centroids))]
    terms = labels.keywords([[found.texts[j] for j in idx] for idx in members])
    ids: list[str] = []
    to_label: list[_ToLabel] = []
    for i, idx in enumerate(members):
        previous = old[pairs[i]] if i in pairs else None
        nearest = idx[np.argsort(-result.similarities[idx], kind="stable")][:SAMPLES]
        keep = previous is not None and previous.keywords == terms[i]
        positive = int(found.positive[idx].sum())
        cluster_id = await store.save(
            conn, user_id, previous.id if previous else None,
            store.ClusterWrite(
                centroid=result.centroids[i], size=len(idx), keywords=terms[i],
                label=labels.keyword_label(terms[i]), positive=positive,
                negative=len(idx) - positive,
                sample_event_ids=[found.ids[j] for j in nearest],
                sample_message_ids=[found.message_ids[j] for j in nearest],
                keep_label=keep,
            ),
        )  # fmt: skip
        ids.append(cluster_id)
        report.created += previous is None
        report.kept += previous is not None
        labelled = (
            keep and previous is not None and (previous.labeled_by == "model" or previous.described)
        )
        if len(idx) >= LABEL_MIN_SIZE and not labelled:
            samples = [found.texts[j] for j in nearest]
            to_label.append(_ToLabel(cluster_id, terms[i], samples, result.centroids[i].tolist()))
    matched = {old[j].id for j in pairs.values()}
    gone = [o.id for o in old if o.id not in matched]
    await store.retire(conn, gone)
    report.retired, report.clusters = len(gone), ids
    assigned = [ids[int(c)] for c in result.labels] if ids else []
    await store.map_events(
        conn, user_id, found.ids if ids else [], assigned,
        [float(s) for s in result.similarities] if ids else [],
    )  # fmt: skip
    return to_label


def message(user_id: str | None) -> dict[str, Any]:
    return {"scope": store.scope_of(user_id), "user_id": user_id}


async def due_users(conn: Connection, params: ClusterParams = USER_PARAMS) -> list[str]:
    """Users with enough events, some of them newer than their clusters' last run."""
    rows = await (
        await conn.execute(
            "SELECT e.user_id::text FROM preference_event e GROUP BY e.user_id"
            " HAVING count(*) >= %s AND max(e.updated_at) > coalesce((SELECT max(c.updated_at)"
            " FROM semantic_cluster c WHERE c.user_id = e.user_id), '-infinity')"
            " ORDER BY 1",
            (params.min_cluster_size,),
        )
    ).fetchall()
    return [r[0] for r in rows]


async def enqueue(conn: Connection, user_ids: list[str | None], *, key: str | None) -> int:
    """Queues a run per scope (None: the global one) through the outbox; `key` (the schedule's
    hour, say) makes a second enqueue of the same runs a no-op."""
    queued = 0
    for user_id in user_ids:
        dedup = f"cluster:{user_id or 'global'}:{key}" if key else None
        made = await outbox.enqueue(
            conn, queue=CLUSTER_QUEUE, body=message(user_id), dedup_key=dedup
        )
        queued += made is not None
    return queued
