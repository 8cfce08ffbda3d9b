"""Posts' part of an account's erasure (services.common.erasure).

Each of the user's posts is deleted as DeletePost deletes one (its post.deleted
event takes it out of feeds, search and notifications), cleaned up at once as the
cleanup worker would (engagement purges its likes, comments, saves and counts;
media releases its media and blobs), then its row goes for good, with the
author's timeline and the posts' cached shapes.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from services.common.db import Database
from services.common.erasure import delete_in_every_shard
from services.posts import keys
from services.posts.cleanup import Cleanup
from services.posts.repository import PostgresPostsRepository


@dataclass
class PostsEraser:
    db: Database
    posts: PostgresPostsRepository
    cleanup: Cleanup
    redis: aioredis.Redis

    async def erase_user(self, user_id: int) -> None:
        post_ids = [row[0] for row in await self.db.every_shard(
            "SELECT id FROM {schema}.posts WHERE author_id = %s", (user_id,))]
        for post_id in post_ids:
            await self.posts.soft_delete(post_id)
            await self.cleanup.clean(post_id)
        await self.redis.delete(keys.timeline_key(user_id), *(keys.cached_post_key(p) for p in post_ids))
        await delete_in_every_shard(self.db, ["DELETE FROM {schema}.posts WHERE author_id = %(user)s"], user_id)
