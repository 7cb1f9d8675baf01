"""The clients a function needs, created once per process on first use (Lambda reuses them
across invocations; the local gateway shares them across requests)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from shared.aws import s3_client, sqs_client
from shared.config import Settings, get_settings
from shared.db.pool import PoolHolder
from shared.queues import QueueDirectory
from shared.runtime.template import Template, load_template


@dataclass
class Dependencies:
    settings: Settings
    template: Template
    db: PoolHolder
    redis: aioredis.Redis
    s3: Any
    sqs: Any
    queues: QueueDirectory

    @classmethod
    def from_settings(cls, settings: Settings) -> Dependencies:
        template = load_template(settings.template_path, settings)
        sqs = sqs_client(settings)
        return cls(
            settings=settings,
            template=template,
            db=PoolHolder(settings),
            redis=aioredis.Redis.from_url(
                settings.redis_dsn,
                socket_timeout=settings.dependency_timeout_s,
                socket_connect_timeout=settings.dependency_timeout_s,
            ),
            s3=s3_client(settings),
            sqs=sqs,
            queues=QueueDirectory(sqs, template),
        )

    @functools.cached_property
    def public_s3(self) -> Any:
        """Signs the URLs a browser uses (S3_PUBLIC_ENDPOINT_URL when the store is behind
        another address than the functions see)."""
        return s3_client(self.settings, public=True)

    def bucket(self, logical_id: str = "DataBucket") -> str:
        return self.template.buckets[logical_id].name


@functools.lru_cache(maxsize=1)
def get_deps() -> Dependencies:
    return Dependencies.from_settings(get_settings())
