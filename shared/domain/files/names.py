"""File names and object keys (`users/{user_id}/files/…`).

A key is built from two UUIDs and a sanitized name, never from raw input, so no name can
climb out of its user's prefix: path traversal is impossible by construction.
"""

from __future__ import annotations

import re
import unicodedata
import uuid

from shared.domain.files.kinds import ALLOWED_EXTENSIONS, kind_for
from shared.platform.errors import ValidationError

MAX_NAME_CHARS = 160
_UNSAFE = re.compile(r"[^\w.\- ()\[\]+,@]+")


def sanitize_name(raw: str) -> str:
    """The file's own name as a safe single path segment: the last component of whatever
    path the client sent, NFC-normalized, control and shell-unfriendly characters replaced,
    no leading dots, at most MAX_NAME_CHARS (keeping the extension)."""
    name = unicodedata.normalize("NFC", raw).replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", name).strip(" ._")
    if not name:
        raise ValidationError("the file needs a name")
    if len(name) > MAX_NAME_CHARS:
        _, dot, ext = name.rpartition(".")
        keep = MAX_NAME_CHARS - len(ext) - 1 if dot and len(ext) <= 10 else MAX_NAME_CHARS
        name = f"{name[:keep]}.{ext}" if dot and len(ext) <= 10 else name[:keep]
    return name


def checked_kind(name: str) -> str:
    """The parser kind for an allowed extension; anything else is refused up front."""
    kind = kind_for(name)
    if kind is None:
        allowed = ", ".join(sorted(ALLOWED_EXTENSIONS))
        raise ValidationError(
            f"file type of {name!r} is not allowed; allowed: {allowed}",
            details={"allowed_extensions": sorted(ALLOWED_EXTENSIONS)},
        )
    return kind


def object_key(owner_user_id: str, file_id: str, name: str) -> str:
    owner, ident = uuid.UUID(owner_user_id), uuid.UUID(file_id)
    if name != sanitize_name(name):
        raise ValueError("object keys take sanitized names only")
    return f"users/{owner}/files/{ident}/{name}"
