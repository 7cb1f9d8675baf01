"""Request and response models of the adapters function."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.domain.adapters.versions import MAX_VERSION

AdapterType = Literal["persona", "skill", "domain", "style"]
JobStatus = Literal["queued", "running", "succeeded", "rejected", "failed", "cancelled"]
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- adapters and their versions ------------------------------------------------------------


class AdapterQuery(_Strict):
    type: AdapterType | None = Field(default=None, description="the adapter type")
    owner: Literal["me", "global", "all"] = "all"
    cursor: str | None = Field(default=None, max_length=200)
    limit: int = Field(default=30, ge=1, le=100)


class VersionQuery(_Strict):
    cursor: str | None = Field(
        default=None, max_length=200, description="`versions.next_cursor` of the last answer"
    )
    limit: int = Field(default=20, ge=1, le=100, description="versions per page")


class RouterStateOut(BaseModel):
    usage_count: int
    success_score: float | None
    last_used_at: datetime | None
    last_trained_at: datetime | None


class AdapterOut(BaseModel):
    id: str
    name: str
    description: str | None
    adapter_type: str
    mode: str | None = Field(description="the served version's mode (local, prompt, ...)")
    visibility: str
    owner: Literal["me", "shared", "global"]
    version: int = Field(description="the version served (the pointer)")
    latest_version: int
    version_count: int = Field(description="versions kept")
    has_weights: bool = Field(description="the served version has LoRA weights")
    base_model: str | None
    router: RouterStateOut
    created_at: datetime
    updated_at: datetime


class AdapterPage(BaseModel):
    items: list[AdapterOut]
    next_cursor: str | None


class VersionOut(BaseModel):
    version: int
    served: bool = Field(description="the pointer names this version")
    candidate: bool = Field(description="not promoted by its training and not served")
    has_weights: bool
    mode: str | None
    checksum: str | None
    rank: int | None
    alpha: float | None
    metrics: dict[str, Any] | None = Field(
        description="held-out loss and alignment (new vs current), n_heldout, train loss, "
        "steps, seconds, as training recorded them"
    )
    promoted: bool | None = Field(description="training's decision; null: none recorded")
    job_id: str | None = Field(description="the job that made it (shown to the owner only)")
    training_config: dict[str, Any] | None
    created_by: str
    change_note: str | None
    created_at: datetime


class VersionPage(BaseModel):
    items: list[VersionOut]
    next_cursor: str | None


class AdapterDetail(AdapterOut):
    versions: VersionPage = Field(description="newest first; page with `?cursor&limit`")


# --- training jobs ----------------------------------------------------------------------------


class JobQuery(_Strict):
    status: JobStatus | None = None
    adapter_id: str | None = Field(default=None, pattern=UUID_PATTERN)
    cursor: str | None = Field(default=None, max_length=200)
    limit: int = Field(default=20, ge=1, le=100)


class ProgressOut(BaseModel):
    step: int | None
    total: int | None
    loss: float | None


class JobErrorOut(BaseModel):
    attempt: int | None
    reason: str | None


class JobOut(BaseModel):
    id: str
    adapter_id: str
    status: JobStatus
    progress: ProgressOut | None = Field(description="the last step the train function reported")
    metrics: dict[str, Any] | None
    reason: str | None = Field(description="why it failed, was cancelled or was retried")
    attempt: int
    max_attempts: int
    errors: list[JobErrorOut] = Field(description="each failed attempt's reason")
    events_used: int | None = Field(description="feedback events it trained on")
    loss: float | None
    base_version: int | None = Field(description="the version it started from")
    new_version: int | None
    promoted: bool | None
    version_state: Literal["served", "kept", "discarded"] | None
    trigger: str | None
    kind: Literal["persona", "skill"] = Field(
        default="persona", description="a persona's job (one user's feedback) or a skill's"
    )
    cluster_ids: list[str] = Field(
        default_factory=list, description="a skill's job: the clusters whose events it trains on"
    )
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime


class JobPage(BaseModel):
    items: list[JobOut]
    next_cursor: str | None


# --- admin: the pointer -----------------------------------------------------------------------


class RollbackIn(_Strict):
    version: int = Field(ge=1, le=MAX_VERSION, description="an existing version to serve")
    note: str | None = Field(default=None, min_length=1, max_length=500)


class PointerOut(BaseModel):
    adapter_id: str
    version: int = Field(description="served now")
    previous_version: int
    moved: bool = Field(description="false: that version was served already")
    updated_at: datetime


class DiscardOut(BaseModel):
    adapter_id: str
    version: int
    discarded: bool
    files_removed: bool = Field(description="false: the version had no files")


# --- admin: every user's jobs and adapters ----------------------------------------------------


class AdminJobQuery(JobQuery):
    user_id: str | None = Field(default=None, pattern=UUID_PATTERN, description="the owner")


class AdminJobOut(JobOut):
    user_id: str | None = Field(description="the owner (null: a global skill's job)")
    user_email: str | None


class AdminJobPage(BaseModel):
    items: list[AdminJobOut]
    next_cursor: str | None


class AdminAdapterQuery(_Strict):
    type: AdapterType | None = Field(default=None, description="the adapter type")
    user_id: str | None = Field(default=None, pattern=UUID_PATTERN, description="the owner")
    cursor: str | None = Field(default=None, max_length=200)
    limit: int = Field(default=30, ge=1, le=100)


class AdminAdapterOut(AdapterOut):
    owner: Literal["me", "shared", "global", "private"] = Field(  # type: ignore[assignment]
        description="relative to the admin; `private`: another user's private adapter"
    )
    owner_user_id: str | None = Field(description="null: a global adapter nobody owns")
    owner_email: str | None
    status: Literal["active", "disabled"] = Field(
        default="active", description="disabled: pruned, or merged into another (SPEC §7.4)"
    )
    merged_into: str | None = Field(default=None, description="the adapter it was merged into")
    cluster_id: str | None = Field(default=None, description="the cluster a skill serves")
    cluster_label: str | None = Field(default=None, description="that cluster's label")


class AdminAdapterPage(BaseModel):
    items: list[AdminAdapterOut]
    next_cursor: str | None


class AdminAdapterDetail(AdminAdapterOut):
    versions: VersionPage = Field(description="newest first; page with `?cursor&limit`")
