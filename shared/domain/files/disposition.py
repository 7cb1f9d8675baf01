"""A multipart part's headers, read the way browsers and curl write them.

python-multipart's `parse_options_header` encodes to Latin-1 (so `文档.txt` fails with a codec
error) and drops `filename*`. Here a header is UTF-8 when it decodes as UTF-8 (what browsers
send), else Latin-1 (any byte is a Latin-1 character); `filename*=UTF-8''%E6%96%87...`
(RFC 5987/6266) wins over `filename`. The name is sanitized later (shared.domain.files.names).
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from shared.platform.errors import ValidationError

_PARAM = re.compile(r';\s*([^\s=;]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')
_QUOTED_PAIR = re.compile(r"\\(.)")
_EXTENDED = re.compile(r"^([A-Za-z0-9!#$%&+^_`{}~-]+)'[^']*'(.*)$", re.DOTALL)


def header_text(raw: bytes | bytearray) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _extended(key: str, value: str) -> str:
    """RFC 5987 `charset'language'percent-encoded`."""
    found = _EXTENDED.match(value)
    charset = found.group(1).lower() if found else ""
    if found is None or charset not in ("utf-8", "iso-8859-1"):
        raise ValidationError(f"{key}* must be UTF-8''<percent-encoded> (RFC 5987)")
    try:
        return unquote(found.group(2), encoding=charset, errors="strict")
    except UnicodeDecodeError:
        raise ValidationError(f"{key}* is not valid {charset}") from None


def parse_disposition(value: str) -> tuple[str, dict[str, str]]:
    """(disposition type, lower-cased parameters with extended values decoded)."""
    kind, _, rest = value.partition(";")
    params: dict[str, str] = {}
    extended: dict[str, str] = {}
    for key, raw in _PARAM.findall(";" + rest):
        key = key.lower()
        if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
            raw = _QUOTED_PAIR.sub(r"\1", raw[1:-1])
        else:
            raw = raw.strip()
        if key.endswith("*"):
            extended[key[:-1]] = _extended(key[:-1], raw)
        else:
            params[key] = raw
    return kind.strip().lower(), {**params, **extended}
