"""Validation of a patch: it applies (RFC 6902, with `jsonpatch`) to the base schema, the
result fits the kind's JSON Schema (shared.domain.artifacts.kinds), and what a JSON Schema
cannot say holds (references, expressions that compile: shared.domain.artifacts.checks).
Adapters (`adapter.lora`) follow ConfigOps' own narrower rules (configops.adapter_patches):
a new skill for a cluster, or a change of status, merge target or applicability, only.

Problems are `{"path", "message"}` dicts, the artifacts API's own, so an approver reads the
same words whichever path found them. `patched` is pure; `problems` reads references."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import jsonpointer

from shared.domain.artifacts.checks import check
from shared.domain.artifacts.kinds import (
    MAX_PROBLEMS,
    MAX_SCHEMA_BYTES,
    SYSTEM_KINDS,
    Problem,
    kind_of,
    problem,
    schema_problems,
    too_large,
)
from shared.domain.configops import adapter_patches
from shared.platform.db.pool import Connection
from shared.platform.errors import ValidationError

MAX_OPS = 256


def patched(base: dict[str, Any], ops: Any) -> tuple[Any, list[Problem]]:
    """The base with the patch applied op by op (the base itself is never changed), or the
    first operation that does not apply, named by its index and path."""
    if not isinstance(ops, list) or not ops:
        return None, [problem((), "a patch is a non-empty list of RFC 6902 operations")]
    if len(ops) > MAX_OPS:
        return None, [problem((), f"a patch has at most {MAX_OPS} operations")]
    document: Any = copy.deepcopy(base)
    for index, op in enumerate(ops):
        at = op.get("path") if isinstance(op, dict) else None
        where = at[:500] if isinstance(at, str) else ""
        try:
            document = jsonpatch.apply_patch(document, [op], in_place=True)
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException,
                TypeError, KeyError, AttributeError) as exc:  # fmt: skip
            return None, [{"path": where, "message": f"operation {index}: {exc}"[:300]}]
        if too_large(document):
            return None, [{"path": where, "message": f"operation {index}: the schema grows"
                           f" over {MAX_SCHEMA_BYTES} bytes of JSON"}]  # fmt: skip
    return document, []


def shape_problems(kind: str, schema: Any) -> list[Problem]:
    """What the kind's JSON Schema and the ConfigOps rules say of the patched schema."""
    if kind_of(schema) != kind:
        return [problem(("kind",), f"the kind of an artifact never changes: must stay {kind!r}")]
    if kind in SYSTEM_KINDS and kind != adapter_patches.KIND:
        return [problem((), f"{kind} schemas are written by training and publishing;"
                        " ConfigOps does not patch them")]  # fmt: skip
    return schema_problems(schema)


async def problems(
    conn: Connection,
    *,
    kind: str,
    schema: Any,
    owner_user_id: str | None,
    visibility: str,
    privileged: bool,
    artifact_id: str | None = None,
    base: dict[str, Any] | None = None,
) -> list[Problem]:
    """Everything wrong with the patched schema, as its owner would see it used (`base`: the
    schema patched; `artifact_id` None: a new artifact)."""
    found = shape_problems(kind, schema)
    if found:
        return found
    if kind == adapter_patches.KIND:
        if not privileged:  # a user: only switching their own skill off or on again
            said = adapter_patches.user_problems(base, schema)
            if said:
                return said
        return await adapter_patches.problems(
            conn, artifact_id=artifact_id, base=base or {"kind": kind}, schema=schema,
            owner_user_id=owner_user_id, visibility=visibility,
        )  # fmt: skip
    if schema.get("privileged") and not privileged:
        return [problem(("privileged",), "only admins define privileged tools")]
    try:
        await check(conn, owner_user_id, schema, visibility=visibility)
    except ValidationError as exc:
        return list(exc.details or [problem((), exc.message)])[:MAX_PROBLEMS]
    return []
