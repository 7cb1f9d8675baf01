"""Adapter versions in the object store (DESIGN.md §2): the two PEFT files of version N of
adapter A live under `users/{owner}/adapters/{A}/v000N/` (`shared/adapters/{A}/v000N/` for a
global adapter). Ids are UUIDs, checked here, so a key can never climb out of its prefix."""

from __future__ import annotations

import uuid
from typing import Any

# PEFT's two file names. The model package writes and parses them; this module only moves
# bytes, so it needs no model code (tests/unit/test_layers.py checks the names agree).
CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
FILES = (CONFIG_FILE, WEIGHTS_FILE)


def version_prefix(owner_user_id: str | None, adapter_id: str, version: int) -> str:
    adapter = str(uuid.UUID(adapter_id))
    if not 1 <= version <= 9999:
        raise ValueError(f"adapter version {version} is outside 1..9999")
    home = f"users/{uuid.UUID(owner_user_id)}" if owner_user_id else "shared"
    return f"{home}/adapters/{adapter}/v{version:04d}/"


def put_version(s3: Any, bucket: str, prefix: str, files: dict[str, bytes]) -> None:
    for name in FILES:
        s3.put_object(Bucket=bucket, Key=prefix + name, Body=files[name])


def delete_version(s3: Any, bucket: str, prefix: str) -> None:
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": prefix + name} for name in FILES]})
