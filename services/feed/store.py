"""The feed's reads and builds over its own keys (services.feed.keys), and its reads of the
authors' timelines that posts keeps (services.posts.keys), all in the post-list format of
services.common.timelines."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import redis.asyncio as aioredis

from services.common.cluster import is_cluster, mget
from services.common.redis_wire import WireRedis
from services.common.timelines import SENTINEL, SENTINEL_BYTES, Timelines, score
from services.feed.features import RecentFeatures, parse_counts
from services.feed.keys import (
    CELEBRITIES,
    affinity_key,
    excluded_key,
    features_keys,
    feed_key,
    following_key,
)
from services.posts.keys import TIMELINE_PREFIX, timeline_key

# KEYS[1] = set; ARGV[1] = "add" | "rem", ARGV[2..] = members. Never creates a key.
SET_IF_BUILT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[1] == 'add' then return redis.call('SADD', KEYS[1], unpack(ARGV, 2)) end
return redis.call('SREM', KEYS[1], unpack(ARGV, 2))
"""


# KEYS: feed:{u}, tl:{u}, following:{u}, excluded:{u}, celebrities. ARGV: the top score ("+inf" or
# milliseconds), how many of each list, the timelines' key prefix (tl:), the feed keys' TTL to push back
# (or ""). Replies: feed built, own timeline built, the feed's and the own timeline's newest members,
# the excluded authors, then per followed celebrity its id, timeline built, newest members. One round
# trip for what a page reads of the feed's keys; a single Redis only (it names celebrities' tl: keys).
CANDIDATES = """
local top, count = ARGV[1], tonumber(ARGV[2])
if ARGV[4] ~= '' then
  for _, i in ipairs({1, 3, 4}) do redis.call('EXPIRE', KEYS[i], tonumber(ARGV[4])) end
end
local out = {redis.call('EXISTS', KEYS[1]), redis.call('EXISTS', KEYS[2]),
             redis.call('ZREVRANGEBYSCORE', KEYS[1], top, 1, 'LIMIT', 0, count),
             redis.call('ZREVRANGEBYSCORE', KEYS[2], top, 1, 'LIMIT', 0, count),
             redis.call('SMEMBERS', KEYS[4])}
for _, celebrity in ipairs(redis.call('SINTER', KEYS[3], KEYS[5])) do
  local timeline = ARGV[3] .. celebrity
  out[#out + 1] = celebrity
  out[#out + 1] = redis.call('EXISTS', timeline)
  out[#out + 1] = redis.call('ZREVRANGEBYSCORE', timeline, top, 1, 'LIMIT', 0, count)
end
return out
"""


@dataclass
class Candidates:
    # Each list's members as Redis gave them (b"<post>:<author>", services.common.timelines), for
    # hotpath.merge.newest_members to parse and merge in one pass.
    members: list[list[bytes]]
    excluded_authors: set[int]
    # What Redis lacks (expired or lost): the reader rebuilds it and reads again.
    feed_missing: bool
    missing_timelines: list[int]


TOUCH_EVERY_S = 3600.0
MAX_TOUCHED = 100_000
CELEBRITY_BATCH = 10_000  # members asked per SMISMEMBER


async def _nothing() -> list:
    return []


def _ints(members: Iterable[bytes]) -> set[int]:
    return {int(m) for m in members if m != SENTINEL_BYTES}


class FeedStore:
    def __init__(self, client: aioredis.Redis, clock: Callable[[], float] = time.monotonic,
                 reads: aioredis.Redis | WireRedis | None = None, features_ttl_s: float = 0) -> None:
        """reads: what a page's reads go through (services.common.redis_wire on one Redis server), else
        `client`. features_ttl_s: how long the ranker may use features it read (features.RecentFeatures)."""
        self.client = client
        self.reads = reads or client
        self.clock = clock
        self.recent = RecentFeatures(features_ttl_s, clock)
        self.timelines = Timelines(client)
        # When this process last pushed each reader's feed keys' expiry back: a read writes
        # (EXPIRE) at most once per TOUCH_EVERY_S per reader, so warm reads are reads alone
        # (with Redis's appendfsync always, a write costs an fsync before the reply).
        self._touched: dict[int, float] = {}
        self._set_if_built = client.register_script(SET_IF_BUILT)
        self.cluster = is_cluster(client)

    # --- reads -------------------------------------------------------------

    async def candidates(self, user_id: int, upper_id: int | None, count: int, ttl_s: int) -> Candidates:
        """Candidate lists (pushed feed, own timeline, followed celebrities' timelines), each the newest
        `count` members at or below `upper_id`'s millisecond, with what else a page needs: one round trip
        (three on a Redis Cluster)."""
        top = str(score(upper_id)) if upper_id else "+inf"
        touch = self._touch_due(user_id)
        if self.cluster:
            feed_built, own_built, pushed, own, excluded, celebrities = await self._read_pipelined(
                user_id, top, count, ttl_s if touch else None)
        else:
            # EVAL, not EVALSHA: in a pipeline redis-py would ask SCRIPT EXISTS first.
            async with self.reads.pipeline(transaction=False) as pipe:
                pipe.eval(CANDIDATES, 5, feed_key(user_id), timeline_key(user_id), following_key(user_id),
                          excluded_key(user_id), CELEBRITIES, top, count, TIMELINE_PREFIX, ttl_s if touch else "")
                (feed_built, own_built, pushed, own, excluded, *rest), = await pipe.execute()
            celebrities = sorted((int(c), bool(built), members)
                                 for c, built, members in zip(rest[0::3], rest[1::3], rest[2::3]) if c != SENTINEL_BYTES)
        missing = [c for c, built, _ in celebrities if not built]
        return Candidates([pushed, own, *(members for _, _, members in celebrities)], _ints(excluded),
                          feed_missing=not feed_built, missing_timelines=([] if own_built else [user_id]) + missing)

    async def _read_pipelined(self, user_id: int, top: str, count: int, ttl_s: int | None) -> tuple:
        """CANDIDATES' replies, celebrities as (id, built, members) by id, read on a Redis Cluster: the
        user's keys in one pipeline, which of the followed are celebrities, then their timelines."""
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.exists(feed_key(user_id))
            pipe.exists(timeline_key(user_id))
            pipe.zrevrangebyscore(feed_key(user_id), top, 1, start=0, num=count)
            pipe.zrevrangebyscore(timeline_key(user_id), top, 1, start=0, num=count)
            pipe.smembers(excluded_key(user_id))
            pipe.smembers(following_key(user_id))  # CELEBRITIES is another slot
            if ttl_s is not None:
                for key in (feed_key(user_id), following_key(user_id), excluded_key(user_id)):
                    pipe.expire(key, ttl_s)
            feed_built, own_built, pushed, own, excluded, following, *_ = await pipe.execute()
        celebrity_ids = sorted(await self.celebrities_among(list(_ints(following))))
        celebrities = []
        if celebrity_ids:
            async with self.client.pipeline(transaction=False) as pipe:
                for celebrity in celebrity_ids:
                    pipe.exists(timeline_key(celebrity))
                    pipe.zrevrangebyscore(timeline_key(celebrity), top, 1, start=0, num=count)
                found = await pipe.execute()
            celebrities = list(zip(celebrity_ids, map(bool, found[0::2]), found[1::2]))
        return feed_built, own_built, pushed, own, excluded, celebrities

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
        projection of engagement's events: services.feed.features), at most features_ttl_s old."""
        if not posts:
            return [], [], []
        counts, affinities = self.recent.fresh(user_id)
        unknown = [post_id for post_id, _ in posts if post_id not in counts]
        strangers = list({author for _, author in posts if author not in affinities})
        if unknown or strangers:
            read_counts, read_affinities = await self._read_features(user_id, unknown, strangers)
            counts.update(zip(unknown, zip(*parse_counts(read_counts))))
            affinities.update(zip(strangers, (float(v) if v else 0.0 for v in read_affinities)))
            self.recent.kept(len(unknown) + len(strangers))
        likes, comments = zip(*(counts[post_id] for post_id, _ in posts))
        return [affinities[author] for _, author in posts], list(likes), list(comments)

    async def _read_features(self, user_id: int, post_ids: list[int], authors: list[int]) -> tuple[list, list]:
        """The posts' features strings and the viewer's affinities for the authors, as Redis holds them."""
        keys, affinity = features_keys(post_ids), affinity_key(user_id)
        if self.cluster:  # the posts' keys are in many slots
            counts, affinities = await asyncio.gather(mget(self.client, keys) if keys else _nothing(),
                                                      self.client.hmget(affinity, authors) if authors else _nothing())
            return counts, affinities
        async with self.reads.pipeline(transaction=False) as pipe:
            if keys:
                pipe.mget(keys)
            if authors:
                pipe.hmget(affinity, authors)
            replies = iter(await pipe.execute())
        return (next(replies) if keys else []), (next(replies) if authors else [])

    # --- builds ------------------------------------------------------------

    async def build(self, user_id: int, posts: list[tuple[int, int]], following: list[int], excluded: set[int],
                    ttl_s: int) -> None:
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

    async def celebrities_among(self, user_ids: list[int]) -> set[int]:
        """Which of the users are celebrities: their posts are pulled at read time, everyone else's pushed.

        The set is the fan-out's, marked at each post (FanOut.on_post_created), so a rebuild pushes
        exactly the authors the pages will not pull; a lost set only means more is pushed."""
        found: set[int] = set()
        for start in range(0, len(user_ids), CELEBRITY_BATCH):
            batch = user_ids[start:start + CELEBRITY_BATCH]
            found.update(u for u, yes in zip(batch, await self.client.smismember(CELEBRITIES, batch)) if yes)
        return found

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
