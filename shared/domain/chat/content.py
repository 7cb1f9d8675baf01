"""`content_struct`: a message's structured segments, validated and normalized.

Storage keeps the documented keys of each segment type (plus a free `meta` object) and drops
what is not a valid segment, as the spec asks, recording how many were dropped; `linearize`
gives the plain `content` text the same segments read as.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError


class _Segment(BaseModel):
    model_config = ConfigDict(extra="ignore")  # unknown keys are dropped, not refused
    meta: dict[str, Any] | None = None


class TextSegment(_Segment):
    type: Literal["text"]
    text: str
    start: int | None = Field(default=None, ge=0)
    end: int | None = Field(default=None, ge=0)
    tags: list[str] | None = None


class CodeSegment(_Segment):
    type: Literal["code"]
    text: str
    language: str | None = Field(default=None, max_length=64)


class CitationSegment(_Segment):
    type: Literal["citation"]
    text: str = ""
    source_id: str
    chunk_id: str | None = None
    path: str | None = None
    score: float | None = None
    # The sentence of the cited passage, verbatim, that best supports the answer (None: none).
    quote: str | None = None


class ToolCallSegment(_Segment):
    type: Literal["tool_call"]
    name: str = Field(max_length=128)
    arguments: dict[str, Any] = Field(default_factory=dict)
    result: Any = None
    status: str | None = None
    duration_ms: float | None = Field(default=None, ge=0)


class AttachmentSegment(_Segment):
    type: Literal["attachment"]
    kind: str = Field(max_length=32)
    uri: str = Field(max_length=2048)
    mime: str | None = Field(default=None, max_length=128)
    description: str | None = None


class RedactionSegment(_Segment):
    type: Literal["redaction"]
    text: str = "[redacted]"
    reason: str | None = None
    policy: str | None = None


Segment = Annotated[
    TextSegment
    | CodeSegment
    | CitationSegment
    | ToolCallSegment
    | AttachmentSegment
    | RedactionSegment,
    Field(discriminator="type"),
]
_SEGMENT: TypeAdapter[Any] = TypeAdapter(Segment)
MAX_SEGMENTS = 500


def normalize(content_struct: Any) -> dict[str, Any] | None:
    """The stored form: valid segments only, documented keys only; None for nothing usable."""
    if not isinstance(content_struct, dict):
        return None
    raw = content_struct.get("segments")
    segments: list[dict[str, Any]] = []
    dropped = 0
    for item in raw if isinstance(raw, list) else []:
        if len(segments) >= MAX_SEGMENTS:
            dropped += 1
            continue
        try:
            segments.append(_SEGMENT.validate_python(item).model_dump(exclude_none=True))
        except ValidationError:
            dropped += 1
    out: dict[str, Any] = {"segments": segments}
    summary = content_struct.get("summary")
    if isinstance(summary, dict):
        out["summary"] = {k: v for k, v in summary.items() if isinstance(v, str)}
    if dropped:
        out["dropped_segments"] = dropped
    return out if segments or "summary" in out else None


def linearize(content_struct: dict[str, Any] | None) -> str:
    """Plain text of the segments, as a model or a search index reads them."""
    parts = []
    for segment in (content_struct or {}).get("segments", []):
        kind = segment["type"]
        if kind == "code":
            parts.append(f"```{segment.get('language', '')}\n{segment['text']}\n```")
        elif kind in ("text", "citation", "redaction"):
            parts.append(segment.get("text", ""))
        elif kind == "attachment":
            parts.append(f"[{segment['kind']}: {segment.get('description') or segment['uri']}]")
    return "\n\n".join(p for p in parts if p)
