"""The authors' timelines in Redis (services.posts.keys), which posts alone writes and the feed reads."""

from __future__ import annotations

import redis.asyncio as aioredis

from services.common.timelines import Timelines
from services.posts.keys import TIMELINE_MAX, timeline_key


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
