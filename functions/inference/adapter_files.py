"""Reading an adapter version's two PEFT files from the object store, for the adapter cache.

Here, in the inference service, rather than beside `shared.domain.adapters.objects` (which
writes and deletes them): reading refuses bad files with the model package's `AdapterError`,
and only the inference service (and training) may import the model package.
"""

from __future__ import annotations

from typing import Any

from shared.domain.adapters.objects import FILES
from shared.neural.lora import AdapterError
from shared.neural.peft import MAX_FILE_BYTES


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
