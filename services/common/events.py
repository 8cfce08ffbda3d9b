"""Domain events over Redis Streams: the protobuf envelope, and consumers in consumer groups.

An event is a pictor.events.v1.EventEnvelope (protos/pictor/events/v1). Its
writer puts it in its shard's outbox in the transaction of the change
(services.common.outbox); the relay moves it to the stream `events:<topic>`
(posts, graph, engagement), one message of two fields: `type` and `event`
(the serialized envelope).

Consumers work at least once: a message is acknowledged only after its
handler finished, a message left pending by a dead consumer is reclaimed after
`claim_idle_ms`, and one that keeps failing goes to the dead-letter stream
`events:dead` after `max_deliveries` tries. A try that failed because something
it needs was unavailable (a store, another service: an outage, not a bad
message) or that its handler postponed is given back: it does not count
towards `max_deliveries`, so an outage of any length buries nothing. The relay, too, may deliver an
event twice (it died between the stream and its delete). Handlers must
therefore be idempotent, or remember `Event.id` (the envelope's event_id,
the same on every delivery) in the transaction of their effect.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from pictor.events.v1 import events_pb2
from redis.exceptions import ResponseError

from services.common import metrics, tracing
from services.common.cluster import is_cluster
from services.common.dependencies import REDIS_ERRORS, unavailable_reason

log = logging.getLogger(__name__)

DEAD_LETTER = "events:dead"
STREAM_MAXLEN = 1_000_000


def stream(topic: str) -> str:
    return f"events:{topic}"


@dataclass(frozen=True)
class Event:
    """One delivered event. `data` is the payload as a dict (ids are ints), `id` the event id
    (the same on every delivery), `envelope` the decoded protobuf, `stream_id` the message's id."""

    topic: str
    type: str
    data: dict[str, Any]
    id: str = ""
    envelope: events_pb2.EventEnvelope | None = field(default=None, compare=False, repr=False)
    stream_id: str = ""
    occurred_at: float = 0.0


Handler = Callable[[Event], Awaitable[None]]
# What an event touches (say, the users it notifies): events that share a key are handled one after
# another, in stream order; None: everything before it first, and everything after it waits.
Lanes = Callable[[Event], Iterable[Hashable] | None]


class Postpone(Exception):
    """Raised by a handler to leave its message pending, unhandled for now (it is reclaimed and
    retried after `claim_idle_ms`), without counting as a failure in the log."""


def published_at(event: Event) -> float:
    """When the event happened, Unix seconds: its occurred_at (its commit in the writer), or
    failing that when the stream took it (a stream id starts with Redis' clock in ms; an event
    made without a stream_id may carry it as its id)."""
    return event.occurred_at or int((event.stream_id or event.id).split("-", 1)[0]) / 1000


def payload_case(type: str) -> str:
    """The envelope's payload field for an event type: "post.created" -> "post_created"."""
    return type.replace(".", "_")


def envelope(type: str, data: dict[str, Any], *, event_id: str | None = None,
             occurred_at: float | None = None) -> events_pb2.EventEnvelope:
    """Build the envelope of a new event; a type or a field events.proto does not define is a ValueError."""
    case = payload_case(type)
    if case not in events_pb2.EventEnvelope.DESCRIPTOR.fields_by_name:
        raise ValueError(f"no event type {type!r} in pictor.events.v1.EventEnvelope: add it to events.proto")
    message = events_pb2.EventEnvelope(event_id=event_id or uuid.uuid4().hex, type=type)
    message.occurred_at.FromNanoseconds(int((occurred_at if occurred_at is not None else time.time()) * 1e9))
    try:
        getattr(message, case).CopyFrom(getattr(message, case).__class__(**data))
    except (TypeError, ValueError) as error:
        raise ValueError(f"event {type!r}: {error}") from None
    return message


def payload_dict(message: events_pb2.EventEnvelope) -> dict[str, Any]:
    """The payload's fields by name, every field of its message (defaults included), ids as ints.

    A payload case this code does not know (a newer writer) gives {}.
    """
    case = message.WhichOneof("payload")
    if case is None:
        return {}
    payload = getattr(message, case)
    return {f.name: _field_value(getattr(payload, f.name), f) for f in payload.DESCRIPTOR.fields}


def _field_value(value: Any, field: Any) -> Any:
    """A map field as a dict, a repeated one as a list, anything else as it is."""
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        return dict(value)
    return list(value) if field.is_repeated else value


class EventPublisher:
    """Puts an envelope on its stream. The relay uses it; services write to their outbox instead."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client

    async def publish(self, topic: str, type: str, **data: Any) -> str:
        """A new event straight onto the stream, bypassing any outbox: tests, tools, and ephemeral
        events that no row stands for (a video's transcode progress)."""
        message_id = await self.add_to(self.client, topic, envelope(type, data).SerializeToString(), type)
        return message_id.decode() if isinstance(message_id, bytes) else message_id

    @staticmethod
    def add_to(target: Any, topic: str, serialized: bytes, type: str) -> Any:
        """XADD on `target`: the client (awaitable reply) or a pipeline (queued)."""
        return target.xadd(stream(topic), fields(serialized, type), maxlen=STREAM_MAXLEN, approximate=True)


def fields(serialized: bytes, type: str) -> dict[str, bytes | str]:
    """A stream message's fields: the type in clear (for people reading the stream) and the envelope."""
    return {"type": type, "event": serialized}


def decode(topic: str, message_id: bytes | str, raw: dict[bytes, bytes]) -> Event:
    stream_id = message_id.decode() if isinstance(message_id, bytes) else message_id
    if b"event" not in raw:  # written before events were protobuf (JSON in `data`): still in old streams
        return Event(topic, raw[b"type"].decode(), json.loads(raw[b"data"]), stream_id, stream_id=stream_id)
    message = events_pb2.EventEnvelope.FromString(raw[b"event"])
    return Event(topic, message.type or raw[b"type"].decode(), payload_dict(message), message.event_id,
                 envelope=message, stream_id=stream_id,
                 occurred_at=message.occurred_at.ToNanoseconds() / 1e9 if message.HasField("occurred_at") else 0.0)


def _messages(replies: Any) -> list[tuple[str, bytes, dict[bytes, bytes]]]:
    """XREADGROUP's answer as (topic, message id, fields), in the order given."""
    return [((name.decode() if isinstance(name, bytes) else name).removeprefix("events:"), message_id, fields)
            for name, messages in replies or [] for message_id, fields in messages]


class Consumer:
    """One member of a consumer group over one or more topics."""

    def __init__(self, client: aioredis.Redis, group: str, topics: list[str], handler: Handler, *,
                 name: str | None = None, batch: int = 100, block_ms: int = 500, claim_idle_ms: int = 30_000,
                 max_deliveries: int = 5, lanes: Lanes | None = None, concurrency: int = 1) -> None:
        """lanes, concurrency: a batch's events are handled up to `concurrency` at a time, in the
        order `lanes` asks for (see Lanes); without lanes, one at a time in stream order. A handler
        that waits on other services most of the time (the notifier) keeps up this way when they
        are slow, instead of a queue growing behind each event."""
        self.client = client
        self.lanes = lanes
        self.concurrency = concurrency
        self.group = group
        self.topics = topics
        self.handler = handler
        # Unique per process, and saying which replica it is (PICTOR_REPLICA_NAME, set by the launcher).
        self.name = name or f"{os.environ.get('PICTOR_REPLICA_NAME') or socket.gethostname()}-{os.getpid()}"
        self.batch = batch
        self.block_ms = block_ms
        self.claim_idle_ms = claim_idle_ms
        self.max_deliveries = max_deliveries
        self._reads: dict[str, asyncio.Task[Any]] = {}  # Redis Cluster: each topic's blocking read

    async def ensure_groups(self) -> None:
        for topic in self.topics:
            try:
                # From the start of the stream: a new group sees what came before it.
                await self.client.xgroup_create(stream(topic), self.group, id="0", mkstream=True)
            except ResponseError as error:
                if "BUSYGROUP" not in str(error):
                    raise

    async def _handle(self, topic: str, message_id: bytes, fields: dict[bytes, bytes], deliveries: int = 1) -> None:
        """Handle one message, its `deliveries`-th try; acknowledged once handled, else left pending
        (reclaimed and tried again after claim_idle_ms)."""
        tracing.enter(None)  # the handling's logs and calls share a trace of their own
        began = time.perf_counter()
        try:
            await self.handler(decode(topic, message_id, fields))
        except Postpone:
            log.info("%s: %s %s postponed", self.group, topic, message_id)
            self._count(topic, "postponed", began)
            await self._give_back(topic, message_id, deliveries)
            return
        except Exception as error:
            reason = unavailable_reason(error)
            if reason is None:
                log.exception("%s: handling %s %s failed", self.group, topic, message_id)
                self._count(topic, "failed", began)
                return
            log.warning("%s: %s %s must wait (%s: %s)", self.group, topic, message_id, reason, error)
            self._count(topic, "unavailable", began)
            await self._give_back(topic, message_id, deliveries)
            return
        await self.client.xack(stream(topic), self.group, message_id)
        self._count(topic, "acked", began)

    def _count(self, topic: str, outcome: str, began: float) -> None:
        metrics.EVENTS_SECONDS.labels(self.group).observe(time.perf_counter() - began)
        metrics.EVENTS_HANDLED.labels(self.group, topic, outcome).inc()

    async def _give_back(self, topic: str, message_id: bytes, deliveries: int) -> None:
        """This try does not count towards max_deliveries (XCLAIM ... RETRYCOUNT, JUSTID)."""
        try:
            await self.client.xclaim(stream(topic), self.group, self.name, 0, [message_id],
                                     retrycount=max(deliveries - 1, 0), justid=True)
        except REDIS_ERRORS as error:  # Redis is the outage: the try counts, nothing worse
            log.warning("%s: could not give back %s (%s)", self.group, message_id, error)

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
                await self._handle(topic, message_id, fields, deliveries.get(message_id, 1))
        return len(claimed)

    async def poll_once(self) -> int:
        """Reclaim, then read and handle one batch; returns how many messages were handled."""
        handled = 0
        for topic in self.topics:
            handled += await self._reclaim(topic)
        batch = await self._read()
        if self.lanes is None or self.concurrency <= 1:
            for topic, message_id, fields in batch:
                await self._handle(topic, message_id, fields)
        else:
            await self._handle_in_lanes(batch)
        return handled + len(batch)

    async def _read(self) -> list[tuple[str, bytes, dict[bytes, bytes]]]:
        """The next messages for this consumer, waiting up to block_ms for some: one XREADGROUP over
        every topic's stream, or on a Redis Cluster (where one command reads keys of one slot only)
        one per stream. Those reads outlive the poll: the poll takes what the first to answer
        brought, and the others keep waiting for the next one."""
        if not is_cluster(self.client):
            return _messages(await self.client.xreadgroup(
                self.group, self.name, {stream(t): ">" for t in self.topics}, count=self.batch, block=self.block_ms))
        for topic in self.topics:
            if topic not in self._reads:
                self._reads[topic] = asyncio.create_task(self.client.xreadgroup(
                    self.group, self.name, {stream(topic): ">"}, count=self.batch, block=self.block_ms))
        done, _ = await asyncio.wait(self._reads.values(), return_when=asyncio.FIRST_COMPLETED)
        for topic in [t for t, task in self._reads.items() if task in done]:
            del self._reads[topic]
        # Every answer is taken before an error is raised: a message read is pending until handled,
        # and one whose read failed beside it is reclaimed after claim_idle_ms.
        answers = [task.exception() or task.result() for task in done]
        errors = [a for a in answers if isinstance(a, BaseException)]
        if errors:
            raise errors[0]
        return [message for answer in answers for message in _messages(answer)]

    def _stop_reading(self) -> None:
        for task in self._reads.values():
            task.cancel()
        self._reads.clear()

    async def _handle_in_lanes(self, batch: list[tuple[str, bytes, dict[bytes, bytes]]]) -> None:
        """Each event waits for the events before it that share a key (all of them, for one with
        None), then for one of `concurrency` places."""
        places = asyncio.Semaphore(self.concurrency)
        tasks: list[asyncio.Task[None]] = []
        last: dict[Hashable, asyncio.Task[None]] = {}  # the latest task of each key since the barrier
        barrier: asyncio.Task[None] | None = None

        async def handle(before: list[asyncio.Task[None]], topic: str, message_id: bytes,
                         fields: dict[bytes, bytes]) -> None:
            if before:
                await asyncio.wait(before)
            async with places:
                await self._handle(topic, message_id, fields)

        for topic, message_id, fields in batch:
            try:
                keys = self.lanes(decode(topic, message_id, fields))
            except Exception:  # noqa: BLE001 - _handle decodes it again and says why it fails
                keys = None
            keys = None if keys is None else set(keys)
            before = list(tasks) if keys is None else [
                *(last[k] for k in keys if k in last), *([barrier] if barrier else [])]
            task = asyncio.create_task(handle(before, topic, message_id, fields))
            tasks.append(task)
            if keys is None:
                barrier, last = task, {}
            else:
                last.update(dict.fromkeys(keys, task))
        # Every task ends before the batch does (a Redis error in one must not leave the others behind).
        failures = [r for r in await asyncio.gather(*tasks, return_exceptions=True) if isinstance(r, BaseException)]
        if failures:
            raise failures[0]

    async def run(self, stop: asyncio.Event) -> None:
        ready = False
        try:
            while not stop.is_set():
                try:
                    if not ready:
                        await self.ensure_groups()
                        ready = True
                    await self.poll_once()
                except (OSError, *REDIS_ERRORS) as error:
                    # Includes BusyLoadingError (Redis is still reading its data back), a Redis that
                    # does not answer in time (paused, overloaded) and a Redis Cluster that is down:
                    # wait, and carry on where we were.
                    log.warning("%s: redis unavailable (%s); retrying", self.group, error)
                    await asyncio.sleep(1)
                except ResponseError as error:
                    if "NOGROUP" not in str(error):
                        raise
                    # Redis was flushed or restarted without its data: make the group again.
                    log.warning("%s: consumer group missing; creating it again", self.group)
                    ready = False
        finally:
            self._stop_reading()
