"""The whitelisted functions and value rules of the policy expression language.

Each function checks the types it is given and raises ExpressionError, never a bare TypeError,
so a policy author learns which call was wrong. None is accepted where "nothing" has an obvious
meaning (no vector is similar to anything, no text contains anything) so rules over optional
context stay simple.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import numpy as np

from shared.domain.expressions.errors import ExpressionError


def is_number(value: Any) -> bool:
    """Numbers for arithmetic and ordering; bools are refused although Python counts them."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def kind(value: Any) -> str:
    return "None" if value is None else type(value).__name__


def member(item: Any, container: Any) -> bool:
    """`item in container` for the containers an expression may hold; TypeError never escapes."""
    if isinstance(container, str):
        if not isinstance(item, str):
            raise ExpressionError(f"'in' a string needs a string, got {kind(item)}")
        return item in container
    if isinstance(container, Mapping | list | tuple | set | frozenset):
        try:
            return item in container
        except TypeError:  # an unhashable item tested against a mapping or set
            return False
    raise ExpressionError(f"'in' needs a string, list or mapping, got {kind(container)}")


def cosine_similarity(a: Any, b: Any) -> float:
    """Cosine of two float vectors; a missing or zero vector gives 0.0 (nothing is similar).
    Vectorised: the router calls it per adapter and rule on 384-d vectors every turn, and the
    dry-run for every replayed turn."""
    va, vb = _vector(a), _vector(b)
    if va is None or vb is None or not va.size or not vb.size:
        return 0.0
    if va.shape != vb.shape:
        raise ExpressionError(f"cosine_similarity of vectors of length {va.size} and {vb.size}")
    norm = math.sqrt(float(va @ va)) * math.sqrt(float(vb @ vb))
    if norm == 0.0 or not math.isfinite(norm):
        return 0.0
    return max(-1.0, min(1.0, float(va @ vb) / norm))


def _vector(value: Any) -> np.ndarray | None:
    if value is None:
        return None
    if isinstance(value, str | bytes | Mapping) or not hasattr(value, "__iter__"):
        raise ExpressionError(f"cosine_similarity needs vectors, got {kind(value)}")
    if isinstance(value, np.ndarray):
        array = value
    else:
        try:
            array = np.asarray(list(value))
        except (TypeError, ValueError):
            raise ExpressionError("cosine_similarity needs vectors of numbers") from None
    # Numbers only (numpy would read "1.5" as a number: a string item is refused instead).
    if array.ndim != 1 or array.dtype.kind not in "biuf":
        raise ExpressionError("cosine_similarity needs vectors of numbers")
    return array.astype(np.float64, copy=False)


def _contains(haystack: Any, needle: Any) -> bool:
    """Case-insensitive substring for strings, membership for lists; None holds nothing."""
    if haystack is None:
        return False
    if isinstance(haystack, str):
        if not isinstance(needle, str):
            raise ExpressionError(f"contains(text, ...) needs a string, got {kind(needle)}")
        return needle.casefold() in haystack.casefold()
    return member(needle, haystack)


def _len(value: Any) -> int:
    if isinstance(value, str | list | tuple | Mapping | set | frozenset):
        return len(value)
    raise ExpressionError(f"len() of {kind(value)}")


def _cluster_label_contains(cluster: Any, text: Any) -> bool:
    """`cluster` is a label or a mapping with a "label" (and maybe "keywords", its fallback
    label's terms, which count too); no cluster or label contains nothing. A list of them (the
    turn's nearest `clusters`) holds when any of them does."""
    if not isinstance(text, str):
        raise ExpressionError(f"cluster_label_contains needs a string, got {kind(text)}")
    if isinstance(cluster, list | tuple):
        return any(_cluster_label_contains(c, text) for c in cluster)
    words = cluster.get("keywords") if isinstance(cluster, Mapping) else None
    if isinstance(words, list | tuple) and any(_cluster_label_contains(w, text) for w in words):
        return True
    label = cluster.get("label") if isinstance(cluster, Mapping) else cluster
    if label is None:
        return False
    if not isinstance(label, str):
        raise ExpressionError(f"cluster label must be a string, got {kind(label)}")
    return text.casefold() in label.casefold()


def _lower(value: Any) -> str:
    if not isinstance(value, str):
        raise ExpressionError(f"lower() of {kind(value)}")
    return value.lower()


def _extreme(pick: Callable[..., Any], name: str) -> Callable[..., Any]:
    def extreme(*args: Any) -> Any:
        items: Sequence[Any] = args
        if len(args) == 1:
            if not isinstance(args[0], list | tuple):
                raise ExpressionError(f"{name}() of one argument needs a list")
            items = args[0]
        if not items:
            raise ExpressionError(f"{name}() of an empty list")
        if not (all(is_number(x) for x in items) or all(isinstance(x, str) for x in items)):
            raise ExpressionError(f"{name}() needs all numbers or all strings")
        return pick(items)

    return extreme


def _abs(value: Any) -> Any:
    if not is_number(value):
        raise ExpressionError(f"abs() of {kind(value)}")
    return abs(value)


# name -> (implementation, fewest args, most args or None for any number)
FUNCTION_TABLE: Mapping[str, tuple[Callable[..., Any], int, int | None]] = MappingProxyType(
    {
        "cosine_similarity": (cosine_similarity, 2, 2),
        "contains": (_contains, 2, 2),
        "len": (_len, 1, 1),
        "cluster_label_contains": (_cluster_label_contains, 2, 2),
        "lower": (_lower, 1, 1),
        "min": (_extreme(min, "min"), 1, None),
        "max": (_extreme(max, "max"), 1, None),
        "abs": (_abs, 1, 1),
    }
)
FUNCTIONS: frozenset[str] = frozenset(FUNCTION_TABLE)


def call(name: str, args: Sequence[Any]) -> Any:
    """Call the whitelisted function `name`, checking its number of arguments first."""
    impl, fewest, most = FUNCTION_TABLE[name]
    if len(args) < fewest or (most is not None and len(args) > most):
        wanted = str(fewest) if fewest == most else f"{fewest} or more"
        raise ExpressionError(f"{name}() takes {wanted} argument(s), got {len(args)}")
    return impl(*args)
