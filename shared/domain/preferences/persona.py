"""The persona: one `adapter.lora` artifact per user, made on their first feedback, and the
instructions their `always` / `never` notes give it.

Version 1 has no weights: its schema is mode `prompt`, `fs_dir` null, so it *is* the base
model plus the user's instructions (a zero-B LoRA would equal the base too, at the price of a
bank slot and the adapter's matmuls on every turn, and of the model's shapes written down
outside the model package; and a trainer must choose A's initialisation itself anyway). The
first training job publishes the first weight version through the adapter registry
(`registry.publish(adapter_id=persona)`), which makes the artifact's current version a
weighted one; resetting to the base writes a new weightless version, like a rollback.

How the router sees the persona (`shape_candidates`, called when a turn loads its candidates):
- no weights: mode `prompt`, every instruction as prompt text;
- weights: mode `hybrid`, so on an API backend without the weights every instruction still
  goes as prompt text (the hybrid fallback); on the local service the weights apply, and the
  instructions the served version has *not* learned go as prompt text beside them
  (`pending_instructions`). An instruction counts as learned by version V when the job that
  produced a version <= V took its text in (`learned_version`); an edit, a reset, or moving
  the pointer to an earlier version (`pointer_moved`: a rollback or an approval) makes it
  pending again, so a note newer than the weights is applied at once, never lost behind them.
Instructions are rendered newest first, whole, within `PROMPT_MAX_CHARS` (the 135M model's
window is small); the ones left out are reported as such by `state`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from shared.domain.adapters import versions
from shared.domain.adapters.registry import KIND
from shared.domain.routing.candidates import AdapterCandidate
from shared.platform.db.pool import Connection
from shared.platform.errors import NotFound

PERSONA = "persona"
# The base the persona's weights are trained on (shared.neural.peft.BASE_MODEL; a unit test
# checks they agree, since this layer may not import the model package).
BASE_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
PROMPT_MAX_CHARS = 1200
PREAMBLE = "Follow these standing preferences of the user:"


@dataclass(frozen=True)
class Personalization:
    user_id: str
    adapter_id: str | None
    learning_paused: bool
    reset_at: datetime | None


@dataclass(frozen=True)
class Instruction:
    id: str
    kind: str
    text: str
    source_event_id: int | None
    learned_version: int | None
    created_at: datetime
    updated_at: datetime


def base_schema(version: int) -> dict[str, Any]:
    """A weightless persona version (the adapter.lora kind's fields)."""
    return {
        "kind": KIND, "mode": "prompt", "backend": "local", "provider": "local",
        "format": "peft", "base_model": BASE_MODEL, "adapter_type": PERSONA,
        "fs_dir": None, "checksum": None, "version": version,
        "remote_model_id": None, "prompt_instructions": None,
    }  # fmt: skip


def has_weights(schema: dict[str, Any]) -> bool:
    return bool(schema.get("fs_dir")) and bool(schema.get("checksum"))


# --- the per-user row: lock, persona ------------------------------------------------------


async def lock(conn: Connection, user_id: str) -> Personalization:
    """The user's personalization row, created if missing and locked for this transaction:
    every write of a user's feedback, controls and jobs takes it first, so they serialise
    (one job per user, the cooldown and the threshold hold under concurrent feedback)."""
    await conn.execute(
        "INSERT INTO personalization (user_id) VALUES (%s) ON CONFLICT DO NOTHING", (user_id,)
    )
    row = await (
        await conn.execute(
            "SELECT user_id::text, adapter_id::text, learning_paused, reset_at"
            " FROM personalization WHERE user_id = %s FOR UPDATE",
            (user_id,),
        )
    ).fetchone()
    assert row is not None
    return Personalization(*row)


async def ensure_persona(conn: Connection, state: Personalization) -> Personalization:
    """The user's persona adapter, made now if they have none (an `adapter.lora` artifact at a
    weightless version 1 and its router state row). Under `lock`."""
    if state.adapter_id is not None:
        return state
    user_id = state.user_id
    found = await (
        await conn.execute(
            "SELECT id::text FROM artifact WHERE owner_user_id = %s AND type = %s"
            " AND schema->>'adapter_type' = %s ORDER BY created_at LIMIT 1",
            (user_id, KIND, PERSONA),
        )
    ).fetchone()
    if found is not None:
        adapter_id = found[0]
    else:
        adapter_id = str(uuid.uuid4())
        taken = await (
            await conn.execute(
                "SELECT 1 FROM artifact WHERE owner_user_id = %s AND type = %s AND name = %s",
                (user_id, KIND, PERSONA),
            )
        ).fetchone()
        name = f"{PERSONA}-{adapter_id[:8]}" if taken else PERSONA
        schema = base_schema(1)
        await conn.execute(
            "INSERT INTO artifact (id, owner_user_id, type, name, description, schema, version,"
            " visibility) VALUES (%s, %s, %s, %s, %s, %s, 1, 'private')",
            (adapter_id, user_id, KIND, name, "Your persona: learns from your feedback.",
             Jsonb(schema)),
        )  # fmt: skip
        await conn.execute(
            "INSERT INTO artifact_version (artifact_id, version, schema, created_by, change_note)"
            " VALUES (%s, 1, %s, 'system', 'persona: the base model (no weights yet)')",
            (adapter_id, Jsonb(schema)),
        )
    await conn.execute(
        "INSERT INTO adapter_router_state (artifact_id) VALUES (%s) ON CONFLICT DO NOTHING",
        (adapter_id,),
    )
    await conn.execute(
        "UPDATE personalization SET adapter_id = %s, updated_at = now() WHERE user_id = %s",
        (adapter_id, user_id),
    )
    return replace(state, adapter_id=adapter_id)


async def reset_to_base(conn: Connection, state: Personalization) -> int | None:
    """Points the persona at a new weightless version (when the current one has weights) and
    makes every instruction pending again. Returns the new version, or None when already at
    the base. Under `lock`; the caller cancels jobs and records the reset."""
    if state.adapter_id is not None:
        row = await (
            await conn.execute(
                "SELECT version, schema FROM artifact WHERE id = %s FOR UPDATE",
                (state.adapter_id,),
            )
        ).fetchone()
    else:
        row = None
    await conn.execute(
        "UPDATE persona_instruction SET learned_version = NULL WHERE user_id = %s",
        (state.user_id,),
    )
    if row is None or state.adapter_id is None or not has_weights(row[1]):
        return None
    # max + 1, not the served one + 1: after a rollback the served version is not the newest
    version = await versions.next_number(conn, state.adapter_id)
    schema = base_schema(version)
    await conn.execute(
        "INSERT INTO artifact_version (artifact_id, version, schema, created_by, change_note)"
        " VALUES (%s, %s, %s, 'user', 'reset to the base model')",
        (state.adapter_id, version, Jsonb(schema)),
    )
    await conn.execute(
        "UPDATE artifact SET version = %s, schema = %s, fs_path = NULL, updated_at = now()"
        " WHERE id = %s",
        (version, Jsonb(schema), state.adapter_id),
    )
    return version


async def pointer_moved(conn: Connection, adapter_id: str, version: int) -> int:
    """The adapter now serves `version` (a rollback or an approval, in the caller's
    transaction). If it is a user's persona, an instruction learned by a later version was not
    learned by this one: it is pending again (prompt text), and stays so for versions trained
    from here on. Returns how many instructions that made pending."""
    cursor = await conn.execute(
        "UPDATE persona_instruction i SET learned_version = NULL FROM personalization p"
        " WHERE p.adapter_id = %s AND i.user_id = p.user_id AND i.learned_version > %s",
        (adapter_id, version),
    )
    return cursor.rowcount


# --- instructions -------------------------------------------------------------------------

_INSTRUCTION = (
    "SELECT id::text, kind, text, source_event_id, learned_version, created_at, updated_at"
    " FROM persona_instruction"
)


async def instructions(conn: Connection, user_id: str) -> list[Instruction]:
    """The user's instructions, most recently changed first."""
    cursor = await conn.execute(
        _INSTRUCTION + " WHERE user_id = %s ORDER BY updated_at DESC, id", (user_id,)
    )
    return [Instruction(*row) for row in await cursor.fetchall()]


async def sync_from_event(
    conn: Connection, user_id: str, event_id: int, *, signal: str, notes: str | None,
    usable: bool,
) -> Instruction | None:  # fmt: skip
    """An `always` / `never` event with notes (that the content check let through) is an
    instruction; replacing the event with anything else removes it."""
    text = (notes or "").strip()
    if signal not in ("always", "never") or not text or not usable:
        await conn.execute(
            "DELETE FROM persona_instruction WHERE source_event_id = %s AND user_id = %s",
            (event_id, user_id),
        )
        return None
    row = await (
        await conn.execute(
            "INSERT INTO persona_instruction (user_id, kind, text, source_event_id)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (source_event_id) DO UPDATE SET"
            " kind = EXCLUDED.kind, text = EXCLUDED.text, learned_version = NULL,"
            " updated_at = now() RETURNING id::text",
            (user_id, signal, text[:500], event_id),
        )
    ).fetchone()
    assert row is not None
    return await instruction(conn, user_id, row[0])


async def instruction(conn: Connection, user_id: str, instruction_id: str) -> Instruction:
    try:
        key = str(uuid.UUID(instruction_id))
    except ValueError:
        raise NotFound("no such instruction") from None
    row = await (
        await conn.execute(_INSTRUCTION + " WHERE id = %s AND user_id = %s", (key, user_id))
    ).fetchone()
    if row is None:
        raise NotFound("no such instruction")
    return Instruction(*row)


async def edit_instruction(
    conn: Connection, user_id: str, instruction_id: str, *, kind: str | None, text: str | None
) -> Instruction:
    """A changed text is new to the weights: it applies as prompt text until a version learns
    it."""
    current = await instruction(conn, user_id, instruction_id)
    await conn.execute(
        "UPDATE persona_instruction SET kind = %s, text = %s, learned_version = NULL,"
        " updated_at = now() WHERE id = %s",
        (kind or current.kind, (text or current.text).strip()[:500], current.id),
    )
    return await instruction(conn, user_id, current.id)


async def delete_instruction(conn: Connection, user_id: str, instruction_id: str) -> None:
    current = await instruction(conn, user_id, instruction_id)
    await conn.execute("DELETE FROM persona_instruction WHERE id = %s", (current.id,))


def render(items: Sequence[tuple[str, str]], *, max_chars: int = PROMPT_MAX_CHARS) -> str | None:
    """`(kind, text)` pairs, newest first, as one system-prompt block; whole instructions
    only, as many as fit `max_chars`. None when there are none."""
    lines: list[str] = []
    size = len(PREAMBLE)
    for kind, text in items:
        line = f"- {'Always' if kind == 'always' else 'Never'}: {' '.join(text.split())}"
        if size + 1 + len(line) > max_chars:
            break
        lines.append(line)
        size += 1 + len(line)
    return "\n".join([PREAMBLE, *lines]) if lines else None


def fits(items: Sequence[Instruction], *, max_chars: int = PROMPT_MAX_CHARS) -> int:
    """How many of `items` (newest first) `render` takes."""
    text = render([(i.kind, i.text) for i in items], max_chars=max_chars)
    return 0 if text is None else text.count("\n")


def learned_by(item: Instruction, version: int | None, weighted: bool) -> bool:
    """Whether the served version's weights took this instruction's text in."""
    return (
        weighted
        and version is not None
        and item.learned_version is not None
        and item.learned_version <= version
    )


# --- what the router sees -----------------------------------------------------------------

_PERSONA = """
SELECT p.adapter_id::text, a.version, a.schema
  FROM personalization p JOIN artifact a ON a.id = p.adapter_id
 WHERE p.user_id = %s
"""


async def shape_candidates(
    conn: Connection, user_id: str, candidates: tuple[AdapterCandidate, ...]
) -> tuple[AdapterCandidate, ...]:
    """The user's persona among a turn's candidates, with its mode and instructions as the
    module docstring says; other candidates are left as they are."""
    row = await (await conn.execute(_PERSONA, (user_id,))).fetchone()
    if row is None or not any(c.id == row[0] for c in candidates):
        return candidates
    adapter_id, version, schema = row
    weighted = has_weights(schema)
    items = await instructions(conn, user_id)
    every = render([(i.kind, i.text) for i in items])
    pending = render(
        [(i.kind, i.text) for i in items if not learned_by(i, version, weighted)]
    )  # fmt: skip
    shaped = []
    for candidate in candidates:
        if candidate.id == adapter_id:
            candidate = replace(
                candidate, adapter_type=PERSONA, mode="hybrid" if weighted else "prompt",
                prompt_instructions=every, pending_instructions=pending if weighted else None,
            )  # fmt: skip
        shaped.append(candidate)
    return tuple(shaped)
