"""What a patch does, as its viewer may see it: the schema it was written against and the schema
it makes. The viewer's right to the patch is the right to both (an admin reviewing a user's
patch on their private artifact sees its base, which the artifacts routes would not show)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.domain.configops import store, validate
from shared.platform.db.pool import Connection


@dataclass(frozen=True)
class Preview:
    patch_id: int
    base_version: int | None  # None: a new artifact (its base is `{"kind": …}`)
    before: Any  # None: the base version is gone
    after: Any  # None: the operations do not apply to it
    problems: list[dict[str, Any]]


async def preview(conn: Connection, patch_id: int, viewer: store.Viewer) -> Preview:
    patch = await store.get(conn, patch_id, viewer)  # not found unless the viewer may see it
    if patch.artifact_id is None:
        before: Any = {"kind": patch.kind}
    else:
        row = await (
            await conn.execute(
                "SELECT schema FROM artifact_version WHERE artifact_id = %(a)s"
                " AND version = coalesce(%(v)s, (SELECT version FROM artifact WHERE id = %(a)s))",
                {"a": patch.artifact_id, "v": patch.base_version},
            )
        ).fetchone()
        before = row[0] if row else None
    if before is None:
        return Preview(patch.id, patch.base_version, None, None,
                       [{"path": "", "message": "the base version is no longer kept"}])  # fmt: skip
    after, problems = validate.patched(before, patch.patch)
    return Preview(patch.id, patch.base_version, before, after, problems)
