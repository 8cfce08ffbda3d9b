"""Stories' part of an account's erasure (services.common.erasure).

The deleted user's stories (with their views, reactions and highlights), their
views of others' stories (each story's view_count falls by one), their close
friends and story mutes, and their place in other people's: rows in every shard,
and the tray's Redis structures (their active stories, close friends, mutes and
seen markers; the others' close-friend and mute sets and seen markers that name
them). Their stories' media go with media's erasure.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from services.common.db import Database
from services.common.erasure import delete_in_every_shard
from services.stories import keys


@dataclass
class StoriesEraser:
    db: Database
    redis: aioredis.Redis

    async def erase_user(self, user_id: int) -> None:
        u = (user_id,)
        befriended = await self.db.every_shard("SELECT user_id FROM {schema}.close_friends WHERE friend_id = %s", u)
        muted_by = await self.db.every_shard("SELECT user_id FROM {schema}.story_mutes WHERE target_id = %s", u)
        viewers = await self.db.every_shard(
            "SELECT DISTINCT v.viewer_id FROM {schema}.story_views v JOIN {schema}.stories s ON s.id = v.story_id "
            "WHERE s.author_id = %s", u)
        await delete_in_every_shard(self.db, [
            ("UPDATE {schema}.stories SET view_count = greatest(view_count - 1, 0) WHERE author_id <> %(user)s "
            "AND id IN (SELECT story_id FROM {schema}.story_views WHERE viewer_id = %(user)s)"),
            ("DELETE FROM {schema}.story_views WHERE viewer_id = %(user)s OR story_id IN "
            "(SELECT id FROM {schema}.stories WHERE author_id = %(user)s)"),
            ("DELETE FROM {schema}.highlight_stories WHERE highlight_id IN "
            "(SELECT id FROM {schema}.highlights WHERE owner_id = %(user)s) OR story_id IN "
            "(SELECT id FROM {schema}.stories WHERE author_id = %(user)s)"),
            "DELETE FROM {schema}.highlights WHERE owner_id = %(user)s",
            "DELETE FROM {schema}.stories WHERE author_id = %(user)s",
            "DELETE FROM {schema}.close_friends WHERE user_id = %(user)s OR friend_id = %(user)s",
            "DELETE FROM {schema}.story_mutes WHERE user_id = %(user)s OR target_id = %(user)s",
        ], user_id)
        member = str(user_id)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.delete(keys.active_key(user_id, False), keys.active_key(user_id, True),
                        keys.close_friends_key(user_id), keys.muted_key(user_id), keys.seen_key(user_id))
            pipe.zrem(keys.LIVE, member)
            for (other,) in befriended:
                pipe.srem(keys.close_friends_key(other), member)
            for (other,) in muted_by:
                pipe.srem(keys.muted_key(other), member)
            for (other,) in viewers:
                pipe.hdel(keys.seen_key(other), member)
            await pipe.execute()
