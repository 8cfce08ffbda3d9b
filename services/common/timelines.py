"""The post-list format in Redis: sorted sets of posts, and the one writer that keeps them.

Two owners use it, each for its own keys: posts for the authors' timelines
(services.posts.keys) and the feed for the home feeds (services.feed.keys).
Nothing here names a key.

Members of the ZSETs are "post_id:author_id"; the score is the post's
timestamp in ms (ids are time-ordered, and 64-bit ids do not fit a double).
Every list holds a sentinel ("0", score 0), so an existing key means "built"
even when empty, and a missing one means "rebuild from PostgreSQL". Pushes go
through PUSH_IF_BUILT: a push never creates a key, so a list that was flushed
or expired is rebuilt whole instead of growing from a fragment.
"""

from __future__ import annotations

from collections.abc import Iterable

import redis.asyncio as aioredis

from hotpath.ids import decode
from services.common.cluster import call_each

SENTINEL = "0"
SENTINEL_BYTES = SENTINEL.encode()

# KEYS[1] = zset; ARGV = score, member, max items (sentinel not counted)
PUSH_IF_BUILT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
local extra = redis.call('ZCARD', KEYS[1]) - 1 - tonumber(ARGV[3])
if extra > 0 then redis.call('ZREMRANGEBYRANK', KEYS[1], 1, extra) end
return 1
"""


def member(post_id: int, author_id: int) -> str:
    return f"{post_id}:{author_id}"


def score(post_id: int) -> int:
    return decode(post_id).timestamp_ms


class Timelines:
    """Writes post lists; each owner passes only its own keys."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        self._push = client.register_script(PUSH_IF_BUILT)

    async def push(self, keys: Iterable[str], post_id: int, author_id: int, max_items: int) -> None:
        """Add a post to every built ZSET among `keys`, trimming each to `max_items`."""
        args = [score(post_id), member(post_id, author_id), max_items]
        await call_each(self.client, self._push, [([key], args) for key in keys])

    async def push_posts(self, key: str, posts: Iterable[tuple[int, int]], max_items: int) -> None:
        """Add several posts to one ZSET, if it is built."""
        await call_each(self.client, self._push,
                        [([key], [score(post_id), member(post_id, author_id), max_items]) for post_id, author_id in posts])

    async def remove(self, keys: Iterable[str], posts: Iterable[tuple[int, int]]) -> None:
        members = [member(p, a) for p, a in posts]
        if not members:
            return
        async with self.client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.zrem(key, *members)
            await pipe.execute()

    async def replace(self, key: str, posts: Iterable[tuple[int, int]], ttl_s: int | None = None) -> None:
        """Write a whole ZSET (sentinel included) in one transaction."""
        mapping = {SENTINEL: 0, **{member(p, a): score(p) for p, a in posts}}
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            pipe.zadd(key, mapping)
            if ttl_s:
                pipe.expire(key, ttl_s)
            await pipe.execute()
