"""template.yaml is the single source of truth: it must agree with the route tables."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest

from infra.aws.package import as_packaged
from infra.dispatcher.app import next_fire
from shared.platform.runtime.asgi import routes_of
from shared.platform.runtime.routes import Access
from shared.platform.settings import REPO_ROOT, Settings
from shared.platform.template import load_raw, load_template
from tests.helpers import write_template_with_fixtures

TEMPLATE = REPO_ROOT / "template.yaml"


@pytest.fixture(scope="module")
def with_fixtures(tmp_path_factory) -> Path:
    """template.yaml plus the test-only SQS and streaming functions: the same rules hold."""
    return write_template_with_fixtures(TEMPLATE, tmp_path_factory.mktemp("t") / "template.yaml")


@pytest.fixture(params=["main", "with_fixtures"])
def template_path(request) -> Path:
    return TEMPLATE if request.param == "main" else request.getfixturevalue("with_fixtures")


def _template(path: Path = TEMPLATE):
    return load_template(path, Settings(_env_file=None))


def test_template_routes_equal_the_union_of_route_tables(template_path: Path) -> None:
    template = _template(template_path)
    declared, tabled = set(), set()
    for spec in template.functions.values():
        routes = routes_of(spec.module)  # a function module exports its ROUTES table
        declared |= {(e.method, e.path, e.streaming) for e in spec.http}
        for route in routes.routes:
            if route.access is Access.INTERNAL:
                # Queue, scheduled and WebSocket events all arrive at the adapter's /events.
                assert (
                    spec.sqs or spec.schedules or spec.logical_id in template.socket_functions()
                ), f"{spec.logical_id} has internal routes but no events"
                assert (route.method, route.path) == ("POST", "/events")
            else:
                tabled.add((route.method, route.path, route.streaming))
    assert declared == tabled


def test_queue_functions_report_batch_failures_and_queues_outlast_them(template_path: Path) -> None:
    template = _template(template_path)
    for spec in template.functions.values():
        for event in spec.sqs:
            assert event.report_batch_item_failures, spec.logical_id
            queue = template.queues[event.queue]
            assert queue.visibility_timeout_s >= 6 * spec.timeout_s, queue.logical_id


def test_the_chat_websocket_is_declared_with_its_three_routes(template_path: Path) -> None:
    template = _template(template_path)
    (api,) = template.websockets.values()
    assert api.local_path == "/v1/chat/stream"
    assert api.route_selection_expression == "$request.body.type"
    assert dict(api.routes) == dict.fromkeys(
        ("$connect", "$default", "$disconnect"), "ChatSocketFunction"
    )
    socket_function = template.functions["ChatSocketFunction"]
    assert not socket_function.http  # not an HTTP route: the socket is its own API
    routes = routes_of(socket_function.module).routes
    assert [(r.method, r.path, r.access) for r in routes] == [("POST", "/events", Access.INTERNAL)]


def test_the_function_behind_the_socket_may_manage_its_connections() -> None:
    resources = load_raw(TEMPLATE)["Resources"]
    statements = resources["ChatSocketFunction"]["Properties"]["Policies"][0]["Statement"]
    assert statements[0]["Action"] == "execute-api:ManageConnections"
    assert "${ChatSocketApi}" in statements[0]["Resource"]["Fn::Sub"]
    permission = resources["ChatSocketPermission"]["Properties"]
    assert permission["FunctionName"] == {"Ref": "ChatSocketFunction"}
    assert permission["Principal"] == "apigateway.amazonaws.com"


def test_the_admin_bundle_guard_is_declared() -> None:
    site = _template().static_site
    assert site is not None and site.directory == REPO_ROOT / "frontend" / "dist"
    guard = site.guard_for("/admin/index.html")
    assert guard is not None and guard.access == "admin"
    assert site.guard_for("/admin") == guard
    assert site.guard_for("/administrator.html") is None
    assert site.guard_for("/index.html") is None


def test_every_work_queue_has_a_dead_letter_queue(template_path: Path) -> None:
    template = _template(template_path)
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


def test_cfn_lint_passes(template_path: Path) -> None:
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run([str(cfn_lint), str(template_path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


class _NoManagedPolicies:
    def load(self) -> dict[str, str]:
        return {}


def test_sam_transform_succeeds_and_its_output_passes_cfn_lint(
    template_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """cfn-lint checks SAM resources against schemas only; the real SAM translator also
    validates events (SQS, Api with STREAM, Schedule), and its CloudFormation output is linted
    with every Lambda and API Gateway rule (the WebSocket API's integration naming the
    function SAM generates included)."""
    from samtranslator.translator.transform import transform

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    raw = load_raw(template_path)
    # What `sam package` does: code locations (functions and layers) become S3 URIs.
    transformed = transform(as_packaged(raw), {}, _NoManagedPolicies())
    kinds = {resource["Type"] for resource in transformed["Resources"].values()}
    assert {"AWS::Lambda::Function", "AWS::ApiGateway::RestApi", "AWS::Events::Rule"} <= kinds
    assert {
        "AWS::ApiGatewayV2::Api",
        "AWS::ApiGatewayV2::Route",
        "AWS::Lambda::Permission",
    } <= kinds
    out = tmp_path / "transformed.json"
    out.write_text(json.dumps(transformed))
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run([str(cfn_lint), str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_schedule_expressions() -> None:
    start = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
    assert next_fire("rate(1 minute)", start) == start + dt.timedelta(minutes=1)
    assert next_fire("rate(2 hours)", start) == start + dt.timedelta(hours=2)
    assert next_fire("cron(30 3 * * ? *)", start) == dt.datetime(2026, 1, 2, 3, 30, tzinfo=dt.UTC)
