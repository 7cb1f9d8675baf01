"""A skill adapter's training jobs (issue 20 item 4, SPEC §7.3): what sets them apart from a
persona's (jobs.py drives both through the same life).

A skill job is a `training_job` row with `kind = 'skill'`: `adapter_id` the skill adapter,
`user_id` its owner (NULL for a global skill: the job has no single user), `cluster_ids` the
clusters it trains on (its own; a merge adds the merged skill's). ConfigOps queues it when it
applies a new skill or a merge (`enqueue`, in the patch's transaction, with its TrainQueue
message through the outbox), at most one queued or running per adapter.

Its dataset is the events mapped to its clusters (`cluster_event`, either scope), newest first,
at most `meta.max_events`, never one the content check refused; from a global cluster only the
events of users who still allow global clustering (`personalization.global_clustering`: a user
who withdrew consent has their feedback shape no skill others get). It is snapshotted when the
job starts, like a persona job's, but it leaves `preference_event.job_id` alone: that column
is the persona's bookkeeping of which events are new, and a skill's training does not make a
user's feedback any less new for their persona. No persona lock, no persona instructions, no
scheduling of the next job when it ends.
"""

from __future__ import annotations

from collections.abc import Sequence

from psycopg.types.json import Jsonb

from shared.domain.preferences.schedule import TRAIN_QUEUE, TrainingPolicy, dedup_key, message
from shared.platform import outbox
from shared.platform.db.pool import Connection
from shared.platform.errors import NotFound

KIND = "skill"
# A skill serves every user of its scope, and no tier waits behind another for it.
PRIORITY = 1

_DATASET = """
SELECT e.id FROM preference_event e
 WHERE e.filtered_reason IS NULL
   AND EXISTS (
       SELECT 1 FROM cluster_event ce
        WHERE ce.event_id = e.id AND ce.cluster_id = ANY(%(clusters)s::uuid[])
          AND (ce.scope = 'user' OR EXISTS (
               SELECT 1 FROM personalization p
                WHERE p.user_id = e.user_id AND p.global_clustering)))
 ORDER BY e.updated_at DESC, e.id DESC LIMIT %(n)s
"""


async def dataset_ids(conn: Connection, cluster_ids: Sequence[str], limit: int) -> list[int]:
    """The events a skill job over `cluster_ids` trains on now, newest first (module
    docstring)."""
    cursor = await conn.execute(_DATASET, {"clusters": list(cluster_ids), "n": limit})
    return [row[0] for row in await cursor.fetchall()]


async def enqueue(
    conn: Connection, *, adapter_id: str, cluster_ids: Sequence[str], reason: str,
    policy: TrainingPolicy, step_budget: int,
) -> str | None:  # fmt: skip
    """Queues the skill adapter's job over `cluster_ids` and its TrainQueue message, in the
    caller's transaction (the caller flushes the outbox after its commit, or the relay sends
    it). Returns the job's id; None when the adapter has a queued or running skill job already
    (then nothing is added: that job's clusters stand). `reason` is recorded as the job's
    `trigger`."""
    clusters = list(dict.fromkeys(str(c) for c in cluster_ids))
    if not clusters:
        raise ValueError("a skill job trains on at least one cluster")
    owner = await (
        await conn.execute(
            "SELECT owner_user_id::text FROM artifact WHERE id = %s AND type = 'adapter.lora'",
            (adapter_id,),
        )
    ).fetchone()
    if owner is None:
        raise NotFound(f"adapter {adapter_id} not found")
    dataset = await dataset_ids(conn, clusters, policy.max_events)
    meta = {
        "attempt": 1, "max_attempts": policy.max_attempts, "priority": PRIORITY,
        "step_budget": step_budget, "max_events": policy.max_events, "trigger": reason[:500],
    }  # fmt: skip
    row = await (
        await conn.execute(
            "INSERT INTO training_job (adapter_id, user_id, kind, cluster_ids, status,"
            " num_events, preference_event_ids, meta)"
            " VALUES (%s, %s, 'skill', %s::uuid[], 'queued', %s, %s, %s)"
            " ON CONFLICT (adapter_id) WHERE status IN ('queued', 'running') AND kind = 'skill'"
            " DO NOTHING RETURNING id::text",
            (adapter_id, owner[0], clusters, len(dataset), dataset, Jsonb(meta)),
        )
    ).fetchone()
    if row is None:  # the adapter's active job (the partial unique index)
        return None
    job_id: str = row[0]
    await outbox.enqueue(
        conn, queue=TRAIN_QUEUE, body=message(job_id), dedup_key=dedup_key(job_id, 1)
    )
    return job_id


# --- retraining: a merge, and new feedback in a skill's clusters ------------------------------

# A skill's clusters: its own, and those of the skills merged into it (their events are what
# the merge made it learn, so every later job trains on them too).
_CLUSTERS = """
SELECT schema->>'cluster_id' FROM artifact
 WHERE type = 'adapter.lora' AND schema->>'cluster_id' IS NOT NULL
   AND (id = %(id)s OR schema->>'merged_into' = %(id)s::text)
 ORDER BY (id = %(id)s) DESC, created_at, id
"""


async def clusters_of(conn: Connection, adapter_id: str) -> list[str]:
    cursor = await conn.execute(_CLUSTERS, {"id": adapter_id})
    return [row[0] for row in await cursor.fetchall()]


async def retrain(
    conn: Connection, *, adapter_id: str, reason: str, policy: TrainingPolicy, step_budget: int,
) -> str | None:  # fmt: skip
    """A job over the skill's clusters now (`clusters_of`): a new one, or the queued one
    widened to them (it snapshots its events when it starts, so it trains on them all).
    None while a job runs: the next retraining (`retrain_due`) covers what it missed."""
    clusters = await clusters_of(conn, adapter_id)
    if not clusters:
        return None
    made = await enqueue(conn, adapter_id=adapter_id, cluster_ids=clusters, reason=reason,
                         policy=policy, step_budget=step_budget)  # fmt: skip
    if made is not None:
        return made
    widened = await (
        await conn.execute(
            "UPDATE training_job SET cluster_ids = ARRAY(SELECT DISTINCT unnest(cluster_ids ||"
            " %s::uuid[])), updated_at = now() WHERE adapter_id = %s AND kind = 'skill'"
            " AND status = 'queued' RETURNING id::text",
            (clusters, adapter_id),
        )
    ).fetchone()
    return widened[0] if widened else None


# Active skills of a scope (NULL: the global ones) with no job under way, and how many events
# their clusters gained since they last trained (or were made).
_DUE = """
SELECT a.id::text, count(DISTINCT e.id) AS fresh
  FROM artifact a
  LEFT JOIN adapter_router_state s ON s.artifact_id = a.id
  JOIN artifact m ON m.type = 'adapter.lora' AND m.schema->>'cluster_id' IS NOT NULL
   AND (m.id = a.id OR m.schema->>'merged_into' = a.id::text)
  JOIN cluster_event ce ON ce.cluster_id::text = m.schema->>'cluster_id'
  JOIN preference_event e ON e.id = ce.event_id AND e.filtered_reason IS NULL
   AND e.updated_at > coalesce(s.last_trained_at, a.created_at)
   AND (ce.scope = 'user' OR EXISTS (SELECT 1 FROM personalization p
                                      WHERE p.user_id = e.user_id AND p.global_clustering))
 WHERE a.type = 'adapter.lora' AND a.schema->>'adapter_type' = 'skill'
   AND coalesce(a.schema->>'status', 'active') = 'active'
   AND a.owner_user_id IS NOT DISTINCT FROM %(owner)s::uuid
   AND NOT EXISTS (SELECT 1 FROM training_job j WHERE j.adapter_id = a.id AND j.kind = 'skill'
                   AND j.status IN ('queued', 'running'))
 GROUP BY a.id HAVING count(DISTINCT e.id) >= %(threshold)s
 ORDER BY a.id
"""


async def retrain_due(
    conn: Connection, *, owner_user_id: str | None, threshold: int, policy: TrainingPolicy,
    step_budget: int,
) -> list[str]:  # fmt: skip
    """After a cluster run of a scope (a user's, or None: the global one): each of its active
    skills whose clusters gained at least `threshold` events since it last trained gets a job,
    as a persona does when its user's feedback reaches the threshold. The job ids."""
    cursor = await conn.execute(_DUE, {"owner": owner_user_id, "threshold": threshold})
    made = []
    for adapter_id, fresh in await cursor.fetchall():
        job_id = await retrain(
            conn, adapter_id=adapter_id, reason=f"{fresh} new events in its clusters",
            policy=policy, step_budget=step_budget,
        )  # fmt: skip
        if job_id is not None:
            made.append(job_id)
    return made
