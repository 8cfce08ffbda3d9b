"""Messaging's worker: `python -m services.messaging.worker` (WorkerSpec "story_replies").

A member of the consumer group "story-replies" over the stories topic
(services.messaging.story_replies), and of "message-moderation" over moderation's topic, which
hides the messages a moderator hid (services.messaging.moderation). SIGTERM finishes the event in
hand, then exits.
"""

from __future__ import annotations

import asyncio

from services.common.config import events_claim_idle_ms
from services.common.events import Consumer
from services.common.server import Resources, run_worker
from services.messaging.moderation import GROUP as MODERATION_GROUP
from services.messaging.moderation import TOPICS as MODERATION_TOPICS
from services.messaging.moderation import MessageModeration
from services.messaging.repository import PostgresMessagingStore
from services.messaging.server import messaging_service
from services.messaging.story_replies import GROUP, TOPICS, StoryReplies


async def work(resources: Resources, stop: asyncio.Event) -> None:
    replies = StoryReplies(await messaging_service(resources))
    moderation = MessageModeration(PostgresMessagingStore(await resources.database()))
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(Consumer(resources.redis(), GROUP, TOPICS, replies.handle,
                                   claim_idle_ms=events_claim_idle_ms()).run(stop))
        tasks.create_task(Consumer(resources.redis(), MODERATION_GROUP, MODERATION_TOPICS, moderation.handle,
                                   claim_idle_ms=events_claim_idle_ms()).run(stop))


def main() -> None:
    run_worker("story_replies", work)


if __name__ == "__main__":
    main()
