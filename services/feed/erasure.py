"""Feed's part of an account's erasure (services.common.erasure).

The deleted user's own feed, follow set, exclusions, affinities and the markers
of the events counted in them go, and they leave the celebrity set; every other
user's affinity for them goes too (one SCAN over both kinds of key: a deletion
is rare, and nothing else names who holds an affinity for whom). Their posts leave the others' feeds through the post.deleted events of
posts' erasure, and their follows and blocks leave the others' follow sets and
exclusions through graph's unfollow, unblock and unmute events, which the fan-out
worker already consumes.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from services.feed import keys

SCAN_BATCH = 1000


@dataclass
class FeedEraser:
    redis: aioredis.Redis

    async def erase_user(self, user_id: int) -> None:
        await self.redis.delete(keys.feed_key(user_id), keys.following_key(user_id), keys.excluded_key(user_id),
                                keys.affinity_key(user_id))
        await self.redis.srem(keys.CELEBRITIES, str(user_id))
        own_markers = keys.affinity_markers_prefix(user_id)
        async for raw in self.redis.scan_iter(match=keys.AFFINITY_PATTERN, count=SCAN_BATCH):
            key = raw.decode() if isinstance(raw, bytes) else raw
            if key.startswith(own_markers):
                await self.redis.delete(key)
            elif key.startswith(keys.AFFINITY_PREFIX):
                await self.redis.hdel(key, str(user_id))
