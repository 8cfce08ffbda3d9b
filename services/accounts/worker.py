"""Profile counts worker: `python -m services.accounts.worker` (WorkerSpec "profile_counts").

A member of the consumer group "accounts-profile-counts" over the graph and
posts topics: it keeps users' follower, following and post counts from the
follow, unfollow, post.created and post.deleted events, each exactly once
(services.accounts.counts). A worker of accounts because `users` is
accounts' table. Replicas share the work through the group. Once an hour it
forgets the event ids applied more than a week ago. SIGTERM finishes the
event in hand, then exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import redis.asyncio as aioredis

from services.accounts.counts import GROUP, TOPICS, ProfileCounts
from services.accounts.repository import PostgresCountStore
from services.common.config import load_settings
from services.common.db import Database
from services.common.events import Consumer
from services.common.server import run_worker, stop_on_signals

log = logging.getLogger(__name__)

PRUNE_EVERY_S = 3600
KEEP_EVENT_IDS_S = 7 * 86_400


async def prune_loop(store: PostgresCountStore, logical_shards: int, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            for shard in range(logical_shards):
                await store.prune(shard, KEEP_EVENT_IDS_S)
        except Exception:
            log.exception("pruning consumed event ids failed; trying again later")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), PRUNE_EVERY_S)


async def run() -> None:
    settings = load_settings()
    db = Database(settings, max_size=4)
    await db.open()
    redis = aioredis.from_url(settings.redis_url)
    store = PostgresCountStore(db)
    # Its handler fails only while PostgreSQL is away (the events are well-formed: protobuf from the
    # outbox), so it retries for about an hour (claim_idle_ms apart) before giving a count up.
    consumer = Consumer(redis, GROUP, TOPICS, ProfileCounts(store).handle, max_deliveries=120)
    stop = stop_on_signals()
    try:
        await asyncio.gather(consumer.run(stop), prune_loop(store, settings.logical_shards, stop))
    finally:
        await redis.aclose()
        await db.close()


def main() -> None:
    run_worker("profile_counts", run)


if __name__ == "__main__":
    main()
