"""How the benchmarks that run on a lent GPU machine hand back their figures (standard library
only: that machine has no stack libraries)."""

from __future__ import annotations

import json
import os
from typing import Any


def emit_json(result: dict[str, Any], name: str) -> None:
    """The run's last line: every figure as one JSON object, also written to $OUT/<name> when
    OUT is set (what a device call writes there comes back)."""
    line = json.dumps(result, sort_keys=True)
    if os.environ.get("OUT"):
        with open(os.path.join(os.environ["OUT"], name), "w") as out:
            out.write(line + "\n")
    print(line)
