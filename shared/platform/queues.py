"""Queue URLs by template logical id, resolved once per process from the queue names."""

from __future__ import annotations

import asyncio
from typing import Any

from shared.platform.template import Template


class QueueDirectory:
    def __init__(self, sqs: Any, template: Template):
        self._sqs = sqs
        self._template = template
        self._urls: dict[str, str] = {}

    async def url(self, logical_id: str) -> str:
        if logical_id not in self._urls:
            name = self._template.queue_name(logical_id)
            response = await asyncio.to_thread(self._sqs.get_queue_url, QueueName=name)
            self._urls[logical_id] = response["QueueUrl"]
        return self._urls[logical_id]

    async def all_urls(self) -> dict[str, str]:
        for logical_id in self._template.queues:
            await self.url(logical_id)
        return dict(self._urls)
