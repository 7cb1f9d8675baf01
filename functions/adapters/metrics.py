"""Training job metrics in Prometheus's text format, computed from the `training_job` table at
scrape time: a custom collector over one snapshot (`history.stats`), in a registry made for
the scrape, so the figures are right whichever process ran the jobs and no counter lives in
a function instance (a Lambda's counters would be per instance and lost with it).

- `training_jobs{status}`: jobs by status (queued, running, succeeded, rejected, failed,
  cancelled), every status present (0 when none);
- `training_job_duration_seconds{outcome}`: a histogram of start to end of the jobs that ran
  (the last attempt), by how they ended;
- `training_job_last_loss`: the training loss of the job that ended last with one;
- `training_job_last_finished_timestamp_seconds`: when the last job ended.
The table is the source, so a figure can fall (an account deleted with its jobs); read the
histogram's buckets as a distribution rather than with `rate()`.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from shared.domain.preferences.history import (
    DURATION_BUCKETS,
    ENDED,
    STATUSES,
    Durations,
    JobStats,
)

NO_RUNS = Durations(0, 0.0, tuple(0 for _ in DURATION_BUCKETS))


class TrainingJobCollector(Collector):
    def __init__(self, stats: JobStats):
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self.stats
        jobs = GaugeMetricFamily("training_jobs", "Training jobs by status", labels=["status"])
        for status in STATUSES:
            jobs.add_metric([status], stats.by_status.get(status, 0))
        yield jobs
        durations = HistogramMetricFamily(
            "training_job_duration_seconds",
            "Start to end of the jobs that ran (their last attempt), by outcome",
            labels=["outcome"],
        )
        for outcome in ENDED:
            runs = stats.durations.get(outcome, NO_RUNS)
            buckets = [(str(le), float(n)) for le, n in zip(DURATION_BUCKETS, runs.buckets,
                                                              strict=True)]  # fmt: skip
            durations.add_metric([outcome], [*buckets, ("+Inf", float(runs.count))],
                                 sum_value=runs.total_s)  # fmt: skip
        yield durations
        if stats.last_loss is not None:
            yield GaugeMetricFamily(
                "training_job_last_loss",
                "Training loss of the job that ended last with one",
                value=stats.last_loss,
            )
        if stats.last_finished_at is not None:
            yield GaugeMetricFamily(
                "training_job_last_finished_timestamp_seconds",
                "When the last training job ended (Unix time)",
                value=stats.last_finished_at.timestamp(),
            )


def render(stats: JobStats) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TrainingJobCollector(stats))
    return generate_latest(registry)
