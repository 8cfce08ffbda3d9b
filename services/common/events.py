"""Domain events over Redis Streams: publish, and consume in consumer groups.

Each topic is a stream `events:<topic>` (posts, graph, ...). Consumers work
at least once: a message is acknowledged only after its handler finished, a
message left pending by a dead consumer is reclaimed after `claim_idle_ms`,
and one that keeps failing goes to the dead-letter stream `events:dead` after
`max_deliveries` tries. Handlers must therefore be idempotent.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeout

log = logging.getLogger(__name__)

DEAD_LETTER = "events:dead"
STREAM_MAXLEN = 1_000_000


def stream(topic: str) -> str:
    return f"events:{topic}"


@dataclass(frozen=True)
class Event:
    topic: str
    type: str
    data: dict[str, Any]
    id: str = ""


Handler = Callable[[Event], Awaitable[None]]


class Postpone(Exception):
    """Raised by a handler to leave its message pending, unhandled for now (it is reclaimed and
    retried after `claim_idle_ms`), without counting as a failure in the log."""


def published_at(event: Event) -> float:
    """When the event was published, Unix seconds (its stream id starts with Redis' clock in ms)."""
    return int(event.id.split("-", 1)[0]) / 1000


class EventPublisher:
    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client

    async def publish(self, topic: str, type: str, **data: Any) -> str:
        fields = {"type": type, "data": json.dumps(data, separators=(",", ":"))}
        message_id = await self.client.xadd(stream(topic), fields, maxlen=STREAM_MAXLEN, approximate=True)
        return message_id.decode() if isinstance(message_id, bytes) else message_id


def _decode(topic: str, message_id: bytes | str, fields: dict[bytes, bytes]) -> Event:
    return Event(topic, fields[b"type"].decode(), json.loads(fields[b"data"]),
                 message_id.decode() if isinstance(message_id, bytes) else message_id)


class Consumer:
    """One member of a consumer group over one or more topics."""

    def __init__(self, client: aioredis.Redis, group: str, topics: list[str], handler: Handler, *,
                 name: str | None = None, batch: int = 100, block_ms: int = 500, claim_idle_ms: int = 30_000,
                 max_deliveries: int = 5) -> None:
        self.client = client
        self.group = group
        self.topics = topics
        self.handler = handler
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self.batch = batch
        self.block_ms = block_ms
        self.claim_idle_ms = claim_idle_ms
        self.max_deliveries = max_deliveries

    async def ensure_groups(self) -> None:
        for topic in self.topics:
            try:
                # From the start of the stream: a new group sees what came before it.
                await self.client.xgroup_create(stream(topic), self.group, id="0", mkstream=True)
            except ResponseError as error:
                if "BUSYGROUP" not in str(error):
                    raise

    async def _handle(self, topic: str, message_id: bytes, fields: dict[bytes, bytes]) -> None:
        try:
            await self.handler(_decode(topic, message_id, fields))
        except Postpone:
            log.info("%s: %s %s postponed", self.group, topic, message_id)
            return
        except Exception:
            log.exception("%s: handling %s %s failed", self.group, topic, message_id)
            return  # stays pending; reclaimed and retried after claim_idle_ms
        await self.client.xack(stream(topic), self.group, message_id)

    async def _reclaim(self, topic: str) -> int:
        """Take over messages idle too long (a dead consumer's, or our own failures); retry or bury them."""
        name = stream(topic)
        reply = await self.client.xautoclaim(name, self.group, self.name, self.claim_idle_ms,
                                             start_id="0-0", count=self.batch)
        claimed = reply[1]  # Redis 6.2 answers [cursor, messages]; 7.x adds deleted ids
        if not claimed:
            return 0
        pending = await self.client.xpending_range(name, self.group, min=claimed[0][0], max=claimed[-1][0],
                                                   count=len(claimed), consumername=self.name)
        deliveries = {p["message_id"]: p["times_delivered"] for p in pending}
        for message_id, fields in claimed:
            if fields is None:  # trimmed away meanwhile
                await self.client.xack(name, self.group, message_id)
            elif deliveries.get(message_id, 0) > self.max_deliveries:
                await self.client.xadd(DEAD_LETTER, {**fields, b"topic": topic, b"group": self.group,
                                                     b"message_id": message_id}, maxlen=STREAM_MAXLEN)
                await self.client.xack(name, self.group, message_id)
                log.error("%s: %s %s failed %d times; moved to %s", self.group, topic, message_id,
                          deliveries[message_id], DEAD_LETTER)
            else:
                await self._handle(topic, message_id, fields)
        return len(claimed)

    async def poll_once(self) -> int:
        """Reclaim, then read and handle one batch; returns how many messages were handled."""
        handled = 0
        for topic in self.topics:
            handled += await self._reclaim(topic)
        replies = await self.client.xreadgroup(self.group, self.name, {stream(t): ">" for t in self.topics},
                                               count=self.batch, block=self.block_ms)
        for name, messages in replies or []:
            topic = (name.decode() if isinstance(name, bytes) else name).removeprefix("events:")
            for message_id, fields in messages:
                await self._handle(topic, message_id, fields)
                handled += 1
        return handled

    async def run(self, stop: asyncio.Event) -> None:
        ready = False
        while not stop.is_set():
            try:
                if not ready:
                    await self.ensure_groups()
                    ready = True
                await self.poll_once()
            except ResponseError as error:
                if "NOGROUP" not in str(error):
                    raise
                # Redis was flushed or restarted without its data: make the group again.
                log.warning("%s: consumer group missing; creating it again", self.group)
                ready = False
            except (ConnectionError, OSError, aioredis.ConnectionError, RedisTimeout) as error:
                # Includes BusyLoadingError (Redis is still reading its data back) and a Redis that
                # does not answer in time (paused, overloaded): wait, and carry on where we were.
                log.warning("%s: redis unavailable (%s); retrying", self.group, error)
                await asyncio.sleep(1)
