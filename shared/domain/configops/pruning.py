"""The system's review of its skill adapters (issue 20 item 5, SPEC §7.4): propose disabling
the ones nobody uses, and merging near-duplicates, each as a ConfigOps patch an admin decides.

- **Disable** a skill used fewer than PRUNE_MAX_USAGE times, with a success score (none
  counts as 0) of at most PRUNE_MAX_SUCCESS, not used, and with no new feedback in its
  cluster, for PRUNE_IDLE_DAYS, and older than that.
- **Merge** two active skills with weights of one scope (one owner, or both global) whose
  router centroids have a cosine of at least MERGE_MIN_SIMILARITY: the less successful
  (lower success score, then lower usage) into the other, the most similar pairs first,
  each adapter in at most one merge per review. Applying the merge retrains the one kept on
  both clusters (configops.adapter_apply).

Skills already disabled, with an open patch, or named by an open merge are left alone, so a
second review proposes nothing twice. Nothing here changes an adapter.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from psycopg.rows import dict_row

from shared.domain.adapters.versions import has_weights
from shared.domain.configops import adapter_patches
from shared.domain.configops.propose import Proposal
from shared.domain.configops.system_review import Outcome, exclusive, submit
from shared.platform import audit
from shared.platform.audit import Actor
from shared.platform.db.pool import Connection, Pool
from shared.platform.errors import Conflict
from shared.platform.settings import Settings

log = logging.getLogger(__name__)

LOCK_KEY = "configops:skill_pruning"  # one review at a time (the schedule's and an admin's)
LOCK_TTL_S = 600


@dataclass(frozen=True)
class SkillRow:
    """An active skill adapter with its router state, as the review reads it."""

    id: str
    owner_user_id: str | None  # None: global
    version: int  # the one served: the patch's base
    created_at: datetime
    usage_count: int
    success_score: float | None
    last_used_at: datetime | None
    last_event_at: datetime | None  # the newest feedback event in its cluster
    has_weights: bool
    centroid: tuple[float, ...] | None

    @property
    def success(self) -> float:
        return self.success_score if self.success_score is not None else 0.0


@dataclass(frozen=True)
class Merge:
    source: SkillRow  # disabled, merged into `into`
    into: SkillRow
    similarity: float


@dataclass
class PruneReport(Outcome):
    skipped: str | None = None  # why nothing was reviewed (another review was running)
    considered: int = 0  # active skills with router state and no open patch
    disable: list[str] = field(default_factory=list)  # adapters proposed for disabling
    merges: list[dict[str, Any]] = field(default_factory=list)  # {source, into, similarity}

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- pure rules ----------------------------------------------------------------------------


def idle(row: SkillRow, settings: Settings, now: datetime) -> bool:
    """Little used, unsuccessful, and quiet (no use, no feedback) for PRUNE_IDLE_DAYS."""
    cutoff = now - timedelta(days=settings.prune_idle_days)
    return (
        row.usage_count < settings.prune_max_usage
        and row.success <= settings.prune_max_success
        and row.created_at < cutoff
        and (row.last_used_at is None or row.last_used_at < cutoff)
        and (row.last_event_at is None or row.last_event_at < cutoff)
    )


def _weaker_first(a: SkillRow, b: SkillRow) -> tuple[SkillRow, SkillRow]:
    """(the one merged away, the one kept): lower success, then lower usage, then the id."""
    return (a, b) if (a.success, a.usage_count, a.id) < (b.success, b.usage_count, b.id) else (b, a)


def merges(rows: list[SkillRow], settings: Settings, *, exclude: set[str]) -> list[Merge]:
    """Pairs of one scope at or above MERGE_MIN_SIMILARITY, most similar first, each adapter
    in one pair at most; `exclude`: adapters proposed for something else in this review."""
    scopes: dict[str | None, list[SkillRow]] = {}
    for row in rows:
        if row.has_weights and row.centroid and row.id not in exclude:
            scopes.setdefault(row.owner_user_id, []).append(row)
    pairs = [pair for group in scopes.values() for pair in _similar_pairs(group, settings)]
    pairs.sort(key=lambda p: (-p[0], p[1].id, p[2].id))
    taken: set[str] = set()
    found: list[Merge] = []
    for similarity, a, b in pairs:
        if a.id in taken or b.id in taken:
            continue
        taken |= {a.id, b.id}
        source, into = _weaker_first(a, b)
        found.append(Merge(source, into, round(similarity, 4)))
    return found


def _similar_pairs(
    group: list[SkillRow], settings: Settings
) -> list[tuple[float, SkillRow, SkillRow]]:
    """The pairs of one scope's skills (a user's few, or the global ones) similar enough."""
    if len(group) < 2:
        return []
    vectors = np.asarray([r.centroid for r in group], dtype=np.float64)
    norms = np.linalg.norm(vectors, axis=1)
    norms[norms == 0] = 1.0
    unit = vectors / norms[:, None]
    cosine = unit @ unit.T
    rows, cols = np.nonzero(np.triu(cosine >= settings.merge_min_similarity, k=1))
    return [(float(cosine[i, j]), group[i], group[j]) for i, j in zip(rows, cols, strict=True)]


def _figures(row: SkillRow) -> str:
    success = "none" if row.success_score is None else f"{row.success_score:.3f}"
    return f"{row.usage_count} uses, success score {success}"


def disable_proposal(row: SkillRow, settings: Settings) -> Proposal:
    days = f"{settings.prune_idle_days:g}"
    return Proposal(
        artifact_id=row.id, base_version=row.version,
        patch=[{"op": "add", "path": "/status", "value": adapter_patches.DISABLED}],
        justification=(
            f"skill pruning (system): {_figures(row)} (prune below {settings.prune_max_usage}"
            f" uses at a success score of at most {settings.prune_max_success:g}); not used"
            f" and no new feedback in its cluster for {days} days"
            f" (last used: {_day(row.last_used_at)}, last feedback: {_day(row.last_event_at)})"
        ),
    )  # fmt: skip


def merge_proposal(merge: Merge, settings: Settings) -> Proposal:
    source, into = merge.source, merge.into
    return Proposal(
        artifact_id=source.id, base_version=source.version,
        patch=[{"op": "add", "path": "/status", "value": adapter_patches.DISABLED},
               {"op": "add", "path": "/merged_into", "value": into.id}],
        justification=(
            f"skill merging (system): its router centroid has a cosine of"
            f" {merge.similarity:.4f} with adapter {into.id}'s (merge at"
            f" {settings.merge_min_similarity:g} or more); this one has {_figures(source)},"
            f" that one {_figures(into)}: the weaker is merged into the stronger, which is"
            " retrained on both clusters"
        ),
    )  # fmt: skip


def _day(value: datetime | None) -> str:
    return value.date().isoformat() if value else "never"


# --- reading and proposing -----------------------------------------------------------------

_SKILLS = """
SELECT a.id::text AS id, a.owner_user_id::text AS owner_user_id, a.version, a.created_at,
       a.schema, s.usage_count, s.success_score, s.last_used_at,
       s.centroid_vec AS centroid,
       (SELECT max(e.created_at) FROM cluster_event ce
          JOIN preference_event e ON e.id = ce.event_id
         WHERE ce.cluster_id = CASE WHEN a.schema->>'cluster_id' ~ %(uuid)s
                                    THEN (a.schema->>'cluster_id')::uuid END) AS last_event_at
  FROM artifact a
  JOIN adapter_router_state s ON s.artifact_id = a.id
 WHERE a.type = %(kind)s AND a.schema->>'adapter_type' = %(skill)s
   AND coalesce(a.schema->>'status', %(active)s) <> %(disabled)s
   AND NOT EXISTS (SELECT 1 FROM config_patch p WHERE p.status = ANY(%(open)s)
                    AND (p.artifact_id = a.id OR (p.artifact_id IS NOT NULL AND p.patch @>
                         jsonb_build_array(jsonb_build_object('path', '/merged_into',
                                                              'value', a.id::text)))))
 ORDER BY a.id
"""
_UUID = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


def _centroid(value: Any) -> tuple[float, ...] | None:
    if value is None:
        return None
    array = value.to_numpy() if hasattr(value, "to_numpy") else value
    return tuple(float(x) for x in array)


async def skills(conn: Connection) -> list[SkillRow]:
    """The active skill adapters with router state and no open patch on or into them."""
    params = {"kind": adapter_patches.KIND, "skill": adapter_patches.SKILL,
              "active": adapter_patches.ACTIVE, "disabled": adapter_patches.DISABLED,
              "open": list(adapter_patches.OPEN_STATUSES), "uuid": _UUID}  # fmt: skip
    rows = await (await conn.cursor(row_factory=dict_row).execute(_SKILLS, params)).fetchall()
    return [_skill_row(r) for r in rows]


def _skill_row(r: dict[str, Any]) -> SkillRow:
    return SkillRow(
        id=r["id"], owner_user_id=r["owner_user_id"], version=int(r["version"]),
        created_at=r["created_at"], usage_count=int(r["usage_count"]),
        success_score=r["success_score"], last_used_at=r["last_used_at"],
        last_event_at=r["last_event_at"], has_weights=has_weights(r["schema"]),
        centroid=_centroid(r["centroid"]),
    )  # fmt: skip


async def review(
    pool: Pool, *, redis: Any, settings: Settings, actor: Actor | None = None,
    scheduled: bool = False,
) -> PruneReport:  # fmt: skip
    """Proposes disabling the idle skills and merging the near-duplicates (every scope);
    audited as `configops.skill_pruning` when there was anything to propose. While another
    review runs, a scheduled one is skipped and an admin's gets 409."""
    async with exclusive(redis, LOCK_KEY, LOCK_TTL_S) as held:
        if not held and scheduled:
            return PruneReport(skipped="another skill review is in progress")
        if not held:
            raise Conflict("a skill review is in progress", details={"reason": "busy"})
        report = await _review(pool, redis=redis, settings=settings, actor=actor or Actor())
    log.info("skill pruning", extra={"skill_pruning": report.as_dict()})
    return report


async def _review(pool: Pool, *, redis: Any, settings: Settings, actor: Actor) -> PruneReport:
    async with pool.connection() as conn:
        rows = await skills(conn)
        clock = await (await conn.execute("SELECT now()")).fetchone()  # the rows' clock
    assert clock is not None
    now: datetime = clock[0]
    report = PruneReport(considered=len(rows))
    idle_rows = [r for r in rows if idle(r, settings, now)]
    found = merges(rows, settings, exclude={r.id for r in idle_rows})
    report.disable = [r.id for r in idle_rows]
    report.merges = [{"source": m.source.id, "into": m.into.id, "similarity": m.similarity}
                     for m in found]  # fmt: skip
    proposals = [disable_proposal(r, settings) for r in idle_rows]
    proposals += [merge_proposal(m, settings) for m in found]
    await submit(pool, proposals, report, redis=redis, settings=settings, actor=actor)
    if proposals:
        await audit.record(pool, "configops.skill_pruning", actor=actor,
                           details=report.as_dict())  # fmt: skip
    return report
