"""Adapter versions in the object store (DESIGN.md §2): the files of version N of adapter A
live under `users/{owner}/adapters/{A}/v000N/` (`shared/adapters/{A}/v000N/` for a global
adapter), and what a training job trained it on under `.../adapters/{A}/train_jobs/{job}/`.
Ids are UUIDs, checked here, so a key can never climb out of its prefix. A version's files are
written once and never overwritten: a new version gets a new prefix."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

# PEFT's two file names. The model package writes and parses them; this module only moves
# bytes, so it needs no model code (tests/unit/test_layers.py checks the names agree).
CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
# What serving reads: every version has both.
FILES = (CONFIG_FILE, WEIGHTS_FILE)
# How a trained version was made (`shared.neural.training.TrainingConfig` as JSON): stored
# beside the PEFT files, no part of serving or of the checksum; a version written elsewhere
# may lack it.
TRAINING_CONFIG_FILE = "training_config.json"
OPTIONAL_FILES = (TRAINING_CONFIG_FILE,)
# A training job's dataset: one JSON object a line, and the manifest of its sources.
DATASET_FILE = "dataset.jsonl"
MANIFEST_FILE = "manifest.json"


def _home(owner_user_id: str | None, adapter_id: str) -> str:
    adapter = str(uuid.UUID(adapter_id))
    home = f"users/{uuid.UUID(owner_user_id)}" if owner_user_id else "shared"
    return f"{home}/adapters/{adapter}"


def version_prefix(owner_user_id: str | None, adapter_id: str, version: int) -> str:
    if not 1 <= version <= 9999:
        raise ValueError(f"adapter version {version} is outside 1..9999")
    return f"{_home(owner_user_id, adapter_id)}/v{version:04d}/"


def job_prefix(owner_user_id: str | None, adapter_id: str, job_id: str) -> str:
    """Where a training job writes its dataset (SPEC §15: `.../train_jobs/{job}/`)."""
    return f"{_home(owner_user_id, adapter_id)}/train_jobs/{uuid.UUID(job_id)}/"


def put_version(s3: Any, bucket: str, prefix: str, files: Mapping[str, bytes]) -> None:
    """The version's PEFT files (both required) and the optional ones it has."""
    unknown = sorted(set(files) - {*FILES, *OPTIONAL_FILES})
    missing = [name for name in FILES if name not in files]
    if unknown or missing:
        raise ValueError(f"adapter files: unknown {unknown}, missing {missing}")
    for name in (*FILES, *OPTIONAL_FILES):
        if name in files:
            s3.put_object(Bucket=bucket, Key=prefix + name, Body=files[name])


def delete_version(s3: Any, bucket: str, prefix: str) -> None:
    names = (*FILES, *OPTIONAL_FILES)  # deleting a key that is not there is not an error
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": prefix + name} for name in names]})


def put_dataset(s3: Any, bucket: str, prefix: str, *, dataset: bytes, manifest: bytes) -> str:
    """A job's dataset and manifest (a retried attempt replaces its own); returns the
    dataset's key."""
    s3.put_object(Bucket=bucket, Key=prefix + DATASET_FILE, Body=dataset)
    s3.put_object(Bucket=bucket, Key=prefix + MANIFEST_FILE, Body=manifest)
    return prefix + DATASET_FILE
