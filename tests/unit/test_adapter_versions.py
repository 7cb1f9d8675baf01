"""What needs no store in the adapters API: a version as its schema records it, path and
cursor parsing, a job's outcome, and the training metrics in Prometheus's text format."""

from __future__ import annotations

import datetime as dt

import pytest
from prometheus_client.parser import text_string_to_metric_families

from functions.adapters.metrics import render
from shared.domain.adapters.versions import MAX_VERSION, page_cursor, parse_number, version_of
from shared.domain.preferences.history import (
    DURATION_BUCKETS,
    STATUSES,
    Durations,
    JobStats,
    outcome,
)
from shared.platform.db.cursor import encode_cursor
from shared.platform.errors import NotFound, ValidationError

AT = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def _version(schema: dict, *, served: bool = False):
    return version_of("a", 3, schema, served=served, created_by="system", change_note=None,
                      created_at=AT)  # fmt: skip


def test_a_version_reads_what_training_recorded_and_is_a_candidate_only_when_kept() -> None:
    schema = {"mode": "local", "fs_dir": "users/u/adapters/a/v0003/", "checksum": "c",
              "rank": 8, "alpha": 16, "metrics": {"n_heldout": 2}, "job_id": "j",
              "promoted": False, "training_config": {"rank": 8}}  # fmt: skip
    kept = _version(schema)
    assert kept.candidate and kept.has_weights and kept.prefix == schema["fs_dir"]
    assert (kept.rank, kept.alpha, kept.metrics, kept.job_id) == (8, 16.0, {"n_heldout": 2}, "j")
    assert not _version(schema, served=True).candidate  # approved: served, no longer kept
    assert not _version({**schema, "promoted": True}).candidate
    # Published before training recorded anything: no decision, so no candidate.
    legacy = _version({"mode": "local", "fs_dir": "p/", "checksum": "c"})
    assert legacy.promoted is None and not legacy.candidate and legacy.metrics is None


def test_a_weightless_version_has_no_weights_and_odd_fields_are_dropped() -> None:
    bare = _version({"mode": "prompt", "fs_dir": None, "checksum": None, "metrics": "oops",
                     "promoted": "yes", "rank": "8"})  # fmt: skip
    assert not bare.has_weights and bare.prefix is None
    assert (bare.metrics, bare.promoted, bare.rank) == (None, None, None)


@pytest.mark.parametrize("raw", ["0", "-1", "x", "", "1.5", str(MAX_VERSION + 1), "٣"])
def test_a_version_path_parameter_that_names_no_version_is_not_found(raw: str) -> None:
    with pytest.raises(NotFound):
        parse_number(raw)


def test_a_version_path_parameter() -> None:
    assert parse_number("12") == 12 and parse_number(str(MAX_VERSION)) == MAX_VERSION


def test_version_cursors() -> None:
    assert page_cursor(None) is None and page_cursor(encode_cursor(7)) == 7
    for bad in ("nope", encode_cursor("7"), encode_cursor(0), encode_cursor(2**40),
                encode_cursor(True), encode_cursor(1, 2)):  # fmt: skip
        with pytest.raises(ValidationError):
            page_cursor(bad)


def test_a_jobs_outcome() -> None:
    kept = {"promoted": False}
    assert outcome("rejected", 3, kept, served=2) == (False, "kept")
    assert outcome("rejected", 3, kept, served=3) == (False, "served")  # approved since
    assert outcome("succeeded", 3, {}, served=3) == (True, "served")  # no decision recorded
    assert outcome("succeeded", 3, None, served=2) == (True, "discarded")
    assert outcome("failed", None, None, served=2) == (None, None)


def _scrape(stats: JobStats) -> dict:
    text = render(stats).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}  # fmt: skip


def test_metrics_count_every_status_and_bucket_durations() -> None:
    buckets = tuple(1 if le >= 60 else 0 for le in DURATION_BUCKETS)  # one job of 45 s
    stats = JobStats(
        by_status={"succeeded": 4, "failed": 1},
        durations={"succeeded": Durations(1, 45.0, buckets)},
        last_loss=0.25, last_finished_at=AT,
    )  # fmt: skip
    seen = _scrape(stats)
    assert {status: seen[("training_jobs", (("status", status),))] for status in STATUSES} == {
        "queued": 0, "running": 0, "succeeded": 4, "rejected": 0, "failed": 1, "cancelled": 0,
    }  # fmt: skip
    name = "training_job_duration_seconds"
    assert seen[(f"{name}_bucket", (("le", "30.0"), ("outcome", "succeeded")))] == 0
    assert seen[(f"{name}_bucket", (("le", "60.0"), ("outcome", "succeeded")))] == 1
    assert seen[(f"{name}_bucket", (("le", "+Inf"), ("outcome", "succeeded")))] == 1
    assert seen[(f"{name}_sum", (("outcome", "succeeded"),))] == 45.0
    # An outcome with no runs still has its series, all zero.
    assert seen[(f"{name}_count", (("outcome", "cancelled"),))] == 0
    assert seen[(f"{name}_bucket", (("le", "+Inf"), ("outcome", "failed")))] == 0
    assert seen[("training_job_last_loss", ())] == 0.25
    assert seen[("training_job_last_finished_timestamp_seconds", ())] == AT.timestamp()


def test_metrics_without_any_job_have_no_last_loss() -> None:
    seen = _scrape(JobStats(by_status={}, durations={}, last_loss=None, last_finished_at=None))
    assert not any(name.startswith("training_job_last") for name, _ in seen)
    assert seen[("training_jobs", (("status", "queued"),))] == 0
