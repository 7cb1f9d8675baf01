"""Settings of what operators see (docs/operations.md#metrics-traces-and-alarms): who may scrape
the metrics, where the dispatcher serves them, how often it samples the queues and the database.

A mixin of `shared.platform.settings.Settings` (one settings object; this file only keeps
settings.py short). Traces are configured by OpenTelemetry's own variables
(`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_SERVICE_NAME`), read by shared/platform/tracing.py.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings


class ObservabilitySettings(BaseSettings):
    # The public gateway can face the network, so its `/metrics` answers only a bearer of this
    # token (unset: it answers 404, as for any unknown path). The internal host and the
    # dispatcher listen on loopback and serve theirs to anyone on the machine.
    metrics_token: SecretStr | None = Field(default=None, repr=False)
    # The dispatcher's loopback metrics listener (`GET /metrics`); 0 turns it off.
    dispatcher_metrics_port: int = Field(default=9464, ge=0, le=65535)
    # How often the dispatcher samples queue depths, DLQs and the database's gauges.
    metrics_sample_interval_s: float = Field(default=15.0, gt=0)
    # Outside Lambda (the inference service on ECS), CloudWatch gets metrics only from EMF lines
    # on stdout (the awslogs driver ships them; CloudWatch Logs extracts the metrics): on, the
    # service writes its adapter cache's hits and misses every `metrics_emf_interval_s`.
    metrics_emf: bool = False
    metrics_emf_interval_s: float = Field(default=60.0, gt=0)
