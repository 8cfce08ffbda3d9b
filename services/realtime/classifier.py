"""User classes worker: `python -m services.realtime.classifier` (WorkerSpec "classifier").

A member of the consumer group "user-classes" over the posts, engagement and
graph topics (acts, follower counts) and presence (visits, open streams);
every PICTOR_CLASSIFIER_SWEEP_MS it also recomputes whom time alone moved
(services.realtime.classes has the rules).
"""

from __future__ import annotations

import asyncio

from services.common.clients import AccountsClient
from services.common.config import events_claim_idle_ms
from services.common.events import Consumer
from services.common.server import Resources, every, run_worker, side_by_side
from services.realtime.adapters import FollowerCounts
from services.realtime.classes import Classifier
from services.realtime.config import ClassifierConfig
from services.realtime.repository import PostgresClassesStore

GROUP = "user-classes"
TOPICS = ["posts", "engagement", "graph", "presence"]


async def work(resources: Resources, stop: asyncio.Event) -> None:
    redis = resources.redis()
    config = ClassifierConfig.from_env()
    classifier = Classifier(redis, PostgresClassesStore(await resources.database(max_size=2)),
                            FollowerCounts(AccountsClient(resources.channels())), config)
    await side_by_side(Consumer(redis, GROUP, TOPICS, classifier.handle,
                                  claim_idle_ms=events_claim_idle_ms()).run(stop),
                         every(config.sweep_ms / 1000, classifier.sweep, stop))


def main() -> None:
    run_worker("classifier", work)


if __name__ == "__main__":
    main()
