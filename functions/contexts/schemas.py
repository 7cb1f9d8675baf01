"""Request and response models of the contexts function."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from functions.files.schemas import FileOut


class ContextSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    chunk_size: int | None = Field(default=None, ge=64, le=4000)
    chunk_overlap: int | None = Field(default=None, ge=0, le=2000)
    pii_scrub: bool | None = None


class ContextCreate(ContextSettings):
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    visibility: Literal["private", "global"] = "private"
    file_ids: list[str] = Field(
        default_factory=list, max_length=100, description="files to attach (and ingest) right away"
    )


class ContextUpdate(ContextSettings):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)


class ContextOut(BaseModel):
    id: str
    owner_user_id: str
    name: str
    description: str | None
    visibility: str
    settings: dict[str, Any]
    embedding_version: str
    created_at: datetime
    updated_at: datetime
    stats: dict[str, Any] = Field(default_factory=dict)


class ContextStats(BaseModel):
    files: int
    chunks: int
    ingestion: dict[str, int] = Field(description="files by status: pending, processing, ...")
    ingestion_lag_s: float = Field(description="how long the oldest pending file has waited")
    last_ingested_at: datetime | None = None


class ContextPage(BaseModel):
    items: list[ContextOut]
    next_cursor: str | None = None


class ContextQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    owner: Literal["me", "global", "all"] = "all"
    cursor: str | None = Field(default=None, max_length=512)
    limit: int = Field(default=50, ge=1, le=200)


class AttachIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    file_ids: list[str] = Field(min_length=1, max_length=100)
    chunk_size: int | None = Field(default=None, ge=64, le=4000)
    chunk_overlap: int | None = Field(default=None, ge=0, le=2000)


class AttachOut(BaseModel):
    attached: list[dict[str, Any]]


class ContextFileQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cursor: str | None = Field(default=None, max_length=512)
    limit: int = Field(default=50, ge=1, le=200)


class ContextFileOut(BaseModel):
    """A file in the context and its ingestion there (`status`: pending, processing, ready or
    failed; `chunks`: how many it has in the context)."""

    file: FileOut
    status: str
    error: str | None = None
    chunks: int
    attached_at: datetime
    ingested_at: datetime | None = None


class ContextFilePage(BaseModel):
    items: list[ContextFileOut]
    next_cursor: str | None = None


class ChunkQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    file_id: str | None = None
    cursor: int | None = Field(default=None, ge=0)
    limit: int = Field(default=20, ge=1, le=100)


class ChunkPage(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: int | None = None


class ChunkOut(BaseModel):
    """One chunk (what a citation's `chunk_id` names), with its file's name."""

    id: str
    context_id: str
    file_id: str | None = None
    file_name: str
    content: str
    heading: str | None = None
    page: int | None = None
    start: int | None = None
    end: int | None = None


class SearchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str = Field(min_length=1, max_length=2000)
    k: int = Field(default=5, ge=1, le=50)
    mode: Literal["hybrid", "dense", "text"] = "hybrid"


class SearchOut(BaseModel):
    hits: list[dict[str, Any]]
