"""Feed fan-out worker: `python -m services.feed.worker`.

A member of the consumer group "feed-fanout" over the posts, graph and
moderation topics (feeds) and the engagement topic (ranking features).
Run more of them to fan out faster (PICTOR_FANOUT_REPLICAS for the launcher).
SIGTERM finishes the batch in hand, then exits.
"""

from __future__ import annotations

import asyncio
import logging

import redis.asyncio as aioredis

from services.common.config import events_claim_idle_ms
from services.common.events import Consumer
from services.common.server import Resources, run_worker
from services.feed.config import FeedConfig
from services.feed.fanout import FanOut
from services.feed.features import RankingFeatures, convert_hashes
from services.feed.sources import MeshSources
from services.feed.store import FeedStore

GROUP = "feed-fanout"
TOPICS = ["posts", "graph", "engagement", "moderation"]

log = logging.getLogger(__name__)


async def work(resources: Resources, stop: asyncio.Event) -> None:
    redis = resources.redis()
    fanout = FanOut(FeedStore(redis), MeshSources(resources.channels()), FeedConfig.from_env(), RankingFeatures(redis))
    converting = asyncio.create_task(convert_features(redis))
    try:
        await Consumer(redis, GROUP, TOPICS, fanout.handle, claim_idle_ms=events_claim_idle_ms()).run(stop)
    finally:
        converting.cancel()


async def convert_features(redis: aioredis.Redis) -> None:
    """The features hashes an older version left become strings, beside the counting
    (services.feed.features.convert_hashes); should it fail, the next start goes on."""
    try:
        await convert_hashes(redis)
    except Exception:
        log.exception("features: converting the old hashes failed; the next start tries again")


def main() -> None:
    run_worker("fanout", work)


if __name__ == "__main__":
    main()
