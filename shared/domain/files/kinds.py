"""Which files may be uploaded: the extensions allowed, the kind of document each one is (the
ingestion's parsers read these kinds), and the content type the object is stored with."""

from __future__ import annotations

ALLOWED_EXTENSIONS: dict[str, str] = {
    **dict.fromkeys((".txt", ".text", ".log", ".csv", ".json", ".rst"), "text"),
    ".md": "markdown",
    ".markdown": "markdown",
    ".pdf": "pdf",
    ".html": "html",
    ".htm": "html",
}

CONTENT_TYPES = {"text": "text/plain", "markdown": "text/markdown", "pdf": "application/pdf",
                 "html": "text/html"}  # fmt: skip


def kind_for(filename: str) -> str | None:
    """The document kind for a file name's extension (case-insensitive); None if not allowed."""
    dot = filename.rfind(".")
    return ALLOWED_EXTENSIONS.get(filename[dot:].lower()) if dot >= 0 else None
