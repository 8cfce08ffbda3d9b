"""Post cleanup worker: `python -m services.posts.worker` (WorkerSpec "cleanup").

A member of the consumer group "post-cleanup" over the posts topic, and the
sweep that finishes cleanups whose event never came (services.posts.cleanup).
SIGTERM finishes the post in hand, then exits.
"""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from services.common.clients import EngagementClient, MediaClient, MeshChannels
from services.common.config import load_settings
from services.common.db import Database
from services.common.events import Consumer
from services.common.server import run_worker, stop_on_signals
from services.posts.cleanup import GROUP, TOPICS, Cleanup, CleanupConfig
from services.posts.repository import PostgresPostsRepository


async def run() -> None:
    settings = load_settings()
    db = Database(settings, max_size=4)
    await db.open()
    redis = aioredis.from_url(settings.redis_url)
    channels = MeshChannels(settings)
    stop = stop_on_signals()
    cleanup = Cleanup(PostgresPostsRepository(db), EngagementClient(channels), MediaClient(channels),
                      CleanupConfig.from_env(), settings.logical_shards, stop)
    # One post at a time: each waits out its delay in turn.
    consumer = Consumer(redis, GROUP, TOPICS, cleanup.handle, batch=10)
    try:
        await asyncio.gather(consumer.run(stop), cleanup.run_sweeps())
    finally:
        await channels.close()
        await redis.aclose()
        await db.close()


def main() -> None:
    run_worker("cleanup", run)


if __name__ == "__main__":
    main()
