"""Request and response models of the cluster function."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.platform.runtime.batch import SqsRecord

UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
Scope = Literal["user", "global"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Events(BaseModel):
    """What arrives at `/events`: an SQS batch of ClusterQueue, or the hourly schedule."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    Records: list[SqsRecord] | None = None
    detail_type: str | None = Field(default=None, alias="detail-type")


class RunMessage(_Strict):
    """One ClusterQueue message: a user's run, or the global one."""

    scope: Scope
    user_id: str | None = Field(default=None, pattern=UUID_PATTERN)

    @model_validator(mode="after")
    def _owner(self) -> RunMessage:
        if (self.scope == "user") != (self.user_id is not None):
            raise ValueError("a user run names its user_id; the global run none")
        return self


class RunIn(_Strict):
    scope: Literal["user", "global", "all"] = Field(
        default="all",
        description="one user's run, the global run, or every due user's and the global",
    )
    user_id: str | None = Field(default=None, pattern=UUID_PATTERN, description="for scope=user")

    @model_validator(mode="after")
    def _owner(self) -> RunIn:
        if (self.scope == "user") != (self.user_id is not None):
            raise ValueError("scope=user needs user_id, and only it takes one")
        return self


class RunQueued(BaseModel):
    queued: int = Field(description="runs queued on ClusterQueue")


class ClusterQuery(_Strict):
    cursor: str | None = Field(default=None, max_length=200)
    limit: int = Field(default=30, ge=1, le=100)


class AdminClusterQuery(ClusterQuery):
    scope: Scope | None = None
    user_id: str | None = Field(default=None, pattern=UUID_PATTERN)


class BoundSkillOut(BaseModel):
    """The skill adapter bound to a cluster (SPEC §7.3)."""

    adapter_id: str
    name: str
    version: int = Field(description="the version served")
    status: Literal["active", "disabled"]
    has_weights: bool = Field(description="false until its first training job is served")


class ClusterOut(BaseModel):
    id: str
    scope: Scope
    label: str | None = Field(description="the model's label, else the top keywords")
    description: str | None
    labeled_by: Literal["keywords", "model"] | None
    keywords: list[str] = Field(description="c-TF-IDF terms, most distinctive first")
    size: int
    positive_count: int
    negative_count: int
    created_at: datetime
    updated_at: datetime
    skill: BoundSkillOut | None = Field(default=None, description="its skill adapter, if any")


class AdminClusterOut(ClusterOut):
    user_id: str | None = Field(description="the owner of a user cluster; null: global")
    owner_email: str | None = Field(default=None, description="the owner's e-mail; null: global")


class ClusterPage(BaseModel):
    items: list[ClusterOut]
    next_cursor: str | None


class AdminClusterPage(BaseModel):
    items: list[AdminClusterOut]
    next_cursor: str | None


# --- the system's skill review (shared.domain.configops.skills, .pruning) -----------------


class ReviewOutcome(BaseModel):
    """What became of a review's proposals: proposed = pending + rejected_invalid + unexpected."""

    proposed: int = Field(description="patches stored through ConfigOps")
    pending: int = Field(description="valid: awaiting an admin's decision")
    rejected_invalid: int = Field(description="stored rejected by validation")
    unexpected: int
    rate_limited: int = Field(description="refused by the `configops` budget: not stored")
    refused: int = Field(description="another error before it was stored")
    patch_ids: list[int]
    problems: list[dict[str, Any]] = Field(description="the invalid ones' first problems")


class SkillReportOut(ReviewOutcome):
    scope: Literal["user", "global", "all"]
    user_id: str | None
    considered: int = Field(description="live clusters of the scope")
    qualified: int = Field(description="clusters that earned a skill proposal")
    skipped: dict[str, int] = Field(description="why the others did not: reason → clusters")


class PruneReportOut(ReviewOutcome):
    skipped: str | None = Field(description="why nothing was reviewed")
    considered: int = Field(description="active skills with router state and no open patch")
    disable: list[str] = Field(description="adapters proposed for disabling")
    merges: list[dict[str, Any]] = Field(description="{source, into, similarity} proposed")


class SkillReviewOut(BaseModel):
    skills: SkillReportOut = Field(description="skills proposed for qualifying clusters")
    pruning: PruneReportOut = Field(description="disable and merge proposals")
