"""Search's part of an account's erasure (services.common.erasure).

The deleted user's document (and its autocomplete entry), their posts' documents (and the likes of those
posts), their follow and like edges and their explore pages go. Their posts'
hashtag and place counts must fall first, which the indexer does from the
post.deleted events of posts' erasure: while one of their posts is still live in
the index, the erasure waits (10 s in hand, then postponed and retried after PICTOR_EVENTS_CLAIM_IDLE_MS),
so a late post.deleted cannot leave a tombstone naming them behind. Trend
counters are HyperLogLog sketches of author ids: nothing can be taken out of one,
and no id can be read back from it; they expire within 9 days.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import redis.asyncio as aioredis

from services.common.erasure import delete_in_every_shard
from services.common.events import Postpone
from services.search import keys
from services.search.prefixes import RedisPrefixIndex
from services.search.repository import PostgresSearchIndex

# How long the erasure waits in hand for the indexer to take the user's posts out before
# postponing the event (PICTOR_EVENTS_CLAIM_IDLE_MS).
WAIT_FOR_POSTS_S = 10.0


@dataclass
class SearchEraser:
    index: PostgresSearchIndex
    redis: aioredis.Redis
    prefixes: RedisPrefixIndex

    async def erase_user(self, user_id: int) -> None:
        db = self.index.db
        deadline = time.monotonic() + WAIT_FOR_POSTS_S
        while await db.every_shard("SELECT 1 FROM {schema}.search_posts WHERE author_id = %s AND NOT deleted "
                                   "LIMIT 1", (user_id,)):
            if time.monotonic() > deadline:
                raise Postpone
            await asyncio.sleep(0.2)
        await delete_in_every_shard(db, [
            ("DELETE FROM {schema}.search_likes WHERE user_id = %(user)s OR post_id IN "
            "(SELECT post_id FROM {schema}.search_posts WHERE author_id = %(user)s)"),
            "DELETE FROM {schema}.search_posts WHERE author_id = %(user)s",
            "DELETE FROM {schema}.search_following WHERE follower_id = %(user)s OR target_id = %(user)s",
            "DELETE FROM {schema}.search_followers WHERE follower_id = %(user)s OR target_id = %(user)s",
            "DELETE FROM {schema}.search_users WHERE user_id = %(user)s",
        ], user_id)
        await self.prefixes.remove(user_id)
        explore = [key async for key in self.redis.scan_iter(match=keys.explore_key(user_id, "*"), count=1000)]
        if explore:
            await self.redis.delete(*explore)
