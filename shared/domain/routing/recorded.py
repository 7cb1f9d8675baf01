"""The routing inputs a turn's trace keeps, so a policy can be replayed over past turns with no
model call (ConfigOps' dry-run, issue 20), and the way back to a `RoutingContext`.

What is kept, and why in this form:
- The context embedding as little-endian float16, base64: 384 values in 1,024 characters,
  durable with the message (the Redis embedding cache expires, so a key into it is no
  reference). float16 keeps ~3 significant digits: a cosine moves by well under 1e-3 (unit
  test), so only a turn within that of a rule's threshold could replay differently.
- The message is not copied: `variables["message"]` becomes a reference (its length and a
  hash prefix) and a replay reads the question from the turn's parent message.
- Every other variable the rules saw, as JSON; one that is not JSON or is large is kept as an
  `$elided` marker, which a replay reports as undetermined rather than guessing.
- Candidates as the rules saw them (id, type, mode, version, name, cluster), without their
  384-d centroids: a replay reads the centroids from `adapter_router_state` by id.
- The modes the backend could run, and safety risk.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from collections.abc import Mapping, Sequence
from typing import Any

from shared.domain.routing.candidates import AdapterCandidate
from shared.domain.routing.engine import RoutingContext

FORMAT = 1
MESSAGE = "message"
ELIDED = "$elided"
MAX_VARIABLE_CHARS = 2048  # a variable bigger than this as JSON is not worth a trace's bytes


class NotReplayable(Exception):
    """A stored block a replay cannot rebuild; the message says why (for the skip counts)."""


def encode_vector(vector: Sequence[float] | None) -> str | dict[str, Any] | None:
    if vector is None:
        return None
    try:
        packed = struct.pack(f"<{len(vector)}e", *vector)
    except (OverflowError, struct.error):  # not a unit embedding: float16 cannot hold it
        return elided(vector)
    return base64.b64encode(packed).decode("ascii")


def decode_vector(text: Any) -> tuple[float, ...] | None:
    if is_elided(text):
        raise NotReplayable("the embedding was not kept")
    if not text:
        return None
    raw = base64.b64decode(text)
    return struct.unpack(f"<{len(raw) // 2}e", raw)


def text_digest(text: str) -> str:
    """A short hash: enough to notice that a replay read a different question."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def elided(value: Any) -> dict[str, Any]:
    return {ELIDED: type(value).__name__}


def is_elided(value: Any) -> bool:
    return isinstance(value, Mapping) and ELIDED in value


def json_or_elided(value: Any, *, limit: int = MAX_VARIABLE_CHARS) -> Any:
    """`value` when it is small plain JSON, else a marker saying what it was."""
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return elided(value)
    return value if len(text) <= limit else elided(value)


def _candidate(c: AdapterCandidate) -> dict[str, Any]:
    fields = {
        "id": c.id,
        "type": c.adapter_type,
        "mode": c.mode,
        "version": c.version,
        "name": c.name,
        "cluster_id": c.cluster_id,
        "cluster": c.cluster_label,
    }
    return {k: v for k, v in fields.items() if v not in (None, "")}


def record(
    context: RoutingContext, *, supported_modes: frozenset[str], message: str | None = None
) -> dict[str, Any]:
    """The JSON block a trace keeps for `context` (the turn's question is `message`)."""
    variables = {}
    for name, value in context.variables.items():
        if name == MESSAGE and isinstance(value, str) and value == message:
            variables[name] = {"$ref": "parent", "chars": len(value), "sha": text_digest(value)}
        else:
            variables[name] = json_or_elided(value)
    return {
        "format": FORMAT,
        "embedding": encode_vector(context.ctx_embedding),
        "safety_risk": context.safety_risk,
        "modes": sorted(supported_modes),
        "candidates": [_candidate(c) for c in context.candidates],
        "variables": variables,
    }


def rebuild(
    stored: Mapping[str, Any],
    *,
    message: str | None,
    centroids: Mapping[str, tuple[float, ...] | None],
) -> RoutingContext:
    """The `RoutingContext` the turn routed with: `message` is its question (the parent
    message's text), `centroids` the adapters' current centroids by id (absent: none)."""
    if stored.get("format") != FORMAT:
        raise NotReplayable(f"unknown inputs format {stored.get('format')!r}")
    variables: dict[str, Any] = {}
    for name, value in (stored.get("variables") or {}).items():
        if isinstance(value, Mapping) and value.get("$ref") == "parent":
            if message is None:
                raise NotReplayable("the question is gone")
            if text_digest(message) != value.get("sha"):
                raise NotReplayable("the question differs from the one routed")
            value = message
        variables[name] = value
    candidates = tuple(
        AdapterCandidate(
            id=c["id"],
            adapter_type=c.get("type", "persona"),
            mode=c.get("mode", "local"),
            version=c.get("version"),
            name=c.get("name", ""),
            cluster_id=c.get("cluster_id"),
            cluster_label=c.get("cluster"),
            centroid=centroids.get(c["id"]),
        )
        for c in stored.get("candidates") or []
    )
    return RoutingContext(
        ctx_embedding=decode_vector(stored.get("embedding")),
        candidates=candidates,
        safety_risk=str(stored.get("safety_risk") or "low"),
        variables=variables,
    )


def supported_modes(stored: Mapping[str, Any]) -> frozenset[str]:
    return frozenset(stored.get("modes") or ())
