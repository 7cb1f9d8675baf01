"""The product's own gauges, read from Postgres: training outcomes, ingestion lag, the outbox.

One query each, cheap (indexed or on small tables), so a sampler may run them every few
seconds. Locally the dispatcher samples them into Prometheus (infra/dispatcher/metrics.py); in
AWS, whatever runs on a schedule can call `emit_emf(await sample(pool))` so CloudWatch gets the
same figures (the alarms of template.yaml watch `TrainingJobsFailed15m` and
`IngestionLagSeconds`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TextIO

from shared.platform import emf
from shared.platform.db.pool import Pool

# A file counts as pending ingestion from its upload until it is ready or failed.
_PENDING_FILE = ("stored", "pending", "processing")


@dataclass(frozen=True)
class OpsSample:
    training_jobs: dict[str, int] = field(default_factory=dict)  # rows by status
    training_failed_15m: int = 0  # jobs that ended failed in the last 15 minutes
    ingestion_pending: int = 0
    ingestion_lag_s: float = 0.0  # age of the oldest file still waiting to be ingested
    outbox_pending: int = 0
    outbox_lag_s: float = 0.0  # age of the oldest due outbox row not sent yet


async def sample(pool: Pool) -> OpsSample:
    async with pool.connection() as conn:
        rows = await (
            await conn.execute("SELECT status, count(*) FROM training_job GROUP BY status")
        ).fetchall()
        failed = await (
            await conn.execute(
                "SELECT count(*) FROM training_job"
                " WHERE status = 'failed' AND updated_at > now() - interval '15 minutes'"
            )
        ).fetchone()
        files = await (
            await conn.execute(
                "SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)"
                " FROM user_file WHERE status = ANY(%s)",
                (list(_PENDING_FILE),),
            )
        ).fetchone()
        outbox = await (
            await conn.execute(
                "SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(available_at)), 0)"
                " FROM outbox_message WHERE sent_at IS NULL AND available_at <= now()"
            )
        ).fetchone()
    assert failed is not None and files is not None and outbox is not None
    return OpsSample(
        training_jobs={str(status): int(count) for status, count in rows},
        training_failed_15m=int(failed[0]),
        ingestion_pending=int(files[0]),
        ingestion_lag_s=max(float(files[1]), 0.0),
        outbox_pending=int(outbox[0]),
        outbox_lag_s=max(float(outbox[1]), 0.0),
    )


def emit_emf(ops: OpsSample, stream: TextIO | None = None) -> None:
    """The sample as one EMF line (no dimensions: one series each for the whole stack)."""
    emf.write(
        emf.emf_document(
            metrics={
                "TrainingJobsFailed15m": (float(ops.training_failed_15m), "Count"),
                "IngestionPending": (float(ops.ingestion_pending), "Count"),
                "IngestionLagSeconds": (ops.ingestion_lag_s, "Seconds"),
                "OutboxPending": (float(ops.outbox_pending), "Count"),
                "OutboxLagSeconds": (ops.outbox_lag_s, "Seconds"),
            },
            dimensions={},
            dimension_sets=[()],
        ),
        stream,
    )
