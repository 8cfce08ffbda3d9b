"""Engagement's part of an account's erasure (services.common.erasure).

Each like and comment of the deleted user goes as an unlike or a comment deletion
does, each with its event and its count's delta, so the counts others see fall at
once and the consumers of those events (notifications, feed features, search)
take back what they had. The events name author_id 0: the post's author is not
engagement's to know, and every consumer that keyed something on the deleted
user erases it itself. Then their saves and their cached liked/saved answers go.
The likes, comments and saves of the user's own posts go with those posts
(PurgePost, from posts' erasure).
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from services.common.db import Database
from services.common.erasure import delete_in_every_shard
from services.engagement import keys
from services.engagement.repository import PostgresEngagementRepository
from services.engagement.service import COMMENTS, LIKES, Counters


@dataclass
class EngagementEraser:
    db: Database
    repo: PostgresEngagementRepository
    counters: Counters
    redis: aioredis.Redis

    async def erase_user(self, user_id: int) -> None:
        for (post_id,) in await self.db.every_shard("SELECT post_id FROM {schema}.likes WHERE user_id = %s",
                                                    (user_id,)):
            if await self.repo.unlike(post_id, user_id, 0):
                await self.counters.add(post_id, LIKES, -1)
        # Replies before the comments they answer would be counted twice; oldest (parents) first.
        for (comment_id,) in await self.db.every_shard(
                "SELECT id FROM {schema}.comments WHERE author_id = %s ORDER BY id", (user_id,)):
            comment = await self.repo.get_comment(comment_id)
            if comment is not None and (removed := await self.repo.delete_comment(comment, user_id, 0)):
                await self.counters.add(comment.post_id, COMMENTS, -removed)
        await delete_in_every_shard(self.db, ["DELETE FROM {schema}.saves WHERE user_id = %(user)s"], user_id)
        await self.redis.delete(keys.viewer_state_key(user_id))
