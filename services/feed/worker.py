"""Feed fan-out worker: `python -m services.feed.worker`.

A member of the consumer group "feed-fanout" over the posts and graph topics.
Run more of them to fan out faster (PICTOR_FANOUT_REPLICAS for the launcher).
SIGTERM finishes the batch in hand, then exits.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from services.common.clients import MeshChannels
from services.common.config import load_settings
from services.common.events import Consumer
from services.common.server import run_worker, stop_on_signals
from services.feed.config import FeedConfig
from services.feed.fanout import FanOut
from services.feed.sources import MeshSources
from services.feed.store import FeedStore

GROUP = "feed-fanout"
TOPICS = ["posts", "graph"]


async def run() -> None:
    settings = load_settings()
    redis = aioredis.from_url(settings.redis_url)
    channels = MeshChannels(settings)
    fanout = FanOut(FeedStore(redis), MeshSources(channels), FeedConfig.from_env())
    consumer = Consumer(redis, GROUP, TOPICS, fanout.handle)
    stop = stop_on_signals()
    try:
        await consumer.run(stop)
    finally:
        await channels.close()
        await redis.aclose()


def main() -> None:
    run_worker("fanout", run)


if __name__ == "__main__":
    main()
