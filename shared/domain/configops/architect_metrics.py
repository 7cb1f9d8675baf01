"""What the architect reads: aggregate metrics of recent traffic, and the global artifacts it
may patch. Read-only SQL over the existing tables; counts only (no user's text or id leaves
here), so the prompt carries nothing private.

- Routing outcomes: assistant turns whose router trace names the global routing policy, by
  finish reason, by the type of adapter applied, and per rule how often it fired or erred.
- Workflow: per node of the global chat workflow, how often it ran and how it ended.
- Feedback (preference events on those answers): likes, dislikes and corrections by adapter
  type and by workflow node.
- Failures: turns that failed with no answer (by reason), training jobs failed or rejected,
  ingestions that failed, and ConfigOps patches by status (so it sees its rejected ones).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from psycopg.rows import dict_row

from shared.domain.configops.architect_prompt import Target
from shared.platform.db.pool import Connection

# The global artifacts it may patch: the seeded defaults every user without their own gets
# (sql/seed/001_default_artifacts.sql).
TARGETS = (("policy.routing", "default_user_routing"), ("workflow.chat", "default_chat"))
TOP = 8  # rows of each breakdown

_TARGETS = """
SELECT id::text, name, type, version, schema FROM artifact
 WHERE owner_user_id IS NULL AND visibility = 'global' AND (type, name) IN ({pairs})
 ORDER BY type
"""

_POSITIVE = "p.explicit_signal IN ('like', 'always') OR (p.explicit_signal IS NULL AND p.score > 0)"
_NEGATIVE = (
    "p.explicit_signal IN ('dislike', 'never') OR (p.explicit_signal IS NULL AND p.score < 0)"
)
_FEEDBACK = f"""count(*) AS events, count(*) FILTER (WHERE {_POSITIVE}) AS liked,
       count(*) FILTER (WHERE {_NEGATIVE}) AS disliked,
       count(*) FILTER (WHERE p.corrected_text IS NOT NULL) AS corrected"""

_USES_POLICY = "m.meta->'trace'->'router'->>'policy_id' = %(policy)s"
_USES_WORKFLOW = "m.meta->'trace'->'inputs'->'workflow'->>'id' = %(workflow)s"
_APPLIED = (  # each adapter applied to the answer, with its artifact (gone: type 'none')
    "LEFT JOIN LATERAL jsonb_array_elements(coalesce(m.meta->'adapters', '[]'::jsonb)) u ON true"
    " LEFT JOIN artifact a ON a.id::text = u->>'id'"
)
_RULES = "CROSS JOIN LATERAL jsonb_array_elements(m.meta->'trace'->'router'->'rules') r"
_NODES = "CROSS JOIN LATERAL jsonb_array_elements(m.meta->'trace'->'workflow') n"
_IS_ARRAY = "jsonb_typeof(m.meta->'trace'->{}) = 'array'"


def _turns(uses: str, join: str = "", also: str = "true") -> str:
    """Assistant turns of the window that used the artifact (`uses`)."""
    return (
        f" FROM message m {join} WHERE m.sender = 'assistant' AND m.created_at >= %(since)s"
        f" AND {uses} AND {also}"
    )


def _feedback(uses: str, join: str = "", also: str = "true") -> str:
    """Preference events of the window on answers that used the artifact."""
    return (
        f" FROM preference_event p JOIN message m ON m.id = p.message_id {join}"
        f" WHERE p.created_at >= %(since)s AND {uses} AND {also}"
    )


# Every query is built here from these constant fragments; values are always bound.
_GROUP = f" GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {TOP}"
_QUERIES: dict[str, str] = {
    "turns_by_finish_reason": "SELECT coalesce(m.meta->>'finish_reason', 'unknown') AS key,"
    " count(*) AS n" + _turns(_USES_POLICY) + _GROUP,
    "turns_by_adapter_type": "SELECT coalesce(a.schema->>'adapter_type', 'none') AS key,"
    " count(DISTINCT m.id) AS n" + _turns(_USES_POLICY, _APPLIED) + _GROUP,
    "rules": "SELECT r->>'id' AS key, count(*) AS evaluated,"
    " count(*) FILTER (WHERE (r->>'fired')::boolean) AS fired,"
    " count(*) FILTER (WHERE r ? 'error') AS errors"
    + _turns(_USES_POLICY, _RULES, _IS_ARRAY.format("'router'->'rules'"))
    + _GROUP,
    "nodes": "SELECT n->>'node' AS key, count(*) AS ran,"  # noqa: S608 - constant fragments
    " count(*) FILTER (WHERE n->>'outcome' IS DISTINCT FROM 'ok') AS not_ok"
    + _turns(_USES_WORKFLOW, _NODES, _IS_ARRAY.format("'workflow'"))
    + _GROUP,
    "feedback_by_adapter_type": "SELECT coalesce(a.schema->>'adapter_type', 'none') AS key,"
    f" {_FEEDBACK}" + _feedback(_USES_POLICY, _APPLIED) + _GROUP,
    "feedback_by_node": f"SELECT n->>'node' AS key, {_FEEDBACK}"
    + _feedback(_USES_WORKFLOW, _NODES, _IS_ARRAY.format("'workflow'"))
    + _GROUP,
    "failed_turns": "SELECT coalesce(m.meta->'turn_failed'->>'reason', 'unknown') AS key,"  # noqa: S608
    " count(*) AS n FROM message m WHERE m.sender = 'user' AND m.created_at >= %(since)s"
    " AND m.meta ? 'turn_failed'" + _GROUP,
    "training_jobs": "SELECT status AS key, count(*) AS n FROM training_job"
    " WHERE updated_at >= %(since)s AND status IN ('failed', 'rejected', 'succeeded')"
    " GROUP BY 1 ORDER BY 1",
    "ingestions": "SELECT status AS key, count(*) AS n FROM context_source"
    " WHERE queued_at >= %(since)s AND status IN ('failed', 'ready') GROUP BY 1 ORDER BY 1",
}
# Per artifact: its ConfigOps patches of the window by status (it sees its rejected ones).
_PATCHES = (
    "SELECT artifact_id::text AS artifact, status, count(*) AS n FROM config_patch"
    " WHERE created_at >= %(since)s AND artifact_id::text = ANY(%(targets)s)"
    " GROUP BY 1, 2 ORDER BY 1, 2"
)
# What each kind's prompt shows of the metrics (the failures for both).
SHOWN = {
    "policy.routing": ("turns", "turns_by_finish_reason", "turns_by_adapter_type", "rules",
                       "feedback_by_adapter_type", "failed_turns", "training_jobs"),
    "workflow.chat": ("turns", "turns_by_finish_reason", "nodes", "feedback_by_node",
                      "failed_turns", "ingestions"),
}  # fmt: skip


async def targets(conn: Connection) -> list[Target]:
    """The global artifacts of TARGETS as they are now (one a kind; absent ones are left out)."""
    pairs = ", ".join(["(%s, %s)"] * len(TARGETS))
    flat = [value for pair in TARGETS for value in pair]
    cursor = await conn.cursor(row_factory=dict_row).execute(_TARGETS.format(pairs=pairs), flat)
    return [
        Target(r["id"], r["name"], r["type"], r["version"], r["schema"])
        for r in await cursor.fetchall()
    ]


def _shape(rows: list[dict[str, Any]]) -> Any:
    """`{key: n}` for a plain count; `{key: {column: n}}` for several columns."""
    if all(set(r) == {"key", "n"} for r in rows):
        return {str(r["key"]): r["n"] for r in rows}
    return {str(r["key"]): {k: v for k, v in r.items() if k != "key"} for r in rows}


async def gather(
    conn: Connection, found: list[Target], *, window_s: int, now: dt.datetime | None = None
) -> dict[str, Any]:
    """The metrics of the last `window_s` seconds, as compact nested counts; `patches` by
    artifact id."""
    since = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(seconds=window_s)
    by_kind = {t.kind: t.artifact_id for t in found}
    params = {
        "since": since,
        "policy": by_kind.get("policy.routing", ""),
        "workflow": by_kind.get("workflow.chat", ""),
        "targets": [t.artifact_id for t in found],
    }
    metrics: dict[str, Any] = {"window_days": round(window_s / 86400, 1)}
    cursor = conn.cursor(row_factory=dict_row)
    for name, sql in _QUERIES.items():
        await cursor.execute(sql, params)
        metrics[name] = _shape(await cursor.fetchall())
    metrics["turns"] = sum(metrics["turns_by_finish_reason"].values())
    await cursor.execute(_PATCHES, params)
    patches: dict[str, dict[str, int]] = {}
    for row in await cursor.fetchall():
        patches.setdefault(row["artifact"], {})[row["status"]] = row["n"]
    metrics["patches"] = patches
    return metrics


def for_target(metrics: dict[str, Any], target: Target) -> dict[str, Any]:
    """What the prompt about `target` shows: its kind's metrics and its own patches."""
    shown = {"window_days": metrics["window_days"]}
    shown.update({k: metrics[k] for k in SHOWN.get(target.kind, ()) if k in metrics})
    shown["your_recent_patches"] = metrics.get("patches", {}).get(target.artifact_id, {})
    return shown
