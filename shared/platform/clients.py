"""The platform's clients: settings, the template, the database pool, Redis, S3 and SQS.

One `Clients` (or the `Services` built on it) is made by each process's entry point (the
Lambda app, the local gateway, the dispatcher, a test) and handed down explicitly; creating it
opens nothing: the pool connects on first use, boto3 and Redis clients connect per call.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from shared.platform.aws import s3_client, sqs_client
from shared.platform.db.pool import PoolHolder
from shared.platform.queues import QueueDirectory
from shared.platform.settings import Settings
from shared.platform.template import Template, load_template


@dataclass(kw_only=True)
class Clients:
    settings: Settings
    template: Template
    db: PoolHolder
    redis: aioredis.Redis
    s3: Any
    sqs: Any
    queues: QueueDirectory

    @classmethod
    def fields_from(cls, settings: Settings, *, template: Template | None = None) -> dict[str, Any]:
        """The keyword arguments of a `Clients` made from settings (and the template they
        name, unless one is given)."""
        template = template or load_template(settings.template_path, settings)
        sqs = sqs_client(settings)
        return {
            "settings": settings,
            "template": template,
            "db": PoolHolder(settings),
            "redis": aioredis.Redis.from_url(
                settings.redis_dsn,
                socket_timeout=settings.dependency_timeout_s,
                socket_connect_timeout=settings.dependency_timeout_s,
            ),
            "s3": s3_client(settings),
            "sqs": sqs,
            "queues": QueueDirectory(sqs, template),
        }

    @functools.cached_property
    def public_s3(self) -> Any:
        """Signs the URLs a browser uses (S3_PUBLIC_ENDPOINT_URL when the store is behind
        another address than the functions see)."""
        return s3_client(self.settings, public=True)

    def bucket(self, logical_id: str = "DataBucket") -> str:
        return self.template.buckets[logical_id].name

    async def aclose(self) -> None:
        await self.db.close()
        await self.redis.aclose()
