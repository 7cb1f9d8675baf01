"""CloudWatch embedded metric format (EMF): in Lambda, one JSON line on stdout per request or
event, which CloudWatch Logs turns into metrics without an API call (no PutMetricData latency,
no extra permission). Outside Lambda `emit_request` writes nothing: the local hosts count in
Prometheus (shared/platform/metrics.py). The inference service on ECS writes its own lines with
`emf_document`/`write` when METRICS_EMF is on (functions/inference/cache_emf.py): the task's
awslogs driver ships stdout to CloudWatch Logs, which extracts them the same way.

Spec: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

NAMESPACE = "AdaptiveChat"
# Function+Route for the per-route view, Function for the per-function one, and no dimension at
# all for the whole API (what the latency and cache alarms of template.yaml watch).
REQUEST_DIMENSIONS: tuple[tuple[str, ...], ...] = (("Function", "Route"), ("Function",), ())


def in_lambda() -> bool:
    return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))


def emf_document(
    *,
    metrics: Mapping[str, tuple[float, str]],
    dimensions: Mapping[str, str],
    dimension_sets: Sequence[Sequence[str]],
    properties: Mapping[str, Any] | None = None,
    namespace: str = NAMESPACE,
    timestamp_ms: int | None = None,
) -> dict[str, Any]:
    """One EMF document: `metrics` maps a name to (value, unit); every dimension a set names
    and every metric is a top-level member, as the spec requires; `properties` ride along
    (searchable in Logs Insights, not metrics)."""
    document: dict[str, Any] = dict(properties or {})
    document.update(dimensions)
    document.update({name: value for name, (value, _) in metrics.items()})
    document["_aws"] = {
        "Timestamp": timestamp_ms if timestamp_ms is not None else int(time.time() * 1000),
        "CloudWatchMetrics": [
            {
                "Namespace": namespace,
                "Dimensions": [list(names) for names in dimension_sets],
                "Metrics": [{"Name": name, "Unit": unit} for name, (_, unit) in metrics.items()],
            }
        ],
    }
    return document


def write(document: Mapping[str, Any], stream: TextIO | None = None) -> None:
    out = stream or sys.stdout
    out.write(json.dumps(document, separators=(",", ":")) + "\n")
    out.flush()


def emit_request(
    *,
    function: str,
    route: str,
    status: int | None,
    duration_ms: float,
    event: bool,
    trace_id: str | None = None,
    stream: TextIO | None = None,
) -> None:
    """A request (HTTP route) or an event (queue batch, schedule: `event`), in Lambda only.
    HTTP requests give Requests/Errors/Latency (`duration_ms`: to the answer's first byte, a
    stream's first event); events Invocations/InvocationErrors/Duration (to the end), so the
    API's latency is never mixed with a training job's minutes."""
    if not in_lambda():
        return
    failed = 1 if (status or 500) >= 500 else 0
    names = ("Invocations", "InvocationErrors", "Duration") if event else (
        "Requests", "Errors", "Latency"
    )  # fmt: skip
    metrics = {names[0]: (1.0, "Count"), names[1]: (float(failed), "Count"),
               names[2]: (duration_ms, "Milliseconds")}  # fmt: skip
    write(
        emf_document(
            metrics=metrics,
            dimensions={"Function": function, "Route": route},
            dimension_sets=REQUEST_DIMENSIONS,
            properties={"status": status, "trace_id": trace_id},
        ),
        stream,
    )
