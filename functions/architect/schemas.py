"""Request and response models of the architect function."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from shared.platform.runtime.batch import SqsRecord


class Events(BaseModel):
    """What arrives at `/events`: an SQS batch of ArchitectQueue (an admin's queued runs), or
    the 6-hourly schedule."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    Records: list[SqsRecord] | None = None
    detail_type: str | None = Field(default=None, alias="detail-type")


class RunMessage(BaseModel):
    """One ArchitectQueue message: the queued run to carry out."""

    model_config = ConfigDict(extra="forbid")
    run_id: int = Field(ge=1, le=2**63 - 1)


class ArchitectReport(BaseModel):
    """What one run did; see shared.domain.configops.architect for how the counts add up."""

    skipped: str | None
    targets: int
    too_long: int
    asked: int
    answered: int
    model_failed: int
    model_error: str | None
    unparsable: int
    unparsable_reasons: dict[str, int]
    empty: int
    items: int
    over_limit: int
    rate_limited: int
    refused: int
    duplicate: int
    proposed: int
    rejected_invalid: int
    problem_kinds: dict[str, int]
    pending: int
    unexpected: int
    patch_ids: list[int]
    prompt_tokens: int
    completion_tokens: int
    answers: list[str]


class ArchitectRunOut(BaseModel):
    """One run: `queued` → `running` → `done` | `skipped` | `failed`, with its report when it
    ended (`error` when it failed)."""

    id: int
    trigger: str
    requested_by: str | None
    status: str
    report: ArchitectReport | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class RunRequested(BaseModel):
    """The run an admin asked for (`queued: false`: one was already queued or running, and
    this is it)."""

    run: ArchitectRunOut
    queued: bool


class RunQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    before: int | None = Field(default=None, ge=1, le=2**63 - 1)
    limit: int = Field(default=20, ge=1, le=100)


class RunPage(BaseModel):
    items: list[ArchitectRunOut]
    next_before: int | None


class RunId(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: int = Field(ge=1, le=2**63 - 1)
