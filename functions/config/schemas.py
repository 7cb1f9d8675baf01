"""Request and response models of the config function (ConfigOps patches)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
KIND_PATTERN = r"^[a-z][a-z0-9_]*\.[a-z0-9_]+$"
Status = Literal["pending", "approved", "rejected", "applying", "applied", "failed"]


class NewArtifactIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str = Field(max_length=64, pattern=KIND_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    visibility: Literal["private", "shared", "global"] = "private"
    owner_user_id: str | None = Field(
        default=None, pattern=UUID_PATTERN,
        description="a new adapter.lora only: the cluster's user (null for a global skill)",
    )  # fmt: skip


class ProposeIn(BaseModel):
    """A patch on `artifact_id` (or `restore_version` of it: a rollback), or a new artifact
    (`create`) whose schema is `patch` applied to `{"kind": create.kind}`."""

    model_config = ConfigDict(extra="forbid")
    artifact_id: str | None = Field(default=None, pattern=UUID_PATTERN)
    create: NewArtifactIn | None = None
    base_version: int | None = Field(
        default=None, ge=1, le=2**31 - 1,
        description="the version the patch was written against (default: the current one)",
    )  # fmt: skip
    patch: list[dict[str, Any]] | None = Field(
        default=None, min_length=1, max_length=256, description="RFC 6902 JSON Patch operations"
    )
    restore_version: int | None = Field(
        default=None, ge=1, le=2**31 - 1,
        description="a rollback: the patch that restores this earlier version's schema",
    )  # fmt: skip
    justification: str | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _one_target(self) -> ProposeIn:
        if (self.artifact_id is None) == (self.create is None):
            raise ValueError("name either artifact_id or create")
        if (self.patch is None) == (self.restore_version is None):
            raise ValueError("send either patch or restore_version")
        if self.create is not None and self.restore_version is not None:
            raise ValueError("restore_version needs an existing artifact_id")
        return self


class PatchQuery(BaseModel):
    status: Status | None = None
    artifact_id: str | None = Field(default=None, pattern=UUID_PATTERN)
    cursor: str | None = Field(default=None, max_length=200)
    limit: int = Field(default=30, ge=1, le=100)


class DecideIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Literal["approve", "reject"]
    reason: str = Field(min_length=1, max_length=2000)


class ApplyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    patch_id: int = Field(ge=1, le=2**63 - 1)


class PatchOut(BaseModel):
    id: int
    artifact_id: str | None
    kind: str | None
    owner_user_id: str | None
    proposer: str
    proposed_by: str | None
    patch: list[dict[str, Any]]
    justification: str | None
    status: Status
    base_version: int | None
    new_name: str | None
    new_visibility: str | None
    new_description: str | None
    validation: dict[str, Any] | None
    dry_run: dict[str, Any] | None
    decided_by: str | None
    decision_reason: str | None
    applied_version: int | None
    failure_reason: str | None
    meta: dict[str, Any]
    created_at: datetime
    decided_at: datetime | None
    applied_at: datetime | None
    updated_at: datetime


class PatchPage(BaseModel):
    items: list[PatchOut]
    next_cursor: str | None


class PreviewOut(BaseModel):
    """A patch's effect: `before` (its base version's schema; a new artifact's is
    `{"kind": …}`) and `after` (the patched schema; null with `problems` when it does not
    apply, or when the base version is no longer kept)."""

    patch_id: int
    base_version: int | None
    before: Any
    after: Any
    problems: list[dict[str, Any]]
