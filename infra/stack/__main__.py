"""`python -m infra.stack up|down|status` (make stack-up / stack-down)."""

from __future__ import annotations

import argparse
import json
import sys

from infra import stack
from infra.stack.process import StackError
from shared.platform.logs import configure_logging
from shared.platform.settings import get_settings


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.stack")
    parser.add_argument("command", choices=["up", "down", "status"])
    args = parser.parse_args()
    settings = get_settings()
    configure_logging(level=settings.log_level, service="stack")
    try:
        if args.command == "up":
            state = stack.up(settings)
            print(
                json.dumps(
                    {
                        "started": state.started,
                        "reused": state.reused,
                        "queues": sorted(state.queue_urls),
                    }
                )
            )
        elif args.command == "down":
            print(json.dumps({"stopped": stack.down(settings)}))
        else:
            print(json.dumps(stack.status(settings)))
    except StackError as exc:
        print(f"stack: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
