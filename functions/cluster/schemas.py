"""Request and response models of the cluster function."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

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


class AdminClusterOut(ClusterOut):
    user_id: str | None = Field(description="the owner of a user cluster; null: global")


class ClusterPage(BaseModel):
    items: list[ClusterOut]
    next_cursor: str | None


class AdminClusterPage(BaseModel):
    items: list[AdminClusterOut]
    next_cursor: str | None
