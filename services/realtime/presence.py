"""Presence: ONLINE while a stream is open and its user acted in the last
PICTOR_REALTIME_IDLE_MS (5 minutes), IDLE while a stream is open without that,
else OFFLINE with the last-active time.

Open streams are counted in Redis across every replica (keys.conns: each
stream refreshes its entry every heartbeat, so the streams of a replica that
died expire on their own); activity is the stream opening and
RecordActivity. The state is derived on each read. A change is recorded by
`settle` (for a stream's own open and close in the background: `run_settler`
records the users due in batches, so a burst of streams opening never waits on
PostgreSQL, and an outage there delays the record, not the stream). PostgreSQL
holds the last state per user and takes a change only
when it differs (compare-and-set in one statement), writing presence.changed
to the outbox in the same transaction, so replicas that notice one change
together publish it once. The dispatch worker's sweep notices what time
alone changes (ONLINE to IDLE, a dead replica's streams).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from dataclasses import dataclass
from typing import Protocol

import psycopg
import redis.asyncio as aioredis
from psycopg_pool import PoolTimeout
from redis.exceptions import RedisError

from services.common.cluster import is_cluster
from services.realtime import keys
from services.realtime.config import RealtimeConfig

ONLINE, IDLE, OFFLINE = "ONLINE", "IDLE", "OFFLINE"
SETTLE_BATCH = 500
SETTLE_RETRY_S = 1.0

log = logging.getLogger(__name__)

# KEYS: the user's conns. ARGV: conn id ('' for none), now (ms). Forgets the stream (and any
# expired); returns how many are left.
CLOSE = """
if ARGV[1] ~= '' then redis.call('ZREM', KEYS[1], ARGV[1]) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
return redis.call('ZCARD', KEYS[1])
"""


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class PresenceView:
    user_id: int
    state: str
    # Unix ms; None when never active.
    last_active_ms: int | None


class PresenceStore(Protocol):
    async def record(self, user_id: int, state: str, last_active_ms: int | None) -> bool:
        """Store the state when it differs from the stored one (and publish the change); whether it did."""

    async def last_active(self, user_id: int) -> int | None: ...


class PresenceTracker:
    def __init__(self, redis: aioredis.Redis, store: PresenceStore, config: RealtimeConfig) -> None:
        self.redis = redis
        self.store = store
        self.config = config
        self._close = redis.register_script(CLOSE)
        self._cluster = is_cluster(redis)
        # Users whose state may have changed, to record (insertion-ordered, each once).
        self._due: dict[int, None] = {}
        self._has_due = asyncio.Event()

    async def _keep(self, user_id: int, conn_id: str, now: int) -> None:
        expiry = now + self.config.conn_ttl_ms
        # The conn before rt:live, in this order (see _forget). One Redis runs a pipeline in order;
        # a cluster's runs each node's commands apart, so there rt:live waits for the conn's answer.
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(keys.conns(user_id), {conn_id: expiry})
            pipe.expire(keys.conns(user_id), self.config.conn_ttl_ms // 1000 + 1)
            if not self._cluster:
                pipe.zadd(keys.LIVE, {user_id: expiry}, gt=True)
            await pipe.execute()
        if self._cluster:
            await self.redis.zadd(keys.LIVE, {user_id: expiry}, gt=True)

    async def opened(self, user_id: int, conn_id: str) -> None:
        now = now_ms()
        await self._keep(user_id, conn_id, now)
        await self.redis.zadd(keys.ACTIVE, {user_id: now}, gt=True)
        self.settle_soon(user_id)

    async def refresh(self, user_id: int, conn_id: str) -> None:
        """Called every heartbeat of an open stream: it is still there."""
        await self._keep(user_id, conn_id, now_ms())

    async def closed(self, user_id: int, conn_id: str) -> None:
        await self._forget(user_id, conn_id, now_ms())
        self.settle_soon(user_id)

    async def _forget(self, user_id: int, conn_id: str, now: int) -> None:
        """Forget the stream (and any expired), and the user's place in rt:live once none is left.

        The user's conns and rt:live are two slots on a Redis Cluster, so no one script holds both.
        A stream opening meanwhile on another replica writes its conn before rt:live, so looking at
        the conns again after leaving rt:live puts such a stream back: it is never dropped."""
        if await self._close(keys=[keys.conns(user_id)], args=[conn_id, now]):
            return
        await self.redis.zrem(keys.LIVE, user_id)
        latest = await self.redis.zrevrange(keys.conns(user_id), 0, 0, withscores=True)
        if latest and latest[0][1] > now:
            await self.redis.zadd(keys.LIVE, {user_id: latest[0][1]}, gt=True)

    async def touch(self, user_id: int) -> None:
        await self.redis.zadd(keys.ACTIVE, {user_id: now_ms()}, gt=True)
        await self.settle(user_id)

    async def views(self, user_ids: list[int]) -> list[PresenceView]:
        now = now_ms()
        async with self.redis.pipeline(transaction=False) as pipe:
            for user_id in user_ids:
                pipe.zcount(keys.conns(user_id), now, "+inf")
            pipe.zmscore(keys.ACTIVE, user_ids)
            *open_counts, active = await pipe.execute()
        found = []
        for user_id, streams, last in zip(user_ids, open_counts, active, strict=True):
            last_ms = int(last) if last is not None else await self.store.last_active(user_id)
            if not streams:
                state = OFFLINE
            elif last_ms is not None and now - last_ms < self.config.idle_ms:
                state = ONLINE
            else:
                state = IDLE
            found.append(PresenceView(user_id, state, last_ms))
        return found

    async def view(self, user_id: int) -> PresenceView:
        return (await self.views([user_id]))[0]

    async def settle(self, user_id: int) -> None:
        await self._settle([await self.view(user_id)])

    def settle_soon(self, user_id: int) -> None:
        """Have `run_settler` record the user's state shortly."""
        self._due[user_id] = None
        self._has_due.set()

    async def run_settler(self) -> None:
        """Record the states of the users due, in batches, until cancelled. What fails stays due and is
        tried again (and the dispatch worker's sweep settles every open stream's user anyway)."""
        while True:
            await self._has_due.wait()
            self._has_due.clear()
            while self._due:
                batch = list(itertools.islice(self._due, SETTLE_BATCH))
                for user_id in batch:
                    del self._due[user_id]
                try:
                    await self._settle(await self.views(batch))
                except (RedisError, OSError, psycopg.Error, PoolTimeout) as error:  # a store away: keep them due
                    log.warning("presence: %d states not recorded yet (%s: %s); retrying",
                                len(batch), type(error).__name__, error)
                    for user_id in batch:
                        self._due.setdefault(user_id, None)
                    await asyncio.sleep(SETTLE_RETRY_S)

    async def _settle(self, views: list[PresenceView]) -> None:
        """Record the states that differ from the last recorded (cached in Redis, decided in PostgreSQL)."""
        if not views:
            return
        recorded = await self.redis.hmget(keys.PRESENCE, [v.user_id for v in views])
        for view, last in zip(views, recorded, strict=True):
            if last is not None and last.decode() == view.state:
                continue
            await self.store.record(view.user_id, view.state, view.last_active_ms)
            await self.redis.hset(keys.PRESENCE, str(view.user_id), view.state)

    async def sweep(self) -> int:
        """Settle every user with a stream open (or one that expired): what time alone changed."""
        now = now_ms()
        entries = await self.redis.zrange(keys.LIVE, 0, -1, withscores=True)
        users = [int(member) for member, _ in entries]
        for member, expiry in entries:
            if expiry < now:  # every stream of theirs expired: their replica died
                await self._forget(int(member), "", now)
        for start in range(0, len(users), SETTLE_BATCH):
            await self._settle(await self.views(users[start:start + SETTLE_BATCH]))
        return len(users)
