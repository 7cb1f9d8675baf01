"""A global skill's training datasets name the consenting users whose feedback they hold:
each `manifest.json` lists its sources with their `user_id`, and `dataset.jsonl` holds the
text (shared/adapters/{A}/train_jobs/{job}/, functions/train/dataset.py). A purge removes the
deleted user's lines and sources from each of them. The skill's weights already trained are
not retrained on the spot: the user's events are gone from the database, so the next
training of that skill no longer sees them (docs/data-rights.md)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

import psycopg

from shared.domain.adapters.objects import DATASET_FILE, MANIFEST_FILE


async def global_dataset_prefixes(conn: psycopg.AsyncConnection) -> list[str]:
    rows = await (
        await conn.execute(
            "SELECT DISTINCT dataset_path FROM training_job"
            " WHERE user_id IS NULL AND dataset_path LIKE %s",
            (f"%/{DATASET_FILE}",),
        )
    ).fetchall()
    return [row[0][: -len(DATASET_FILE)] for row in rows]


def _read(s3: Any, bucket: str, key: str) -> bytes | None:
    try:
        return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except s3.exceptions.NoSuchKey:
        return None


def _scrub_one(s3: Any, bucket: str, prefix: str, user_id: str) -> int:
    """The user's rows out of one job's dataset and manifest; how many were removed."""
    raw = _read(s3, bucket, prefix + MANIFEST_FILE)
    if raw is None:
        return 0
    manifest = json.loads(raw)
    theirs = {s["event_id"] for s in manifest.get("sources", []) if s.get("user_id") == user_id}
    if not theirs:
        return 0
    dataset = _read(s3, bucket, prefix + DATASET_FILE) or b""
    kept = [line for line in dataset.splitlines(keepends=True)
            if line.strip() and json.loads(line).get("event_id") not in theirs]  # fmt: skip
    data = b"".join(kept)
    manifest["sources"] = [s for s in manifest["sources"] if s.get("event_id") not in theirs]
    manifest["skipped"] = [s for s in manifest.get("skipped", [])
                           if s.get("event_id") not in theirs]  # fmt: skip
    manifest["rows"] = len(kept)
    manifest["dataset_sha256"] = hashlib.sha256(data).hexdigest()
    manifest["removed_for_account_deletion"] = int(
        manifest.get("removed_for_account_deletion", 0)
    ) + len(theirs)
    s3.put_object(Bucket=bucket, Key=prefix + DATASET_FILE, Body=data)
    body = json.dumps(manifest, indent=2, sort_keys=True).encode()
    s3.put_object(Bucket=bucket, Key=prefix + MANIFEST_FILE, Body=body)
    return len(theirs)


async def scrub_global_datasets(
    conn: psycopg.AsyncConnection, s3: Any, bucket: str, user_id: str
) -> int:
    """Idempotent: a dataset without the user's sources is left as it is."""
    removed = 0
    for prefix in await global_dataset_prefixes(conn):
        removed += await asyncio.to_thread(_scrub_one, s3, bucket, prefix, user_id)
    return removed
