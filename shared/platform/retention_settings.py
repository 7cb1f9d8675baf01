"""Settings of the retention schedule (functions/retention): how long sent outbox rows and
scratch objects stay.

A mixin of `shared.platform.settings.Settings` (one settings object; this file only keeps
settings.py short).
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings


class RetentionSettings(BaseSettings):
    # Outbox rows already sent are history once their consumers had every chance to act on
    # them (SQS keeps a message 4 days at most; the mail re-drive looks back one day): deleted
    # after this many days.
    outbox_retention_days: float = Field(default=7.0, ge=1)
    # Scratch in the object store (a presigned upload never completed, a multipart upload
    # never finished, an object under users/{uid}/voice|files/ whose row was never written:
    # a process killed mid-write) is removed once it is this old.
    scratch_ttl_s: float = Field(default=86_400.0, ge=3600)
    # Rows or keys deleted per statement or request; one run stops after RETENTION_MAX_BATCHES
    # of each kind, the next run goes on (the schedule is hourly).
    retention_batch: int = Field(default=1000, ge=1, le=1000)
    retention_max_batches: int = Field(default=100, ge=1)
