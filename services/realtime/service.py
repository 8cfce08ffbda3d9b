"""Realtime domain logic: the live stream, tickets, presence reads, classes reads. No gRPC here.

A stream is the user's replay buffer read from an id on: first what is kept
after the id the client resumes from, then each event as the hub says the
buffer grew, with a heartbeat whenever nothing came for a heartbeat's time.
Nothing about a stream lives only in this process except the open call
itself, so any replica can serve any client and a client that reconnects
elsewhere resumes where it left off.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Protocol

from pictor.realtime.v1 import realtime_pb2
from redis.exceptions import RedisError

from services.common.errors import InvalidArgument, NotFound, Unauthenticated
from services.realtime.buffer import OLDEST, ReplayBuffers, Tickets, parse_event_id
from services.realtime.config import RealtimeConfig
from services.realtime.hub import Hub
from services.realtime.presence import PresenceTracker, PresenceView

READ_BATCH = 200
RETRY_S = 0.5
MAX_CLASSES_BATCH = 1000


class Audience(Protocol):
    async def may_see(self, viewer_id: int, user_id: int) -> bool: ...


class ClassesReader(Protocol):
    async def classes_of(self, user_ids: list[int]) -> dict[int, list[str]]: ...


def check_event_id(field: str, raw: str) -> str:
    """A resume point as the buffer takes it: "<ms>-<seq>" (a bare "<ms>" is "<ms>-0")."""
    parsed = parse_event_id(raw.strip())
    if parsed is None:
        raise InvalidArgument(field, f"{field} must be an event id like 1733224800000-0", reason="INVALID_EVENT_ID")
    return f"{parsed[0]}-{parsed[1]}"


def heartbeat(position: str) -> realtime_pb2.StreamEvent:
    """A heartbeat carries the stream's position (the last event id it passed, or where it began):
    a client that lost the stream before any event came resumes from there and misses nothing."""
    event = realtime_pb2.StreamEvent(type="heartbeat", heartbeat=realtime_pb2.Heartbeat(), id=position)
    event.occurred_at.GetCurrentTime()
    return event


class RealtimeService:
    def __init__(self, buffers: ReplayBuffers, tickets: Tickets, hub: Hub, presence: PresenceTracker,
                 audience: Audience, classes: ClassesReader, config: RealtimeConfig) -> None:
        self.buffers = buffers
        self.tickets = tickets
        self.hub = hub
        self.presence = presence
        self.audience = audience
        self.classes = classes
        self.config = config
        self._setting_up = asyncio.Semaphore(config.setup_concurrency)

    async def issue_ticket(self, user_id: int) -> tuple[str, float]:
        return await self.tickets.issue(user_id)

    async def redeem_ticket(self, ticket: str) -> int:
        user_id = await self.tickets.redeem(ticket)
        if user_id is None:
            raise Unauthenticated("the stream ticket is unknown, used or expired: ask for a new one",
                                  reason="TICKET_INVALID")
        return user_id

    async def events(self, user_id: int, since: str | None) -> AsyncIterator[realtime_pb2.StreamEvent]:
        """The user's stream: after `since` (None: from now), until the caller stops reading."""
        conn_id = uuid.uuid4().hex
        async with contextlib.AsyncExitStack() as stack:
            # NOTE: a burst of streams (every client reconnecting after a deploy) queues here rather than
            # opening as many Redis and PostgreSQL connections at once and failing them all.
            async with self._setting_up:
                wake = await stack.enter_async_context(self.hub.listen(user_id))
                last = since if since is not None else await self.buffers.last_id(user_id)
                lost = since is not None and await self.buffers.lost_after(user_id, since)
                await self.presence.opened(user_id, conn_id)
            try:
                if lost:
                    resync = realtime_pb2.StreamEvent(type="resync", resync=realtime_pb2.Resync())
                    resync.occurred_at.GetCurrentTime()
                    yield resync
                    last = OLDEST
                # The first heartbeat goes at once: the client knows the stream is set up.
                beat_due = time.monotonic()
                while True:
                    wake.clear()
                    try:
                        batch = await self.buffers.read_after(user_id, last, READ_BATCH)
                    except (RedisError, OSError):
                        # Everything a stream needs is in Redis, where it stays: a slow or absent Redis
                        # costs time, not the stream. Read again shortly, from where it was.
                        await asyncio.sleep(RETRY_S)
                        continue
                    for event_id, payload in batch:
                        event = realtime_pb2.StreamEvent.FromString(payload)
                        event.id = event_id
                        yield event
                        last = event_id
                    if len(batch) == READ_BATCH:
                        continue
                    wait = beat_due - time.monotonic()
                    if wait > 0:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(wake.wait(), wait)
                    if time.monotonic() >= beat_due:
                        yield heartbeat(last)
                        with contextlib.suppress(RedisError, OSError):  # the next heartbeat refreshes it
                            await self.presence.refresh(user_id, conn_id)
                        beat_due = time.monotonic() + self.config.heartbeat_ms / 1000
            finally:
                # The client went (or the server stops): forget the stream even while being cancelled.
                await asyncio.shield(self._closed(user_id, conn_id))

    async def _closed(self, user_id: int, conn_id: str) -> None:
        async with self._setting_up:
            await self.presence.closed(user_id, conn_id)

    async def presence_of(self, viewer_id: int, user_id: int) -> PresenceView:
        """`user_id`'s presence, when the viewer may see it; NotFound otherwise (as for no such user)."""
        if not await self.audience.may_see(viewer_id, user_id):
            raise NotFound(f"user {user_id} not found", reason="USER_NOT_FOUND")
        return await self.presence.view(user_id)

    async def record_activity(self, user_id: int) -> None:
        await self.presence.touch(user_id)

    async def classes_of(self, user_ids: list[int]) -> dict[int, list[str]]:
        if len(user_ids) > MAX_CLASSES_BATCH:
            raise InvalidArgument("user_ids", f"at most {MAX_CLASSES_BATCH} ids per call")
        return await self.classes.classes_of(user_ids)
