"""Posts' worker: `python -m services.posts.worker` (WorkerSpec "cleanup").

A member of the consumer group "post-cleanup" over the posts topic, with the
sweep that finishes cleanups whose event never came (services.posts.cleanup),
of "post-timelines", which puts each new post in its author's timeline
should Redis have failed when CreatePost did (services.posts.timelines), and
of "post-media" over media's topic, which evicts the cached shapes of posts
whose media changed (services.posts.cache), and of "post-moderation" over
moderation's topic, which hides the posts a moderator hid or whose author was
suspended (services.posts.moderation).
SIGTERM finishes the post in hand, then exits.
"""

from __future__ import annotations

import asyncio

from services.common.clients import EngagementClient, MediaClient
from services.common.config import events_claim_idle_ms
from services.common.events import Consumer
from services.common.server import Resources, run_worker
from services.posts.cache import MEDIA_GROUP, MEDIA_TOPICS, MediaChanges, PostCache
from services.posts.cleanup import GROUP, TOPICS, Cleanup, CleanupConfig
from services.posts.moderation import GROUP as MODERATION_GROUP
from services.posts.moderation import TOPICS as MODERATION_TOPICS
from services.posts.moderation import ModerationEffects
from services.posts.repository import PostgresPostsRepository
from services.posts.timelines import TIMELINE_GROUP, RedisAuthorTimelines, TimelineCatchUp


async def work(resources: Resources, stop: asyncio.Event) -> None:
    channels = resources.channels()
    posts = PostgresPostsRepository(await resources.database(max_size=4))
    cleanup = Cleanup(posts, EngagementClient(channels), MediaClient(channels), CleanupConfig.from_env(),
                      resources.settings.logical_shards, stop)
    catch_up = TimelineCatchUp(posts, RedisAuthorTimelines(resources.redis()))
    # One post at a time: each waits out its delay in turn.
    consumer = Consumer(resources.redis(), GROUP, TOPICS, cleanup.handle, batch=10,
                        claim_idle_ms=events_claim_idle_ms())
    timelines = Consumer(resources.redis(), TIMELINE_GROUP, TOPICS, catch_up.handle,
                         claim_idle_ms=events_claim_idle_ms())
    media = Consumer(resources.redis(), MEDIA_GROUP, MEDIA_TOPICS, MediaChanges(PostCache(resources.redis())).handle,
                     claim_idle_ms=events_claim_idle_ms())
    moderation = Consumer(resources.redis(), MODERATION_GROUP, MODERATION_TOPICS,
                          ModerationEffects(posts, PostCache(resources.redis()),
                                            RedisAuthorTimelines(resources.redis())).handle,
                          claim_idle_ms=events_claim_idle_ms())
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(consumer.run(stop))
        tasks.create_task(timelines.run(stop))
        tasks.create_task(media.run(stop))
        tasks.create_task(moderation.run(stop))
        tasks.create_task(cleanup.run_sweeps())


def main() -> None:
    run_worker("cleanup", work)


if __name__ == "__main__":
    main()
