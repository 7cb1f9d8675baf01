"""`make migrate`: start the local stack if needed, then apply migrations and seeds."""

from __future__ import annotations

import json
import sys

from infra import stack
from infra.stack.process import StackError
from shared.platform.db.migrate import MigrationError, migrate
from shared.platform.logs import configure_logging
from shared.platform.settings import get_settings


def main() -> int:
    settings = get_settings()
    configure_logging(level=settings.log_level, service="migrate")
    try:
        stack.up(settings, provision=False)
        report = migrate(settings.postgres_dsn)
    except (StackError, MigrationError) as exc:
        print(f"migrate: {exc}", file=sys.stderr)
        return 1
    print(
        json.dumps(
            {
                "applied": report.applied,
                "already_applied": len(report.already_applied),
                "seeds": report.seeds,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
