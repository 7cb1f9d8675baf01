"""A user's settings (`user_settings`, SPEC §2.1): locale, time zone and the voice answers are
spoken in. A user who never changed one has no row: every setting reads as unset (None)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import sql

# The settings a user may change here (default_style and flags are kept for later issues).
EDITABLE = ("locale", "timezone", "default_voice")


@dataclass(frozen=True)
class UserSettings:
    locale: str | None = None
    timezone: str | None = None
    default_voice: str | None = None


async def get(conn: Any, user_id: str) -> UserSettings:
    row = await (
        await conn.execute(
            "SELECT locale, timezone, default_voice FROM user_settings WHERE user_id = %s",
            (user_id,),
        )
    ).fetchone()
    return UserSettings(*row) if row else UserSettings()


async def update(conn: Any, user_id: str, changes: dict[str, str | None]) -> UserSettings:
    """Sets the given settings (None clears one), leaving the others as they are."""
    names = [name for name in EDITABLE if name in changes]
    if names:
        columns = [sql.Identifier(name) for name in names]
        await conn.execute(
            sql.SQL(
                "INSERT INTO user_settings (user_id, {columns}) VALUES (%s, {values})"
                " ON CONFLICT (user_id) DO UPDATE SET {assignments}"
            ).format(
                columns=sql.SQL(", ").join(columns),
                values=sql.SQL(", ").join(sql.Placeholder() * len(names)),
                assignments=sql.SQL(", ").join(
                    sql.SQL("{0} = EXCLUDED.{0}").format(column) for column in columns
                ),
            ),
            (user_id, *(changes[name] for name in names)),
        )
    return await get(conn, user_id)
