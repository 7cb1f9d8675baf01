"""content_struct normalization: documented keys kept, invalid segments dropped."""

from __future__ import annotations

from shared.domain.chat.content import linearize, normalize


def test_valid_segments_keep_their_documented_keys_only() -> None:
    stored = normalize(
        {
            "segments": [
                {"type": "text", "text": "Paris.", "start": 0, "end": 6, "colour": "red"},
                {"type": "code", "text": "print('hi')", "language": "python"},
                {"type": "citation", "text": "…", "source_id": "f1", "chunk_id": "c5",
                 "score": 0.87, "meta": {"page": 3}},
                {"type": "tool_call", "name": "lookup", "arguments": {"id": "42"},
                 "result": {"status": "ok"}, "duration_ms": 12},
                {"type": "attachment", "kind": "image", "uri": "s3://b/k", "mime": "image/png"},
                {"type": "redaction", "reason": "policy", "policy": "p0"},
            ],
            "summary": {"highlights": "capital of France", "bad": 3},
        }
    )  # fmt: skip
    assert stored is not None and "dropped_segments" not in stored
    assert stored["segments"][0] == {"type": "text", "text": "Paris.", "start": 0, "end": 6}
    assert stored["segments"][2]["meta"] == {"page": 3}
    assert stored["segments"][5]["text"] == "[redacted]"
    assert stored["summary"] == {"highlights": "capital of France"}


def test_invalid_segments_are_dropped_and_counted() -> None:
    stored = normalize(
        {"segments": [{"type": "text", "text": "ok"}, {"type": "video"}, "junk",
                      {"type": "citation", "text": "no source"}, {"type": "text"}]}
    )  # fmt: skip
    assert stored == {"segments": [{"type": "text", "text": "ok"}], "dropped_segments": 4}
    assert normalize({"segments": ["junk"]}) is None
    assert normalize("not an object") is None and normalize(None) is None


def test_linearize_reads_like_the_message() -> None:
    text = linearize(
        normalize(
            {"segments": [{"type": "text", "text": "Run this:"},
                          {"type": "code", "text": "ls", "language": "sh"},
                          {"type": "attachment", "kind": "image", "uri": "s3://x",
                           "description": "a chart"}]}
        )
    )  # fmt: skip
    assert text == "Run this:\n\n```sh\nls\n```\n\n[image: a chart]"


def test_a_citation_keeps_its_supporting_quote() -> None:
    quote = "It was about 100 metres tall,\none of the tallest."
    stored = normalize({"segments": [{"type": "citation", "source_id": "f1", "quote": quote}]})
    assert stored is not None and stored["segments"][0]["quote"] == quote
    older = normalize({"segments": [{"type": "citation", "source_id": "f1"}]})
    assert older is not None and older["segments"][0].get("quote") is None
