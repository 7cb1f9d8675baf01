"""`make admin EMAIL=you@example.com`: give an existing account the admin role (the bootstrap
for the first admin; later ones are promoted in the admin API). Starts the local stack if
needed; the change is audited like any other role change."""

from __future__ import annotations

import argparse
import asyncio
import sys

from infra import stack
from infra.stack.process import StackError
from shared.platform import audit
from shared.platform.audit import Actor
from shared.platform.db.migrate import MigrationError, migrate
from shared.platform.db.pool import create_pool
from shared.platform.logs import configure_logging
from shared.platform.settings import Settings, get_settings


async def promote(settings: Settings, email: str) -> str:
    async with create_pool(settings) as pool, pool.connection() as conn, conn.transaction():
        row = await (
            await conn.execute(
                "SELECT id::text, role FROM app_user WHERE email = %s FOR UPDATE", (email,)
            )
        ).fetchone()
        if row is None:
            raise LookupError(f"no account with email {email}: sign up first, then run this")
        user_id, role = row
        if role == "admin":
            return f"{email} is an admin already"
        await conn.execute("UPDATE app_user SET role = 'admin' WHERE id = %s", (user_id,))
        await audit.record(
            conn,
            "role_changed",
            actor=Actor(user_agent="make admin"),
            subject_user_id=user_id,
            details={"from": role, "to": "admin", "via": "make admin"},
        )
    # Tokens issued before carry the old role until they are refreshed.
    return f"{email} is now an admin (refresh the session or log in again)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("email")
    args = parser.parse_args(argv)
    settings = get_settings()
    configure_logging(level=settings.log_level, service="admin")
    try:
        stack.up(settings, provision=False)
        migrate(settings.postgres_dsn)
        print(asyncio.run(promote(settings, args.email.strip().lower())))
    except (StackError, MigrationError, LookupError) as exc:
        print(f"admin: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
