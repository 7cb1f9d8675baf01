"""template.yaml is the single source of truth: it must agree with the route tables."""

from __future__ import annotations

import datetime as dt
import importlib
import subprocess
import sys
from pathlib import Path

from infra.dispatcher.app import next_fire
from shared.config import REPO_ROOT, Settings
from shared.runtime.routes import Access
from shared.runtime.template import load_raw, load_template

TEMPLATE = REPO_ROOT / "template.yaml"


def _template():
    return load_template(TEMPLATE, Settings(_env_file=None))


def test_template_routes_equal_the_union_of_route_tables() -> None:
    template = _template()
    declared, tabled = set(), set()
    for spec in template.functions.values():
        module = importlib.import_module(spec.module)
        assert callable(module.handler)
        declared |= {(e.method, e.path, e.streaming) for e in spec.http}
        for route in module.ROUTES.routes:
            if route.access is Access.INTERNAL:
                assert spec.sqs or spec.schedules, (
                    f"{spec.logical_id} has internal routes but no events"
                )
                assert (route.method, route.path) == ("POST", "/events")
            else:
                tabled.add((route.method, route.path, route.streaming))
    assert declared == tabled


def test_queue_functions_report_batch_failures_and_queues_outlast_them() -> None:
    template = _template()
    for spec in template.functions.values():
        for event in spec.sqs:
            assert event.report_batch_item_failures, spec.logical_id
            queue = template.queues[event.queue]
            assert queue.visibility_timeout_s >= 6 * spec.timeout_s, queue.logical_id


def test_every_work_queue_has_a_dead_letter_queue() -> None:
    template = _template()
    dlqs = {q.dead_letter_queue for q in template.queues.values() if q.dead_letter_queue}
    for queue in template.queues.values():
        if queue.logical_id in dlqs:
            continue
        assert queue.dead_letter_queue in template.queues, queue.logical_id
        assert queue.max_receive_count and queue.max_receive_count >= 1


def test_resource_names_follow_the_stack_name() -> None:
    template = load_template(TEMPLATE, Settings(stack_name="demo", _env_file=None))
    assert template.queues["IngestQueue"].name == "demo-ingest"
    assert template.buckets["DataBucket"].name == "demo-data"


def test_every_function_is_served_by_the_lambda_web_adapter() -> None:
    raw = load_raw(TEMPLATE)
    layers = raw["Globals"]["Function"]["Layers"]
    assert layers and raw["Globals"]["Function"]["Handler"] == "run.sh"
    assert (REPO_ROOT / "run.sh").exists()


def test_cfn_lint_passes() -> None:
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run([str(cfn_lint), str(TEMPLATE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_schedule_expressions() -> None:
    start = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
    assert next_fire("rate(1 minute)", start) == start + dt.timedelta(minutes=1)
    assert next_fire("rate(2 hours)", start) == start + dt.timedelta(hours=2)
    assert next_fire("cron(30 3 * * ? *)", start) == dt.datetime(2026, 1, 2, 3, 30, tzinfo=dt.UTC)
