"""Tool-input templating for workflow nodes.

A node's `inputs` is JSON whose strings may hold `${input.a.b}` / `${vars.x}` placeholders:

- a string that is exactly one placeholder yields the raw value (a list stays a list, a number
  stays a number);
- a string with placeholders among other text interpolates `str()` of each value;
- dicts and lists are resolved recursively (values only, never keys); other JSON scalars pass
  through unchanged.

Paths are dotted key lookups in mappings (a purely numeric segment also indexes a list); the
first segment must be `input` or `vars`. A missing key is a `TemplateError`: the workflow
engine treats it as a node failure that is not retried, since the same data would fail again.
Error messages name the path, never the values (they may hold user text).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

ROOTS = ("input", "vars")
MAX_DEPTH = 32

_PLACEHOLDER = re.compile(r"\$\{\s*([^{}]*?)\s*\}")
_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*(\.[A-Za-z0-9_\-]+)*")

_MISSING = object()


class TemplateError(ValueError):
    """A placeholder that cannot be resolved; the message names the path."""


def resolve(template: Any, scope: Mapping[str, Any]) -> Any:
    """Resolve every placeholder in `template` against `scope` ({"input": ..., "vars": ...})."""
    return _resolve(template, scope, 0)


def _resolve(value: Any, scope: Mapping[str, Any], depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise TemplateError(f"inputs nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        return _resolve_string(value, scope)
    if isinstance(value, Mapping):
        return {key: _resolve(item, scope, depth + 1) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_resolve(item, scope, depth + 1) for item in value]
    return value


def _resolve_string(text: str, scope: Mapping[str, Any]) -> Any:
    whole = _PLACEHOLDER.fullmatch(text)
    if whole is not None:
        return lookup(whole.group(1), scope)
    if "${" not in text:
        return text
    return _PLACEHOLDER.sub(lambda match: str(lookup(match.group(1), scope)), text)


def lookup(path: str, scope: Mapping[str, Any]) -> Any:
    """The value at dotted `path` ("vars.x.y") in `scope`; TemplateError when absent."""
    if not _PATH.fullmatch(path):
        raise TemplateError(f"invalid placeholder '${{{path}}}'")
    root, *rest = path.split(".")
    if root not in ROOTS:
        raise TemplateError(f"placeholder '${{{path}}}' must start with one of: {', '.join(ROOTS)}")
    value: Any = scope.get(root, _MISSING)
    walked = root
    for segment in rest:
        value = _step(value, segment)
        walked = f"{walked}.{segment}"
        if value is _MISSING:
            raise TemplateError(f"missing key '{walked}'")
    if value is _MISSING:
        raise TemplateError(f"missing key '{walked}'")
    return value


def _step(value: Any, segment: str) -> Any:
    if isinstance(value, Mapping):
        return value.get(segment, _MISSING)
    if isinstance(value, Sequence) and not isinstance(value, str | bytes) and segment.isdigit():
        index = int(segment)
        return value[index] if index < len(value) else _MISSING
    return _MISSING
