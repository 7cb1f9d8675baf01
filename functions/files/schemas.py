"""Request and response models of the files function."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class FileOut(BaseModel):
    id: str
    name: str
    kind: str
    content_type: str | None
    size_bytes: int | None
    checksum: str | None
    status: str
    error: str | None
    created_at: datetime
    updated_at: datetime
    contexts: list[dict[str, Any]] | None = None


class UploadOut(BaseModel):
    file: FileOut
    fs_path: str = Field(description="the file's path as the user sees it (its sanitized name)")
    duplicate: bool = Field(description="the same bytes under this name were stored already")
    context_id: str | None = None
    ingestion_queued: bool


class UploadForm(BaseModel):
    """The multipart/form-data fields of POST /v1/files/upload (documentation: the body is
    streamed and parsed by functions.files.multipart, not validated with this model)."""

    file: bytes = Field(description="the file; its name from filename or filename* (RFC 5987)")
    context_id: str | None = Field(default=None, description="attach to this context")
    chunk_size: int | None = Field(default=None, ge=64, le=4000)
    chunk_overlap: int | None = Field(default=None, ge=0, le=2000)


class FilePage(BaseModel):
    items: list[FileOut]
    next_cursor: str | None = None


class FileQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cursor: str | None = Field(default=None, max_length=512)
    limit: int = Field(default=50, ge=1, le=200)


class PresignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    filename: str = Field(min_length=1, max_length=1024)
    size_bytes: int = Field(ge=1, description="the file's size; the store enforces it")


class PresignOut(BaseModel):
    file: FileOut
    url: str
    fields: dict[str, str]
    expires_in_s: int


class CompleteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    context_id: str | None = None
    chunk_size: int | None = Field(default=None, ge=64, le=4000)
    chunk_overlap: int | None = Field(default=None, ge=0, le=2000)


class DownloadQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Shown by the browser, not saved: text kinds as plain text (HTML as its source), PDFs as PDFs.
    inline: bool = False


class DownloadOut(BaseModel):
    url: str
    expires_in_s: int


class LimitsOut(BaseModel):
    plan_tier: str
    max_bytes: int
    allowed_extensions: list[str]
    tiers: dict[str, int]
