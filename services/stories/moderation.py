"""The consumer group "story-moderation" (in stories' worker): moderation's actions applied to stories.

moderation.content_hidden of a story hides it; moderation.account_suspended hides every story of
the user. A hidden story leaves the tray (the Redis index) and answers NOT_FOUND to all but its
author; a rebuilt index leaves it out too. Idempotent: a repeat does it again.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.common.events import Event
from services.stories.index import RedisStoryIndex
from services.stories.repository import PostgresStoryRepository

GROUP = "story-moderation"
TOPICS = ["moderation"]


@dataclass
class StoryModeration:
    stories: PostgresStoryRepository
    index: RedisStoryIndex

    async def handle(self, event: Event) -> None:
        if event.type == "moderation.content_hidden" and event.data.get("target_type") == "story":
            hidden = await self.stories.hide(int(event.data["target_id"]))
        elif event.type == "moderation.account_suspended":
            hidden = await self.stories.hide_by_author(int(event.data["user_id"]))
        else:
            return
        for story in hidden:
            await self.index.remove(story)
