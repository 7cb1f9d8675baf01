"""Artifact kinds and their validation against the JSON Schemas of
`shared.domain.artifacts.schemas`.

A schema failing validation raises one `ValidationError` whose `details` list the problems as
`{"path": <JSON pointer into the artifact's schema>, "message": ...}`, at most `MAX_PROBLEMS`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from typing import Any

from jsonschema import Draft202012Validator

from shared.domain.artifacts.schemas import SCHEMAS
from shared.platform.errors import ValidationError

KINDS: tuple[str, ...] = tuple(SCHEMAS)
# Adapters are written by training and publishing (shared.domain.adapters.registry), never by users.
SYSTEM_KINDS: frozenset[str] = frozenset({"adapter.lora"})
USER_KINDS: tuple[str, ...] = tuple(k for k in KINDS if k not in SYSTEM_KINDS)
MAX_PROBLEMS = 20
MAX_SCHEMA_BYTES = 256 * 1024
_MAX_MESSAGE = 300

Problem = dict[str, str]


def pointer(parts: Iterable[Any]) -> str:
    """An RFC 6901 JSON pointer: `("nodes", 2, "type")` -> `/nodes/2/type`; `()` -> ``."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def problem(parts: Iterable[Any], message: str) -> Problem:
    if len(message) > _MAX_MESSAGE:
        message = message[: _MAX_MESSAGE - 1] + "…"
    return {"path": pointer(parts), "message": message}


def fail(message: str, problems: list[Problem]) -> ValidationError:
    """The one error for a list of problems (the first MAX_PROBLEMS of them)."""
    return ValidationError(message, details=problems[:MAX_PROBLEMS])


@functools.cache
def validator(kind: str) -> Draft202012Validator:
    return Draft202012Validator(SCHEMAS[kind])


def json_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of a kind (KeyError for an unknown one)."""
    return SCHEMAS[kind]


def kind_of(schema: Any) -> str | None:
    if isinstance(schema, dict) and isinstance(schema.get("kind"), str):
        return schema["kind"]
    return None


def too_large(schema: Any) -> bool:
    return len(json.dumps(schema, separators=(",", ":"))) > MAX_SCHEMA_BYTES


def _sort_key(error: Any) -> list[tuple[bool, Any]]:
    return [(isinstance(p, str), p) for p in error.absolute_path]


def schema_problems(schema: Any) -> list[Problem]:
    """Everything wrong with an artifact's schema against its kind's JSON Schema."""
    if not isinstance(schema, dict):
        return [problem((), "an artifact schema must be a JSON object")]
    if too_large(schema):
        return [problem((), f"the schema is over {MAX_SCHEMA_BYTES} bytes of JSON")]
    kind = schema.get("kind")
    if kind not in SCHEMAS:
        said = "is required" if kind is None else f"{str(kind)[:64]!r} is not a known kind"
        return [problem(("kind",), f"kind {said}; one of {', '.join(KINDS)}")]
    errors = sorted(validator(kind).iter_errors(schema), key=_sort_key)
    return [problem(e.absolute_path, e.message) for e in errors[:MAX_PROBLEMS]]


def validate(schema: Any) -> str:
    """The schema's kind, once it validates; else ValidationError with pointer paths."""
    problems = schema_problems(schema)
    if problems:
        raise fail("the artifact schema is not valid", problems)
    kind = kind_of(schema)
    assert kind is not None
    return kind


def type_matches(artifact_type: str, wanted: str) -> bool:
    """`workflow` matches `workflow.chat` (the part before the dot), `workflow.chat` itself."""
    return artifact_type == wanted or artifact_type.split(".", 1)[0] == wanted
