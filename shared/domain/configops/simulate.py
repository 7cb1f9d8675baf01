"""The dry-run hook: what a valid patch would have changed in recent traffic, stored on the
patch for its approver.

`shared.domain.configops.dry_run.replay(conn, *, kind, artifact_id, owner_user_id, before,
after, sample)` does the replay (a JSON-able summary, `{"skipped": reason}` for a kind it cannot
replay). Until that module exists, and whenever a replay fails, the patch records why there is
no replay instead of failing the proposal: a dry-run informs a decision, it never makes one."""

from __future__ import annotations

import importlib
import logging
from typing import Any

from shared.platform.db.pool import Connection

log = logging.getLogger(__name__)
REPLAY_MODULE = "shared.domain.configops.dry_run"
SAMPLE = 200
# New artifacts whose effect on past turns can still be estimated (a skill for a cluster).
NEW_REPLAYED = ("adapter.lora",)


def _replay() -> Any:
    try:
        module = importlib.import_module(REPLAY_MODULE)
    except ImportError:
        return None
    return getattr(module, "replay", None)


async def dry_run(
    conn: Connection,
    *,
    kind: str,
    artifact_id: str | None,
    owner_user_id: str | None,
    before: dict[str, Any],
    after: dict[str, Any],
    sample: int = SAMPLE,
) -> dict[str, Any]:
    """The replay's summary for a patch on `artifact_id` (None: a new artifact)."""
    replay = _replay()
    if replay is None:
        return {"skipped": "dry-run not available"}
    if artifact_id is None and kind not in NEW_REPLAYED:
        return {"skipped": "a new artifact has no traffic to replay"}
    try:
        async with conn.transaction():  # a savepoint: a failed replay leaves the proposal intact
            result = await replay(
                conn, kind=kind, artifact_id=artifact_id, owner_user_id=owner_user_id,
                before=before, after=after, sample=sample,
            )  # fmt: skip
    except Exception as exc:
        log.exception("dry-run of a %s patch failed", kind)
        return {"skipped": "the dry-run failed", "error": f"{type(exc).__name__}: {exc}"[:300]}
    return result if isinstance(result, dict) else {"result": result}
