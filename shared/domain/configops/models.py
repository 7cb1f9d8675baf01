"""What a ConfigOps patch is: who proposed it, what it targets, and its life
(`pending` → `approved` | `rejected`; `approved` → `applying` → `applied` | `failed`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

STATUSES = ("pending", "approved", "rejected", "applying", "applied", "failed")
PROPOSERS = ("system_llm", "human_admin", "user")
DECISIONS = ("approve", "reject")
# The queue of the apply step (template.yaml), and the one message a patch ever gets there.
APPLY_QUEUE = "ApplyPatchQueue"


def apply_dedup_key(patch_id: int) -> str:
    return f"config_patch:{patch_id}:apply"


@dataclass(frozen=True)
class Proposer:
    """`system_llm` (no user: the scheduled jobs, the architect step), `human_admin`, `user`."""

    kind: str
    user_id: str | None = None

    @classmethod
    def system(cls) -> Proposer:
        return cls("system_llm", None)

    @classmethod
    def of(cls, user_id: str, *, is_admin: bool) -> Proposer:
        return cls("human_admin" if is_admin else "user", user_id)

    @property
    def privileged(self) -> bool:
        """Admins and the system propose for any artifact; users for their own private ones."""
        return self.kind != "user"

    @property
    def subject(self) -> str:
        """Whose `configops` rate budget a proposal spends."""
        return self.user_id or "system"


@dataclass(frozen=True)
class NewArtifact:
    """What a patch that creates an artifact makes: its kind, name, visibility and owner
    (None: the system's own, which must then be global). `owner_user_id` is read from the
    system's proposals, and from any privileged proposer's new `adapter.lora` (a skill is its
    cluster's user's); others own what they create."""

    kind: str
    name: str
    description: str | None = None
    visibility: str = "private"
    owner_user_id: str | None = None


@dataclass(frozen=True)
class Patch:
    id: int
    artifact_id: str | None
    kind: str | None
    owner_user_id: str | None
    proposer: str
    proposed_by: str | None
    patch: list[dict[str, Any]]
    justification: str | None
    status: str
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

    @property
    def creates(self) -> bool:
        return self.artifact_id is None and self.new_name is not None


COLUMNS = (
    "p.id, p.artifact_id::text, p.kind, p.owner_user_id::text, p.proposer, p.proposed_by::text,"
    " p.patch, p.justification, p.status, p.base_version, p.new_name, p.new_visibility,"
    " p.new_description, p.validation, p.dry_run, p.decided_by::text, p.decision_reason,"
    " p.applied_version,"
    " p.failure_reason, p.meta, p.created_at, p.decided_at, p.applied_at, p.updated_at"
)


def patch_of(row: tuple[Any, ...]) -> Patch:
    return Patch(*row)
