"""The pure core of a `workflow.chat` dry-run: each past turn's node path replayed under the
workflow before and after the patch, from the tool outcomes its trace keeps.

A turn whose replay stops undetermined (a branch reads what the trace does not keep, a node
calls a tool the turn never ran) still counts as changed when the two paths part before
that point: the routing decision changed even if what follows it is unknown."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from shared.domain.configops.dry_run_sample import PastTurn
from shared.domain.workflow.recorded import ReplayedPath, replay_path

MAX_EXAMPLES = 10
NO_INPUTS = "no stored workflow inputs (the trace predates them)"


def _recorded_path(nodes: Sequence[Mapping[str, Any]]) -> list[str]:
    """The turn's own path: its trace's top-level entries (parallel children name a parent)."""
    return [str(e.get("node")) for e in nodes if isinstance(e, Mapping) and "parent" not in e]


def _shown(path: ReplayedPath) -> dict[str, Any]:
    shown: dict[str, Any] = {"nodes": path.nodes, "end": path.end}
    if path.reason:
        shown["reason"] = path.reason
    return shown


def replay_workflow_turns(
    turns: Sequence[PastTurn], before: Mapping[str, Any], after: Mapping[str, Any]
) -> dict[str, Any]:
    skipped: Counter[str] = Counter()
    why: Counter[str] = Counter()  # what undetermined turns lacked
    visits: dict[str, Counter[str]] = {"before": Counter(), "after": Counter()}
    ends: dict[str, Counter[str]] = {"before": Counter(), "after": Counter()}
    replayed = changed = undetermined = reproduced = 0
    examples: list[dict[str, Any]] = []
    for turn in turns:
        stored = (turn.inputs or {}).get("workflow")
        if not isinstance(stored, Mapping):
            skipped[NO_INPUTS] += 1
            continue
        if turn.question is None:
            skipped["the question is gone"] += 1
            continue
        # The workflow's `input` as the turn had it: the question is the parent message.
        inputs = {**(stored.get("input") or {}), "message": turn.question}
        if turn.conversation_id is not None:
            inputs["conversation_id"] = turn.conversation_id
        outcomes = stored.get("tools") or {}
        was = replay_path(before, inputs=inputs, outcomes=outcomes)
        now = replay_path(after, inputs=inputs, outcomes=outcomes)
        replayed += 1
        for side, path in (("before", was), ("after", now)):
            visits[side].update(path.nodes)
            ends[side][path.end] += 1
        reproduced += was.nodes == _recorded_path(turn.nodes)
        diverged = any(x != y for x, y in zip(was.nodes, now.nodes, strict=False))
        if "undetermined" in (was.end, now.end) and not diverged:
            undetermined += 1
            why[(was if was.end == "undetermined" else now).reason or ""] += 1
            continue
        if (was.nodes, was.end) == (now.nodes, now.end):
            continue
        changed += 1
        if len(examples) < MAX_EXAMPLES:
            examples.append(
                {"message_id": turn.message_id, "before": _shown(was), "after": _shown(now)}
            )
    node_ids = sorted(set(visits["before"]) | set(visits["after"]))
    return {
        "selected": len(turns),
        "replayed": replayed,
        "skipped": {"total": sum(skipped.values()), "reasons": dict(sorted(skipped.items()))},
        "changed": changed,
        "undetermined": undetermined,
        "undetermined_reasons": dict(sorted(why.items())),
        "unchanged": replayed - changed - undetermined,
        "reproduced": reproduced,
        "nodes": {
            n: {"before": visits["before"][n], "after": visits["after"][n]} for n in node_ids
        },
        "ends": {side: dict(sorted(c.items())) for side, c in ends.items()},
        "examples": examples,
    }
