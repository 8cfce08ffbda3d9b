"""Feed fan-out worker: `python -m services.feed.worker`.

A member of the consumer group "feed-fanout" over the posts, graph and
moderation topics (feeds) and the engagement topic (ranking features).
Run more of them to fan out faster (PICTOR_FANOUT_REPLICAS for the launcher).
SIGTERM finishes the batch in hand, then exits.
"""

from __future__ import annotations

import asyncio

from services.common.config import events_claim_idle_ms
from services.common.events import Consumer
from services.common.server import Resources, run_worker
from services.feed.config import FeedConfig
from services.feed.fanout import FanOut
from services.feed.features import RankingFeatures
from services.feed.sources import MeshSources
from services.feed.store import FeedStore

GROUP = "feed-fanout"
TOPICS = ["posts", "graph", "engagement", "moderation"]


async def work(resources: Resources, stop: asyncio.Event) -> None:
    redis = resources.redis()
    fanout = FanOut(FeedStore(redis), MeshSources(resources.channels()), FeedConfig.from_env(), RankingFeatures(redis))
    await Consumer(redis, GROUP, TOPICS, fanout.handle, claim_idle_ms=events_claim_idle_ms()).run(stop)


def main() -> None:
    run_worker("fanout", work)


if __name__ == "__main__":
    main()
