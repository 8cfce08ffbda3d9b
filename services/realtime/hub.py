"""The fan-in from Redis to the streams open in this process.

One pub/sub connection per process. While at least one of a user's streams is
open here, the process is SUBSCRIBEd to the user's wake channel; a message on
it wakes those streams, which then read the user's replay buffer after the
last id each sent. The message carries nothing: the buffer is the only source,
so a wake that is lost (Redis restarted) costs latency, never an event, and a
stream never sends an event twice or out of order. After the connection comes
back every local stream is woken to catch up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from services.common.cluster import is_cluster
from services.common.dependencies import REDIS_ERRORS, async_redis
from services.realtime import keys

log = logging.getLogger(__name__)

# Listening from the start (a pub/sub connection with no channel cannot be read).
HUB_CHANNEL = "rt:wake:hub"
SUBSCRIBE_TIMEOUT_S = 5.0


class Hub:
    def __init__(self, redis_url: str) -> None:
        # Its own client: a pub/sub read blocks, which the shared client's socket timeout forbids.
        self._client = async_redis(redis_url, socket_connect_timeout=2, health_check_interval=30)
        self._pubsub = self._client.pubsub()
        self._streams: dict[int, set[asyncio.Event]] = {}
        self._confirmed: dict[str, asyncio.Future[None]] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def open_streams(self) -> int:
        return sum(len(s) for s in self._streams.values())

    async def start(self) -> None:
        if is_cluster(self._client):
            await self._client.initialize()  # the slots' nodes, which a cluster's pub/sub needs first
        await self._pubsub.subscribe(HUB_CHANNEL)
        self._task = asyncio.create_task(self._listen())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            await self._pubsub.aclose()
        await self._client.aclose()

    @contextlib.asynccontextmanager
    async def listen(self, user_id: int) -> AsyncIterator[asyncio.Event]:
        """An event set whenever the user's buffer grows, from when this returns until the block ends."""
        wake = asyncio.Event()
        self._streams.setdefault(user_id, set()).add(wake)
        channel = keys.wake(user_id)
        try:
            confirmed = self._confirmed.get(channel)
            if confirmed is None:
                confirmed = self._confirmed[channel] = asyncio.get_running_loop().create_future()
                await self._pubsub.subscribe(channel)
            # NOTE: only once Redis confirmed the subscription is every later append heard; the
            # caller reads the buffer after this, so nothing falls between its read and the wakes.
            await asyncio.wait_for(asyncio.shield(confirmed), SUBSCRIBE_TIMEOUT_S)
            yield wake
        finally:
            streams = self._streams.get(user_id)
            if streams is not None:
                streams.discard(wake)
                if not streams:
                    del self._streams[user_id]
                    self._confirmed.pop(channel, None)
                    with contextlib.suppress(Exception):
                        await self._pubsub.unsubscribe(channel)

    def _wake(self, user_id: int) -> None:
        for wake in self._streams.get(user_id, ()):
            wake.set()

    def _wake_all(self) -> None:
        for user_id in self._streams:
            self._wake(user_id)

    async def _listen(self) -> None:
        while True:
            try:
                message = await self._pubsub.get_message(timeout=5.0)
            except (OSError, *REDIS_ERRORS) as error:
                # redis-py reconnects and subscribes again on the next read; meanwhile appends were
                # not heard, so every stream reads its buffer once it is back.
                log.warning("realtime hub: redis unavailable (%s); reconnecting", error)
                await asyncio.sleep(0.5)
                self._wake_all()
                continue
            if message is None:
                continue
            kind = message["type"]
            channel = message["channel"].decode() if isinstance(message["channel"], bytes) else message["channel"]
            if channel == HUB_CHANNEL:
                continue
            user_id = keys.user_of_wake(channel)
            if kind == "message":
                self._wake(user_id)
            elif kind == "subscribe":
                confirmed = self._confirmed.get(channel)
                if confirmed is not None and not confirmed.done():
                    confirmed.set_result(None)
                else:
                    self._wake(user_id)  # subscribed again after a reconnect: catch up
