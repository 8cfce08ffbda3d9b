"""Stories' worker: `python -m services.stories.worker` (WorkerSpec "story_cleanup").

A member of the consumer group "story-cleanup" over the stories topic
(services.stories.cleanup), and of "story-moderation" over moderation's topic
(services.stories.moderation). SIGTERM finishes the event in hand, then exits.
"""

from __future__ import annotations

import asyncio

from services.common.clients import MediaClient
from services.common.config import events_claim_idle_ms
from services.common.events import Consumer
from services.common.server import Resources, run_worker
from services.stories.cleanup import GROUP, TOPICS, StoryCleanup
from services.stories.index import RedisStoryIndex
from services.stories.moderation import GROUP as MODERATION_GROUP
from services.stories.moderation import TOPICS as MODERATION_TOPICS
from services.stories.moderation import StoryModeration
from services.stories.repository import PostgresStoryRepository
from services.stories.service import StoriesConfig


async def work(resources: Resources, stop: asyncio.Event) -> None:
    cleanup = StoryCleanup(resources.redis(), MediaClient(resources.channels()))
    repo = PostgresStoryRepository(await resources.database(max_size=2))
    moderation = StoryModeration(repo, RedisStoryIndex(resources.redis(), repo, StoriesConfig.from_env().ttl_s))
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(Consumer(resources.redis(), GROUP, TOPICS, cleanup.handle,
                                   claim_idle_ms=events_claim_idle_ms()).run(stop))
        tasks.create_task(Consumer(resources.redis(), MODERATION_GROUP, MODERATION_TOPICS, moderation.handle,
                                   claim_idle_ms=events_claim_idle_ms()).run(stop))


def main() -> None:
    run_worker("story_cleanup", work)


if __name__ == "__main__":
    main()
