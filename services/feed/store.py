"""The feed's reads and builds over its own keys (services.feed.keys), and its reads of the
authors' timelines that posts keeps (services.posts.keys), all in the post-list format of
services.common.timelines."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import redis.asyncio as aioredis

from services.common.cluster import is_cluster
from services.common.timelines import SENTINEL, Timelines, parse, score
from services.feed.keys import CELEBRITIES, affinity_key, excluded_key, features_key, feed_key, following_key
from services.posts.keys import timeline_key

# KEYS[1] = set; ARGV[1] = "add" | "rem", ARGV[2..] = members. Never creates a key.
SET_IF_BUILT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[1] == 'add' then return redis.call('SADD', KEYS[1], unpack(ARGV, 2)) end
return redis.call('SREM', KEYS[1], unpack(ARGV, 2))
"""


# KEYS[1] = aff:{viewer}, KEYS[2..] = feat:{post}; ARGV = the posts' authors, in order.
# One call instead of one HMGET per candidate: the client's cost per command dominates.
FEATURES = """
local out = {}
for i = 2, #KEYS do
  local counts = redis.call('HMGET', KEYS[i], 'likes', 'comments')
  out[#out + 1] = counts[1] or false
  out[#out + 1] = counts[2] or false
  out[#out + 1] = redis.call('HGET', KEYS[1], ARGV[i - 1]) or false
end
return out
"""


@dataclass
class Candidates:
    lists: list[list[tuple[int, int]]]
    excluded_authors: set[int]
    # What Redis lacks (expired or lost): the reader rebuilds it and reads again.
    feed_missing: bool
    missing_timelines: list[int]


TOUCH_EVERY_S = 3600.0
MAX_TOUCHED = 100_000


def _ints(members: Iterable[bytes]) -> set[int]:
    return {int(m) for m in members if m != SENTINEL.encode()}


class FeedStore:
    def __init__(self, client: aioredis.Redis, clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.clock = clock
        self.timelines = Timelines(client)
        # When this process last pushed each reader's feed keys' expiry back: a read writes
        # (EXPIRE) at most once per TOUCH_EVERY_S per reader, so warm reads are reads alone
        # (with Redis's appendfsync always, a write costs an fsync before the reply).
        self._touched: dict[int, float] = {}
        self._set_if_built = client.register_script(SET_IF_BUILT)
        self._features = client.register_script(FEATURES)
        self.cluster = is_cluster(client)

    # --- reads -------------------------------------------------------------

    async def candidates(self, user_id: int, upper_id: int | None, count: int, ttl_s: int) -> Candidates:
        """Candidate lists (pushed feed, own timeline, followed celebrities' timelines), each newest
        first with ids at or below `upper_id`, with what else a page needs, in two round trips (three
        on a Redis Cluster)."""
        top = score(upper_id) if upper_id else "+inf"
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.exists(feed_key(user_id))
            pipe.exists(timeline_key(user_id))
            pipe.zrevrangebyscore(feed_key(user_id), top, 1, start=0, num=count)
            pipe.zrevrangebyscore(timeline_key(user_id), top, 1, start=0, num=count)
            pipe.smembers(excluded_key(user_id))
            if self.cluster:  # CELEBRITIES is another slot: whom the user follows, then which are celebrities
                pipe.smembers(following_key(user_id))
            else:
                pipe.sinter(following_key(user_id), CELEBRITIES)
            if self._touch_due(user_id):
                for key in (feed_key(user_id), following_key(user_id), excluded_key(user_id)):
                    pipe.expire(key, ttl_s)
            feed_built, own_built, pushed, own, excluded, celebrities, *_ = await pipe.execute()
        celebrity_ids = sorted(_ints(celebrities))
        if self.cluster and celebrity_ids:
            flags = await self.client.smismember(CELEBRITIES, celebrity_ids)
            celebrity_ids = [c for c, yes in zip(celebrity_ids, flags) if yes]
        lists = [parse(pushed), parse(own)]
        missing = []
        if celebrity_ids:
            async with self.client.pipeline(transaction=False) as pipe:
                for celebrity in celebrity_ids:
                    pipe.exists(timeline_key(celebrity))
                    pipe.zrevrangebyscore(timeline_key(celebrity), top, 1, start=0, num=count)
                found = await pipe.execute()
            missing = [c for c, built in zip(celebrity_ids, found[0::2]) if not built]
            lists += [parse(members) for members in found[1::2]]
        # Ties in score (one millisecond) come back in member order: sort by id to be exact.
        return Candidates([sorted(lst, reverse=True) for lst in lists], _ints(excluded),
                          feed_missing=not feed_built, missing_timelines=([] if own_built else [user_id]) + missing)

    def _touch_due(self, user_id: int) -> bool:
        now = self.clock()
        if now - self._touched.get(user_id, -TOUCH_EVERY_S) < TOUCH_EVERY_S:
            return False
        if len(self._touched) >= MAX_TOUCHED:
            self._touched.clear()  # the worst that follows: one more EXPIRE per reader
        self._touched[user_id] = now
        return True

    async def features(self, user_id: int, posts: list[tuple[int, int]]) -> tuple[list[float], list[int], list[int]]:
        """Per post: the viewer's affinity for its author, and its like and comment counts (the feed's own
        projection of engagement's events: services.feed.features)."""
        if not posts:
            return [], [], []
        if self.cluster:  # the hashes are in many slots: one command each, in one pipeline
            async with self.client.pipeline(transaction=False) as pipe:
                for post_id, _ in posts:
                    pipe.hmget(features_key(post_id), ["likes", "comments"])
                pipe.hmget(affinity_key(user_id), [author for _, author in posts])
                *counts, affinities = await pipe.execute()
            flat = [v for (likes, comments), affinity in zip(counts, affinities) for v in (likes, comments, affinity)]
        else:
            flat = await self._features(keys=[affinity_key(user_id), *(features_key(p) for p, _ in posts)],
                                        args=[a for _, a in posts])
        # Counted from events (services.feed.features), so a count can dip below zero for a moment.
        likes = [max(0, int(v)) if v else 0 for v in flat[0::3]]
        comments = [max(0, int(v)) if v else 0 for v in flat[1::3]]
        affinity = [float(v) if v else 0.0 for v in flat[2::3]]
        return affinity, likes, comments

    # --- builds ------------------------------------------------------------

    async def build(self, user_id: int, posts: list[tuple[int, int]], following: list[int], excluded: set[int],
                    celebrities: set[int], ttl_s: int) -> None:
        """Write a user's feed keys whole, in one transaction."""
        feed = {SENTINEL: 0, **{f"{p}:{a}": score(p) for p, a in posts}}
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(feed_key(user_id), following_key(user_id), excluded_key(user_id))
            pipe.zadd(feed_key(user_id), feed)
            pipe.sadd(following_key(user_id), SENTINEL, *following)
            pipe.sadd(excluded_key(user_id), SENTINEL, *excluded)
            for key in (feed_key(user_id), following_key(user_id), excluded_key(user_id)):
                pipe.expire(key, ttl_s)
            await pipe.execute()
        if celebrities:  # not the user's slot
            await self.client.sadd(CELEBRITIES, *celebrities)

    # --- changes from events --------------------------------------------------

    async def feed_built(self, user_id: int) -> bool:
        return bool(await self.client.exists(feed_key(user_id)))

    async def drop(self, user_ids: list[int]) -> None:
        """Forget the users' built feeds: their next read pulls them whole (FeedService rebuilds)."""
        if user_ids:
            await self.client.unlink(*(k for u in user_ids for k in (feed_key(u), following_key(u), excluded_key(u))))

    async def set_celebrity(self, author_id: int, is_celebrity: bool) -> None:
        if is_celebrity:
            await self.client.sadd(CELEBRITIES, author_id)
        else:
            await self.client.srem(CELEBRITIES, author_id)

    async def is_celebrity(self, author_id: int) -> bool:
        return bool(await self.client.sismember(CELEBRITIES, author_id))

    async def follows(self, user_id: int, target_id: int, following: bool) -> None:
        await self._set_if_built(keys=[following_key(user_id)], args=["add" if following else "rem", target_id])

    async def excludes(self, user_id: int, author_id: int, excluded: bool) -> None:
        await self._set_if_built(keys=[excluded_key(user_id)], args=["add" if excluded else "rem", author_id])
