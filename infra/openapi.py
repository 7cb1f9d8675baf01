"""`python -m infra.openapi [--check]`: writes the OpenAPI document of template.yaml's HTTP
functions to functions/health/openapi.json, the file the health function serves at
`/v1/openapi.json` (on Lambda only the health function is in its process, so the document is
built here, where every function may be imported, and shipped with the code). `--check` fails
when the file is stale instead (`make lint`; tests/unit/test_openapi.py does the same).

The document's `info` is rewritten from settings when served (SERVICE_NAME, VERSION).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from functions.health.main import OPENAPI_FILE
from shared.platform.runtime.asgi import routes_of
from shared.platform.runtime.openapi import build_openapi
from shared.platform.settings import REPO_ROOT, Settings
from shared.platform.template import Template, load_template

_DEFAULTS = Settings.model_fields


def document(template: Template) -> dict[str, Any]:
    tables = [routes_of(spec.module) for spec in template.functions.values() if spec.http]
    return build_openapi(
        tables,
        title=str(_DEFAULTS["service_name"].default),
        version=str(_DEFAULTS["version"].default),
    )


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"


def current(template_path: Path = REPO_ROOT / "template.yaml") -> str:
    """The document as the template and the route tables make it now."""
    return render(document(load_template(template_path, Settings())))


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.openapi")
    parser.add_argument("--check", action="store_true", help="fail if the file is stale")
    args = parser.parse_args()
    fresh = current()
    stored = OPENAPI_FILE.read_text() if OPENAPI_FILE.exists() else ""
    if fresh == stored:
        return 0
    if args.check:
        print(f"{OPENAPI_FILE} is stale: run `make openapi`", file=sys.stderr)
        return 1
    OPENAPI_FILE.write_text(fresh)
    print(f"wrote {OPENAPI_FILE.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
