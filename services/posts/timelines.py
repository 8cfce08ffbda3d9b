"""The authors' timelines in Redis (services.posts.keys), which posts alone writes and the feed reads."""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from services.common.events import Event
from services.common.timelines import Timelines
from services.posts.keys import TIMELINE_MAX, timeline_key
from services.posts.service import PostsRepository


class RedisAuthorTimelines:
    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        self.timelines = Timelines(client)

    async def added(self, post_id: int, author_id: int) -> None:
        await self.timelines.push([timeline_key(author_id)], post_id, author_id, TIMELINE_MAX)

    async def removed(self, post_id: int, author_id: int) -> None:
        await self.timelines.remove([timeline_key(author_id)], [(post_id, author_id)])

    async def missing(self, author_ids: list[int]) -> list[int]:
        async with self.client.pipeline(transaction=False) as pipe:
            for author in author_ids:
                pipe.exists(timeline_key(author))
            found = await pipe.execute()
        return [a for a, exists in zip(author_ids, found) if not exists]

    async def replace(self, author_id: int, posts: list[tuple[int, int]]) -> None:
        await self.timelines.replace(timeline_key(author_id), posts)


TIMELINE_GROUP = "post-timelines"


@dataclass
class TimelineCatchUp:
    """The consumer group "post-timelines": each new post into its author's timeline, from its event.

    CreatePost pushes the post into the author's timeline right after its commit, so the author
    (and the followers who pull a celebrity's posts) see it at once. Redis failing at that instant
    leaves the post committed but out of the timeline; its post.created event, which the outbox
    delivers whatever happened, is the second chance. ZADD makes a repeat harmless, and a post
    deleted meanwhile is left out.
    """

    posts: PostsRepository
    timelines: RedisAuthorTimelines

    async def handle(self, event: Event) -> None:
        if event.type != "post.created":
            return
        post_id = int(event.data["post_id"])
        post = (await self.posts.get_many([post_id])).get(post_id)
        if post is not None and not post.deleted and not post.hidden:
            await self.timelines.added(post.id, post.author_id)
