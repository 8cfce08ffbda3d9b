"""Realtime's part of an account's erasure (services.common.erasure): the deleted user's presence
rows and class history, their replay buffer, open-stream markers and redelivery guards, and their
place in the presence, activity and class sets."""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from services.common.db import Database
from services.common.erasure import delete_in_every_shard
from services.realtime import classes, keys


@dataclass
class RealtimeEraser:
    db: Database
    redis: aioredis.Redis

    async def erase_user(self, user_id: int) -> None:
        member = str(user_id)
        seen = [key async for key in self.redis.scan_iter(match=keys.seen(user_id, "*"), count=1000)]
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.delete(keys.events(user_id), keys.conns(user_id), keys.classes(user_id), *seen)
            for zset in (keys.LIVE, keys.ACTIVE, keys.ACTS, keys.VISITS):
                pipe.zrem(zset, member)
            pipe.hdel(keys.PRESENCE, member)
            pipe.srem(keys.RECHECK, member)
            for label in classes.ALL:
                pipe.srem(keys.class_members(label), member)
            await pipe.execute()
        await delete_in_every_shard(self.db, [
            f"DELETE FROM {{schema}}.{table} WHERE user_id = %(user)s"
            for table in ("presence", "user_classes", "user_class_history")], user_id)
