"""Request and response models of the account_data function (contract A of issue 23)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.platform.runtime.batch import SqsRecord


class ExportOut(BaseModel):
    id: str
    status: Literal["queued", "running", "ready", "failed", "expired"]
    created_at: datetime
    finished_at: datetime | None = None
    expires_at: datetime | None = Field(default=None, description="when the zip is removed")
    size_bytes: int | None = None
    error: str | None = None


class ExportAnswer(BaseModel):
    export: ExportOut


class ExportList(BaseModel):
    items: list[ExportOut] = Field(description="the caller's exports, newest first (last 10)")


class ExportDownload(BaseModel):
    url: str = Field(description="a short-lived presigned GET URL of the zip")
    expires_at: datetime = Field(description="when the URL stops working")


class DeleteAccountIn(BaseModel):
    """The body of DELETE /v1/me (JSON): the password of an account that has one, and the
    authenticator code when MFA is on."""

    model_config = ConfigDict(extra="forbid")
    password: str | None = Field(default=None, min_length=1, max_length=1024)
    code: str | None = Field(default=None, min_length=1, max_length=64)


class AccountDeleting(BaseModel):
    status: Literal["deleting"] = "deleting"


class ExportMessage(BaseModel):
    export_id: str


class PurgeMessage(BaseModel):
    purge_id: str


class Events(BaseModel):
    """What arrives at `/events`: an SQS batch (ExportQueue or PurgeQueue), or the hourly
    schedule."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    Records: list[SqsRecord] | None = None
    detail_type: str | None = Field(default=None, alias="detail-type")
