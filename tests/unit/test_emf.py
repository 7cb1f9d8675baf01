"""The embedded metric format lines a function writes in Lambda, checked against the structure
CloudWatch's EMF specification requires (a JSON schema of it, plus the rules a schema cannot
say: every dimension and metric named is a top-level member of the right type)."""

from __future__ import annotations

import io
import json
from typing import Any

import jsonschema
import pytest

from shared.platform import emf
from shared.platform.ops_metrics import OpsSample, emit_emf

# https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
EMF_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["_aws"],
    "properties": {
        "_aws": {
            "type": "object",
            "required": ["Timestamp", "CloudWatchMetrics"],
            "properties": {
                "Timestamp": {"type": "integer", "minimum": 0},
                "CloudWatchMetrics": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["Namespace", "Dimensions", "Metrics"],
                        "properties": {
                            "Namespace": {"type": "string", "minLength": 1, "maxLength": 1024},
                            "Dimensions": {
                                "type": "array",
                                "items": {
                                    "type": "array",
                                    "items": {"type": "string", "minLength": 1, "maxLength": 255},
                                    "maxItems": 30,
                                },
                            },
                            "Metrics": {
                                "type": "array",
                                "maxItems": 100,
                                "items": {
                                    "type": "object",
                                    "required": ["Name"],
                                    "properties": {
                                        "Name": {"type": "string", "minLength": 1},
                                        "Unit": {"enum": ["Seconds", "Milliseconds", "Count",
                                                          "Bytes", "Percent", "None"]},
                                    },
                                },
                            },
                        },
                    },
                },
            },
        }
    },
}  # fmt: skip


def check_emf(line: str) -> dict[str, Any]:
    document = json.loads(line)
    jsonschema.validate(document, EMF_SCHEMA)
    for directive in document["_aws"]["CloudWatchMetrics"]:
        for dimension_set in directive["Dimensions"]:
            for name in dimension_set:
                assert isinstance(document.get(name), str), f"dimension {name} is no member"
        for metric in directive["Metrics"]:
            value = document.get(metric["Name"])
            assert isinstance(value, int | float), f"metric {metric['Name']} is no number"
    return document


def test_a_request_in_lambda_writes_one_valid_emf_line(monkeypatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "acs-ChatFunction-abc")
    out = io.StringIO()
    emf.emit_request(
        function="chat", route="/v1/conversations/{id}/messages", status=200,
        duration_ms=41.5, event=False, trace_id="ab" * 16, stream=out,
    )  # fmt: skip
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    document = check_emf(lines[0])
    directive = document["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "AdaptiveChat"
    assert ["Function", "Route"] in directive["Dimensions"] and [] in directive["Dimensions"]
    assert document["Route"] == "/v1/conversations/{id}/messages"
    assert (document["Requests"], document["Errors"], document["Latency"]) == (1, 0, 41.5)
    assert document["trace_id"] == "ab" * 16


def test_a_failed_event_counts_as_an_invocation_error_not_a_request(monkeypatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "acs-MailerFunction-abc")
    out = io.StringIO()
    emf.emit_request(
        function="mailer", route="/events", status=None, duration_ms=3.0, event=True, stream=out
    )
    document = check_emf(out.getvalue())
    assert document["Invocations"] == 1 and document["InvocationErrors"] == 1
    assert "Requests" not in document and "Latency" not in document


def test_nothing_is_written_outside_lambda(monkeypatch) -> None:
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    out = io.StringIO()
    emf.emit_request(function="f", route="/x", status=200, duration_ms=1, event=False, stream=out)
    assert out.getvalue() == ""


def test_the_domain_sample_is_one_valid_line_without_dimensions() -> None:
    out = io.StringIO()
    emit_emf(OpsSample(training_failed_15m=4, ingestion_lag_s=3700.0), out)
    document = check_emf(out.getvalue())
    assert document["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [[]]
    assert document["TrainingJobsFailed15m"] == 4 and document["IngestionLagSeconds"] == 3700.0


def test_the_checker_refuses_a_metric_that_is_not_a_member() -> None:
    """The check above can fail: a directive naming a metric the line lacks is refused."""
    broken = emf.emf_document(
        metrics={"Latency": (1.0, "Milliseconds")}, dimensions={"Function": "f"},
        dimension_sets=[("Function",)],
    )  # fmt: skip
    del broken["Latency"]
    with pytest.raises(AssertionError):
        check_emf(json.dumps(broken))


async def test_a_function_app_in_lambda_writes_the_line_of_its_route(monkeypatch, capsys) -> None:
    """Through the function runtime: the Route dimension is the matched template."""
    import httpx

    from shared.platform.runtime.asgi import FunctionApp
    from shared.platform.runtime.routes import Route, RouteTable

    async def show(call, *, services) -> dict[str, str]:
        return {"id": call.path_params["id"]}

    table = RouteTable("things", [Route("GET", "/v1/things/{id}", show, "Show a thing")])
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "acs-ThingsFunction-abc")
    transport = httpx.ASGITransport(app=FunctionApp(table, services=None))
    async with httpx.AsyncClient(transport=transport, base_url="http://fn") as client:
        assert (await client.get("/v1/things/42")).status_code == 200
        assert (await client.get("/v1/nothing")).status_code == 404
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    documents = [check_emf(line) for line in lines]
    assert [(d["Function"], d["Route"], d["Errors"]) for d in documents] == [
        ("things", "/v1/things/{id}", 0),
        ("things", "unmatched", 0),
    ]
    assert all(len(d["trace_id"]) == 32 for d in documents)  # the call's span, in the line
