"""Adapter versions in the object store (DESIGN.md §2): the two PEFT files of version N of
adapter A live under `users/{owner}/adapters/{A}/v000N/` (`shared/adapters/{A}/v000N/` for a
global adapter). Ids are UUIDs, checked here, so a key can never climb out of its prefix."""

from __future__ import annotations

import uuid
from typing import Any

from shared.lm.lora import AdapterError
from shared.lm.peft import CONFIG_FILE, MAX_FILE_BYTES, WEIGHTS_FILE

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


def fetch_version(s3: Any, bucket: str, prefix: str) -> dict[str, bytes]:
    """Both files; refuses a missing or oversized object before reading its body."""
    files = {}
    for name in FILES:
        try:
            answer = s3.get_object(Bucket=bucket, Key=prefix + name)
        except s3.exceptions.NoSuchKey as exc:
            raise AdapterError(f"adapter file {prefix + name} is missing from the store") from exc
        if answer["ContentLength"] > MAX_FILE_BYTES:
            answer["Body"].close()
            raise AdapterError(f"adapter file {prefix + name} is too large")
        files[name] = answer["Body"].read()
    return files
