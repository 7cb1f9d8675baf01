"""The system's own skill proposals (issue 20 item 4, SPEC §7.3): a cluster that is large
and well liked, and served by no adapter yet, earns a proposal to create a skill adapter for
it, left for an admin to approve like any patch.

A cluster qualifies when it is live, has at least SKILL_MIN_SIZE events, SKILL_MIN_POSITIVE
positive ones and a positive share of at least SKILL_MIN_POSITIVE_SHARE, no adapter is bound
to it (`artifact.schema->>'cluster_id'`), no open patch creates one, and no proposal for it
was declined (or failed) in the last DECLINED_DAYS: the admins are not asked again every hour.

Each proposal goes through `propose` as `system_llm` (system_review.submit), like the
architect's: the `configops` rate budget of the subject "system", validation (ConfigOps
checks the cluster again), the dry-run and an admin's decision. Nothing here creates an
adapter; the apply step does, once approved.
"""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from psycopg.rows import dict_row

from shared.domain.configops import adapter_patches
from shared.domain.configops.models import NewArtifact
from shared.domain.configops.propose import Proposal
from shared.domain.configops.system_review import Outcome, submit
from shared.platform import audit
from shared.platform.audit import Actor
from shared.platform.db.pool import Connection, Pool
from shared.platform.settings import Settings

log = logging.getLogger(__name__)

DECLINED_DAYS = 7  # a rejected or failed proposal for a cluster is not repeated sooner
NAME_SLUG_CHARS = 40
DESCRIPTION_CHARS = 300
DASH = "\u2013"  # an en dash, as SPEC §7.3 writes "Skill: <label> <dash> <description>"
ALL_SCOPES = "all"  # `review(scope=...)`: every user's live clusters and the global ones


@dataclass(frozen=True)
class ClusterRow:
    """A live cluster as the review reads it."""

    id: str
    user_id: str | None  # None: a global cluster
    size: int
    positive_count: int
    label: str | None
    labeled_by: str | None
    description: str | None
    keywords: list[str]
    bound: bool = False  # an adapter serves it already
    open_patch: bool = False  # a pending, approved or applying patch creates one
    declined: bool = False  # a proposal for it was rejected or failed lately

    @property
    def positive_share(self) -> float:
        return self.positive_count / self.size if self.size > 0 else 0.0


@dataclass
class SkillReport(Outcome):
    scope: str = ALL_SCOPES  # "user", "global" or "all"
    user_id: str | None = None
    considered: int = 0  # live clusters of the scope
    qualified: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # reason → clusters

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- pure rules ----------------------------------------------------------------------------


def skip_reason(row: ClusterRow, settings: Settings) -> str | None:
    """Why the cluster gets no skill proposal now; None: it qualifies."""
    if row.bound:
        return "has an adapter"
    if row.open_patch:
        return "a proposal is open"
    if row.declined:
        return "declined lately"
    if row.size < settings.skill_min_size:
        return "too small"
    if row.positive_count < settings.skill_min_positive:
        return "too few positive"
    if row.positive_share < settings.skill_min_positive_share:
        return "positive share too low"
    return None


def label_of(row: ClusterRow) -> str:
    """The model's label when it gave one, else the top keywords, else the stored label."""
    if row.labeled_by == "model" and row.label and row.label.strip():
        return row.label.strip()
    if row.keywords:
        return ", ".join(row.keywords[:3])
    return (row.label or "").strip() or f"cluster {row.id[:8]}"


def slug(text: str) -> str:
    words = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return words[:NAME_SLUG_CHARS].rstrip("-") or "cluster"


def skill_name(row: ClusterRow) -> str:
    """Unique per owner: the cluster's id names it (one skill per cluster)."""
    return f"skill-{slug(label_of(row))}-{row.id[:8]}"


def skill_description(row: ClusterRow) -> str:
    """One sentence: the model's description, else the cluster's keywords."""
    text = " ".join((row.description or "").split())
    if text:
        first = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0]
        return first[:DESCRIPTION_CHARS]
    terms = ", ".join(row.keywords[:5]) or label_of(row)
    return f"Answers about {terms}."[:DESCRIPTION_CHARS]


def justification(row: ClusterRow, settings: Settings) -> str:
    scope = "the global clusters" if row.user_id is None else "a user's clusters"
    return (
        f"skill review (system): cluster {row.id} of {scope} has {row.size} events"
        f" (min {settings.skill_min_size}), {row.positive_count} positive"
        f" (min {settings.skill_min_positive}), a positive share of {row.positive_share:.2f}"
        f" (min {settings.skill_min_positive_share:.2f}), and no adapter serves it"
    )


def proposal_for(row: ClusterRow, settings: Settings) -> Proposal:
    """The create patch ConfigOps takes for a skill: weightless, active, bound to the cluster,
    in the cluster's scope."""
    label, description = label_of(row), skill_description(row)
    ops: list[dict[str, Any]] = [
        {"op": "add", "path": "/adapter_type", "value": adapter_patches.SKILL},
        {"op": "add", "path": "/cluster_id", "value": row.id},
        {"op": "add", "path": "/status", "value": adapter_patches.ACTIVE},
        {"op": "add", "path": "/applicability",
         "value": {"natural_language": f"Skill: {label} {DASH} {description}"}},
    ]  # fmt: skip
    create = NewArtifact(
        kind=adapter_patches.KIND, name=skill_name(row), description=description,
        visibility="global" if row.user_id is None else "private", owner_user_id=row.user_id,
    )  # fmt: skip
    return Proposal(patch=ops, create=create, justification=justification(row, settings))


# --- reading and proposing -----------------------------------------------------------------

_CLUSTERS = """
SELECT c.id::text AS id, c.user_id::text AS user_id, c.size, c.positive_count, c.label,
       c.labeled_by, c.description, c.keywords,
       EXISTS (SELECT 1 FROM artifact a WHERE a.type = %(kind)s
                AND a.schema->>'cluster_id' = c.id::text) AS bound,
       EXISTS (SELECT 1 FROM config_patch p WHERE {creates} AND p.status = ANY(%(open)s))
         AS open_patch,
       EXISTS (SELECT 1 FROM config_patch p WHERE {creates}
                AND p.status IN ('rejected', 'failed')
                AND p.updated_at > now() - make_interval(days => %(days)s)) AS declined
  FROM semantic_cluster c
 WHERE c.retired_at IS NULL AND {scope}
 ORDER BY c.size DESC, c.id
"""
# A patch that creates an adapter for cluster `c`: its meta (set by `propose`) or its ops.
_CREATES = (
    "p.kind = %(kind)s AND p.artifact_id IS NULL AND (p.meta->>'cluster_id' = c.id::text"
    " OR p.patch @> jsonb_build_array(jsonb_build_object('path', '/cluster_id',"
    " 'value', c.id::text)))"
)


async def clusters(conn: Connection, scope: str | None) -> list[ClusterRow]:
    """The live clusters of a user (`scope` their id), the global ones (None) or all."""
    if scope == ALL_SCOPES:
        where = "true"
    elif scope is None:
        where = "c.user_id IS NULL"
    else:
        where = "c.user_id = %(user)s"
    sql = _CLUSTERS.format(creates=_CREATES, scope=where)
    params = {"kind": adapter_patches.KIND, "open": list(adapter_patches.OPEN_STATUSES),
              "days": DECLINED_DAYS, "user": scope}  # fmt: skip
    rows = await (await conn.cursor(row_factory=dict_row).execute(sql, params)).fetchall()
    return [ClusterRow(**{**r, "keywords": list(r["keywords"] or [])}) for r in rows]


async def review(
    pool: Pool,
    *,
    scope: str | None,
    redis: Any,
    settings: Settings,
    actor: Actor | None = None,
) -> SkillReport:
    """Proposes a skill for each qualifying cluster of `scope` (a user id, None for the global
    clusters, ALL_SCOPES for every live one); audited as `configops.skill_review`."""
    actor = actor or Actor()
    report = SkillReport(
        scope=ALL_SCOPES if scope == ALL_SCOPES else ("global" if scope is None else "user"),
        user_id=None if scope in (None, ALL_SCOPES) else scope,
    )  # fmt: skip
    async with pool.connection() as conn:
        rows = await clusters(conn, scope)
    report.considered = len(rows)
    chosen: list[ClusterRow] = []
    for row in rows:
        reason = skip_reason(row, settings)
        if reason is None:
            chosen.append(row)
        else:
            report.skipped[reason] = report.skipped.get(reason, 0) + 1
    report.qualified = len(chosen)
    proposals = [proposal_for(row, settings) for row in chosen]
    await submit(pool, proposals, report, redis=redis, settings=settings, actor=actor)
    if report.qualified:  # an empty review of an unchanged scope is not worth a record
        await audit.record(pool, "configops.skill_review", actor=actor,
                           subject_user_id=report.user_id, details=report.as_dict())  # fmt: skip
    log.info("skill review", extra={"skill_review": report.as_dict()})
    return report
