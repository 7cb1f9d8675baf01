"""What ConfigOps may do to an `adapter.lora` (issue 20 items 4-5, SPEC §7.3-7.4): create a
weightless skill adapter for a live cluster, and disable, merge or re-enable an adapter.
Weights are never ConfigOps' to write: only training publishes them (adapters.registry).

- **Create** (privileged proposers only): the schema is a skill (`adapter_type: "skill"`)
  bound to a live `semantic_cluster` (`cluster_id`), `status` absent or "active", and no
  weight field. The cluster has no adapter yet, and no other open patch creates one for it;
  the scope matches the cluster's: a global cluster's skill is global and owner-less, a
  user's is theirs and private.
- **Change**: only `status`, `merged_into` and `applicability` change. The persona is never
  disabled or merged here (its user pauses or resets it). `merged_into` names another active
  skill of the same scope that has weights, and a merge also sets `status: "disabled"`;
  re-enabling is `status: "active"` with `merged_into` removed or null.

Problems are `{"path", "message"}`, as everywhere in ConfigOps. The `*_shape_problems` are
pure; `problems` also reads the cluster, the merge target and the open patches, and runs both
when the patch is proposed and again when it is applied (`exclude_patch`: the one applied)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from psycopg.rows import dict_row

from shared.domain.adapters.versions import has_weights
from shared.domain.artifacts.kinds import Problem, problem
from shared.platform.db.pool import Connection

KIND = "adapter.lora"
SKILL = "skill"
PERSONA = "persona"
ACTIVE, DISABLED = "active", "disabled"
MAY_CHANGE = ("status", "merged_into", "applicability")
# What training and publishing write (the weights and where they are served from).
WEIGHT_FIELDS = ("fs_dir", "checksum", "version", "current_version",
                 "remote_model_id", "remote_adapter_id")  # fmt: skip
# A create patch in one of these may still make an adapter.
OPEN_STATUSES = ("pending", "approved", "applying")
_ONLY = "ConfigOps may change only " + ", ".join(MAY_CHANGE)
_MISSING = object()


def cluster_of(schema: Any) -> str | None:
    """The cluster a (patched) adapter schema is bound to, when it names one."""
    value = schema.get("cluster_id") if isinstance(schema, Mapping) else None
    return value if isinstance(value, str) and value else None


def _uuid(text: str) -> str | None:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None


def status_of(schema: Mapping[str, Any]) -> str:
    return str(schema.get("status") or ACTIVE)


def is_persona(schema: Mapping[str, Any]) -> bool:
    return (schema.get("adapter_type") or PERSONA) == PERSONA


# --- pure rules ----------------------------------------------------------------------------


def create_shape_problems(schema: Mapping[str, Any]) -> list[Problem]:
    """A new adapter is a weightless, active skill bound to a cluster."""
    found: list[Problem] = []
    if schema.get("adapter_type") != SKILL:
        found.append(problem(("adapter_type",), "ConfigOps creates only skill adapters:"
                             " adapter_type must be 'skill'"))  # fmt: skip
    if cluster_of(schema) is None:
        found.append(problem(("cluster_id",), "a skill adapter names the cluster it serves"))
    if status_of(schema) != ACTIVE:
        found.append(problem(("status",), "a new adapter starts active"))
    if schema.get("merged_into") is not None:
        found.append(problem(("merged_into",), "a new adapter is merged into none"))
    for field in WEIGHT_FIELDS:
        if schema.get(field) is not None:
            found.append(problem((field,), f"training writes /{field}: a new skill starts"
                                 " without weights"))  # fmt: skip
    return found


def is_skill(schema: Mapping[str, Any]) -> bool:
    return schema.get("adapter_type") == SKILL


def user_problems(base: Mapping[str, Any] | None, after: Mapping[str, Any]) -> list[Problem]:
    """A user may switch their own private skill off and on again (`status` alone; a merge or
    new applicability is an admin's call), never create an adapter."""
    if base is None or not is_skill(base):
        return [problem((), "users change only their own skill adapters, and only /status")]
    others = [k for k in changed_keys(base, after) if k != "status"]
    return [problem((k,), "users change only /status of their own skill") for k in others]


def changed_keys(base: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    return sorted(k for k in {*base, *after} if base.get(k, _MISSING) != after.get(k, _MISSING))


def change_shape_problems(
    base: Mapping[str, Any], after: Mapping[str, Any], *, artifact_id: str
) -> list[Problem]:
    """What the patch of an existing adapter may not do, from the schemas alone."""
    found: list[Problem] = []
    for key in changed_keys(base, after):
        if key in MAY_CHANGE:
            continue
        said = f"training writes /{key}" if key in WEIGHT_FIELDS else f"/{key} stays as it is"
        found.append(problem((key,), f"{said}; {_ONLY} (the adapter's versions API serves"
                             " other weights)"))  # fmt: skip
    status, merged = status_of(after), after.get("merged_into")
    if is_persona(base) and (status != ACTIVE or merged is not None):
        found.append(problem(("status" if status != ACTIVE else "merged_into",),
                             "the persona is never disabled or merged through ConfigOps:"
                             " its user pauses or resets it"))  # fmt: skip
        return found
    if merged is not None:
        if str(merged).lower() == artifact_id.lower():
            found.append(problem(("merged_into",), "an adapter is never merged into itself"))
        if status != DISABLED:
            found.append(problem(("status",), "a merged adapter is disabled: set status"
                                 " 'disabled' with merged_into, or remove merged_into to"
                                 " re-enable it"))  # fmt: skip
        if merged != base.get("merged_into") and cluster_of(base) is None:
            found.append(problem(("merged_into",), "only an adapter bound to a cluster merges:"
                                 " its cluster's events retrain the target"))  # fmt: skip
    return found


def scope_problems(
    cluster_user: str | None, *, owner_user_id: str | None, visibility: str
) -> list[Problem]:
    """A global cluster's skill is global and the system's; a user's is theirs, private."""
    if cluster_user is None:
        if owner_user_id is not None or visibility != "global":
            return [problem(("cluster_id",), "the cluster is global: its skill is global and"
                            " has no owner (owner_user_id null, visibility 'global')")]  # fmt: skip
        return []
    if owner_user_id != cluster_user or visibility != "private":
        return [problem(("cluster_id",), "the cluster is a user's: its skill is theirs"
                        " (owner_user_id = the cluster's user, visibility 'private')")]  # fmt: skip
    return []


# --- rules that read the database ----------------------------------------------------------


async def problems(
    conn: Connection,
    *,
    artifact_id: str | None,
    base: Mapping[str, Any],
    schema: Mapping[str, Any],
    owner_user_id: str | None,
    visibility: str,
    exclude_patch: int | None = None,
) -> list[Problem]:
    """Everything wrong with creating (`artifact_id` None) or changing an adapter this way.
    The kind's JSON Schema has already passed."""
    if artifact_id is None:
        found = create_shape_problems(schema)
        return found or await _create_problems(
            conn, schema, owner_user_id=owner_user_id, visibility=visibility,
            exclude_patch=exclude_patch,
        )  # fmt: skip
    found = change_shape_problems(base, schema, artifact_id=artifact_id)
    merged = schema.get("merged_into")
    if found or merged is None or merged == base.get("merged_into"):
        return found
    return await _target_problems(conn, str(merged), owner_user_id=owner_user_id,
                                  visibility=visibility)  # fmt: skip


async def _create_problems(
    conn: Connection,
    schema: Mapping[str, Any],
    *,
    owner_user_id: str | None,
    visibility: str,
    exclude_patch: int | None,
) -> list[Problem]:
    cluster_id = _uuid(str(cluster_of(schema)))
    if cluster_id is None or cluster_id != cluster_of(schema):
        return [problem(("cluster_id",), "is not a cluster id (a UUID in lower case)")]
    # Two proposals for one cluster take turns, so the second sees the first.
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                       (f"skill_cluster:{cluster_id}",))  # fmt: skip
    cursor = conn.cursor(row_factory=dict_row)
    cluster = await (
        await cursor.execute(
            "SELECT user_id::text AS user_id, retired_at IS NOT NULL AS retired,"
            " centroid IS NOT NULL AS placed FROM semantic_cluster WHERE id = %s",
            (cluster_id,),
        )
    ).fetchone()
    if cluster is None:
        return [problem(("cluster_id",), f"no cluster {cluster_id}")]
    if cluster["retired"]:
        return [problem(("cluster_id",), f"cluster {cluster_id} is retired")]
    if not cluster["placed"]:
        return [problem(("cluster_id",), f"cluster {cluster_id} has no centroid")]
    found = scope_problems(cluster["user_id"], owner_user_id=owner_user_id, visibility=visibility)
    bound = await (
        await conn.execute(
            "SELECT id::text FROM artifact WHERE type = %s AND schema->>'cluster_id' = %s",
            (KIND, cluster_id),
        )
    ).fetchone()
    if bound is not None:
        found.append(problem(("cluster_id",), f"adapter {bound[0]} serves this cluster already"))
    other = await (
        await conn.execute(
            "SELECT id FROM config_patch WHERE kind = %s AND artifact_id IS NULL"
            " AND status = ANY(%s) AND meta->>'cluster_id' = %s"
            " AND id IS DISTINCT FROM %s::bigint ORDER BY id LIMIT 1",
            (KIND, list(OPEN_STATUSES), cluster_id, exclude_patch),
        )
    ).fetchone()
    if other is not None:
        found.append(problem(("cluster_id",), f"patch {other[0]} creates a skill for this"
                             " cluster already"))  # fmt: skip
    return found


async def _target_problems(
    conn: Connection, merged_into: str, *, owner_user_id: str | None, visibility: str
) -> list[Problem]:
    """The adapter merged into: an active skill of the same scope, with weights."""
    at = ("merged_into",)
    target_id = _uuid(merged_into)
    row = None
    if target_id is not None:
        row = await (
            await conn.cursor(row_factory=dict_row).execute(
                "SELECT owner_user_id::text AS owner, visibility, schema FROM artifact"
                " WHERE id = %s AND type = %s",
                (target_id, KIND),
            )
        ).fetchone()
    if row is None:
        return [problem(at, f"no adapter {merged_into[:64]}")]
    target = row["schema"]
    found: list[Problem] = []
    if target.get("adapter_type") != SKILL or cluster_of(target) is None:
        found.append(problem(at, "the target is not a skill adapter bound to a cluster"))
    if status_of(target) != ACTIVE:
        found.append(problem(at, "the target is disabled"))
    if not has_weights(target):
        found.append(problem(at, "the target has no weights yet (not trained)"))
    if row["owner"] != owner_user_id or row["visibility"] != visibility:
        found.append(problem(at, "the target is of another scope (owner or visibility)"))
    return found
