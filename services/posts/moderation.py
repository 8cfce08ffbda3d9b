"""The consumer group "post-moderation" (in posts' worker): moderation's actions applied to posts.

moderation.content_hidden of a post hides it (posts.hidden_at); moderation.account_suspended hides
every post of the user. A hidden post leaves its author's timeline and the shared cache (a
tombstone, so the feed, which reads the cache, drops it too) and every read but its author's and
moderators' (services.posts.service). Each step is idempotent: a repeat does it again.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.common.events import Event
from services.posts.cache import PostCache
from services.posts.repository import PostgresPostsRepository
from services.posts.timelines import RedisAuthorTimelines

GROUP = "post-moderation"
TOPICS = ["moderation"]


@dataclass
class ModerationEffects:
    posts: PostgresPostsRepository
    cache: PostCache
    timelines: RedisAuthorTimelines

    async def handle(self, event: Event) -> None:
        if event.type == "moderation.content_hidden" and event.data.get("target_type") == "post":
            post_id = int(event.data["target_id"])
            author = await self.posts.hide(post_id)
            if author is not None:
                await self._gone(post_id, author)
        elif event.type == "moderation.account_suspended":
            author = int(event.data["user_id"])
            for post_id in await self.posts.hide_by_author(author):
                await self._gone(post_id, author)

    async def _gone(self, post_id: int, author_id: int) -> None:
        await self.cache.forget(post_id)
        await self.timelines.removed(post_id, author_id)
