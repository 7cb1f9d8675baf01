"""Request and response models of the artifacts function (the `X`Create/`X`Public layering).

`schema` is a field name pydantic's BaseModel already uses, so the models hold it as `body`
and read and write it under the alias `schema`."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Visibility = Literal["private", "shared", "global"]
TYPE_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)?$"


class _Aliased(BaseModel):
    model_config = ConfigDict(
        extra="forbid", validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )


class ArtifactCreate(_Aliased):
    type: str | None = Field(
        default=None,
        max_length=64,
        pattern=TYPE_PATTERN,
        description="the kind; when given it must equal schema.kind",
    )
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    body: dict[str, Any] = Field(alias="schema", description="the artifact's JSON, with `kind`")
    visibility: Visibility = "private"


class ArtifactUpdate(_Aliased):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    visibility: Visibility | None = None
    patch: list[dict[str, Any]] | None = Field(
        default=None, max_length=256, description="RFC 6902 JSON Patch applied to the schema"
    )
    body: dict[str, Any] | None = Field(
        default=None, alias="schema", description="a whole new schema (instead of `patch`)"
    )
    change_note: str | None = Field(default=None, max_length=500)
    base_version: int | None = Field(
        default=None, ge=1, description="refuse (409 stale_version) unless still current"
    )


class ArtifactQuery(BaseModel):
    type: str | None = Field(
        default=None,
        max_length=64,
        pattern=TYPE_PATTERN,
        description="a kind (workflow.chat) or its family (workflow)",
    )
    visibility: Visibility | None = None
    owner: Literal["me", "global", "all"] = "all"
    cursor: str | None = Field(default=None, max_length=200)
    limit: int = Field(default=30, ge=1, le=100)


class ArtifactVersionQuery(BaseModel):
    cursor: str | None = Field(default=None, max_length=200)
    limit: int = Field(default=30, ge=1, le=100)


class ArtifactOut(_Aliased):
    id: str
    type: str
    name: str
    description: str | None
    body: dict[str, Any] = Field(alias="schema")
    visibility: str
    version: int
    owner: Literal["me", "global", "shared"]
    created_at: datetime
    updated_at: datetime


class ArtifactPage(BaseModel):
    items: list[ArtifactOut]
    next_cursor: str | None


class ArtifactVersionOut(_Aliased):
    artifact_id: str
    version: int
    body: dict[str, Any] = Field(alias="schema")
    created_by: str
    change_note: str | None
    created_at: datetime


class ArtifactVersionPage(BaseModel):
    items: list[ArtifactVersionOut]
    next_cursor: str | None
