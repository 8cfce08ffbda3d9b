"""The tray's structures in Redis (keys: services.stories.keys), derived from PostgreSQL.

Per author, the ids of their active stories scored by expires_at (two sorted
sets: EVERYONE and CLOSE_FRIENDS) and their close friends; per viewer, the
authors whose stories they muted and, per author, the newest story id they
viewed. The tray is one script over the accounts the viewer follows: two bulk
commands over all of them (which have active stories, which I muted), then a
few O(log n) commands per account with active stories, never a walk over
stories, so its cost grows with the accounts followed (slowly) and not with
the stories they posted.

A Redis that lost the structures (no `{st}:built`) makes the next tray rebuild
them from PostgreSQL first (active stories, close friends, story mutes).
"""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, datetime

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from services.common.batching import Batcher
from services.common.cluster import call_each
from services.stories import keys
from services.stories.service import Story, TrayEntry

log = logging.getLogger(__name__)

REBUILD_LOCK_S = 30

# ARGV: viewer, now (ms), the four key prefixes/keys below, the viewer's muted and seen keys, then the authors
# in one argument, comma-separated (a thousand arguments cost redis-py more to pack than the script to run).
# Returns nil when the structures were never built, else a flat list: author, count, newest id, unseen (0/1).
# Two bulk commands over all the authors (ZMSCORE of {st}:live, SMISMEMBER of my mutes) leave the few
# with active stories; only those cost a few O(log n) commands each.
# NOTE: ids pass the 2^53 a Lua number holds exactly, so they are compared as decimal strings (scores,
# milliseconds, fit).
TRAY_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local viewer, now_ms, now = ARGV[1], tonumber(ARGV[2]), '(' .. ARGV[2]
local active, active_cf, friends, live, muted, seen = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local function newer(a, b)
  if b == false or b == nil then return true end
  if #a ~= #b then return #a > #b end
  return a > b
end
-- Bulk commands in chunks: unpack() is bounded by Lua's C stack.
local function bulk(command, key, members)
  local found = {}
  for first = 1, #members, 1000 do
    local part = redis.call(command, key, unpack(members, first, math.min(first + 999, #members)))
    for j = 1, #part do found[#found + 1] = part[j] end
  end
  return found
end
local authors = {}
for author in string.gmatch(ARGV[9], '%d+') do authors[#authors + 1] = author end
local candidates = {}
if #authors > 0 then
  local until_ms = bulk('ZMSCORE', live, authors)
  for i = 1, #authors do
    if until_ms[i] and tonumber(until_ms[i]) > now_ms then candidates[#candidates + 1] = authors[i] end
  end
end
local is_muted = {}
if #candidates > 0 then is_muted = bulk('SMISMEMBER', muted, candidates) end
local out = {}
for i = 1, #candidates do
  local author = candidates[i]
  if author == viewer or is_muted[i] == 0 then
    local count, latest = 0, nil
    local n = redis.call('ZCOUNT', active .. author, now, '+inf')
    if n > 0 then
      count = n
      latest = redis.call('ZREVRANGEBYSCORE', active .. author, '+inf', now, 'LIMIT', 0, 1)[1]
    end
    local c = redis.call('ZCOUNT', active_cf .. author, now, '+inf')
    if c > 0 and (author == viewer or redis.call('SISMEMBER', friends .. author, viewer) == 1) then
      count = count + c
      local top = redis.call('ZREVRANGEBYSCORE', active_cf .. author, '+inf', now, 'LIMIT', 0, 1)[1]
      if latest == nil or newer(top, latest) then latest = top end
    end
    if count > 0 then
      local unseen = 0
      if author ~= viewer and newer(latest, redis.call('HGET', seen, author)) then unseen = 1 end
      out[#out + 1] = author
      out[#out + 1] = count
      out[#out + 1] = latest
      out[#out + 1] = unseen
    end
  end
end
return out
"""

# KEYS[1]: the viewer's seen hash; ARGV: author, story id, ttl (s). Keeps the newest id.
SEEN_SCRIPT = """
local old = redis.call('HGET', KEYS[1], ARGV[1])
local new = ARGV[2]
if old == false or #new > #old or (#new == #old and new > old) then
  redis.call('HSET', KEYS[1], ARGV[1], new)
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


class RedisStoryIndex:
    def __init__(self, redis: aioredis.Redis, repo, ttl_s: int, batch_linger_s: float = 0.0) -> None:
        self.redis = redis
        self.repo = repo  # PostgresStoryRepository: what a rebuild reads
        self.ttl_s = ttl_s
        self._tray = redis.register_script(TRAY_SCRIPT)
        self._seen = redis.register_script(SEEN_SCRIPT)
        # A celebrity's story seen by many at once: the marks that arrive while one round trip is in
        # flight go in the next, one pipeline (services.common.batching).
        self._marks: Batcher[None, tuple[int, int, int], None] = Batcher(self._mark_many, linger_s=batch_linger_s)

    async def add(self, story: Story) -> None:
        """After the story committed. Should Redis fail here, the story is not lost (nor posted twice by a
        client's retry): the structures are marked for a rebuild, which the next tray makes."""
        key = keys.active_key(story.author_id, story.close_friends)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.zadd(key, {str(story.id): _ms(story.expires_at)})
                pipe.zremrangebyscore(key, "-inf", _ms(story.created_at))  # the expired ones
                pipe.expireat(key, story.expires_at)
                pipe.zadd(keys.LIVE, {str(story.author_id): _ms(story.expires_at)}, gt=True)
                pipe.zremrangebyscore(keys.LIVE, "-inf", _ms(story.created_at))
                await pipe.execute()
        except RedisError as error:
            log.warning("stories: story %d not in the tray's index (%s); marking it for a rebuild", story.id, error)
            with contextlib.suppress(RedisError):
                await self.redis.delete(keys.BUILT)

    async def remove(self, story: Story) -> None:
        await self.redis.zrem(keys.active_key(story.author_id, story.close_friends), str(story.id))

    async def mark_seen(self, viewer_id: int, story: Story) -> None:
        await self._marks.submit(None, (viewer_id, story.author_id, story.id))

    async def _mark_many(self, _: None, marks: list[tuple[int, int, int]]) -> list[None]:
        await call_each(self.redis, self._seen, [([keys.seen_key(viewer_id)], [author_id, story_id, 2 * self.ttl_s])
                                                 for viewer_id, author_id, story_id in marks])
        return [None] * len(marks)

    async def set_close_friend(self, owner_id: int, friend_id: int, on: bool) -> None:
        if on:
            await self.redis.sadd(keys.close_friends_key(owner_id), friend_id)
        else:
            await self.redis.srem(keys.close_friends_key(owner_id), friend_id)

    async def set_muted(self, user_id: int, target_id: int, on: bool) -> None:
        if on:
            await self.redis.sadd(keys.muted_key(user_id), target_id)
        else:
            await self.redis.srem(keys.muted_key(user_id), target_id)

    async def tray(self, viewer_id: int, author_ids: list[int], now_ms: int) -> list[TrayEntry]:
        args = [viewer_id, now_ms, keys.ACTIVE, keys.ACTIVE_CLOSE_FRIENDS, keys.CLOSE_FRIENDS, keys.LIVE,
                keys.muted_key(viewer_id), keys.seen_key(viewer_id), ",".join(map(str, dict.fromkeys(author_ids)))]
        flat = await self._tray(keys=[keys.BUILT], args=args)
        if flat is None:
            await self.rebuild()
            flat = await self._tray(keys=[keys.BUILT], args=args) or []
        return [TrayEntry(int(flat[i]), int(flat[i + 1]), int(flat[i + 2]), bool(int(flat[i + 3])))
                for i in range(0, len(flat), 4)]

    async def rebuild(self) -> None:
        """Everything but the seen markers, from PostgreSQL; one rebuild at a time (the others wait for it)."""
        if not await self.redis.set(keys.BUILDING, 1, nx=True, ex=REBUILD_LOCK_S):
            return  # another replica is at it: this tray shows what is there so far
        try:
            now = datetime.now(UTC)
            last: dict[str, datetime] = {}
            async with self.redis.pipeline(transaction=False) as pipe:
                for story_id, author_id, audience, expires_at in await self.repo.all_active(now):
                    key = keys.active_key(author_id, audience == 2)
                    pipe.zadd(key, {str(story_id): _ms(expires_at)})
                    last[key] = max(last.get(key, expires_at), expires_at)
                for key, at in last.items():
                    pipe.expireat(key, at)
                    pipe.zadd(keys.LIVE, {key.rsplit(":", 1)[1]: _ms(at)}, gt=True)
                for owner_id, friend_id in await self.repo.all_close_friends():
                    pipe.sadd(keys.close_friends_key(owner_id), friend_id)
                for user_id, target_id in await self.repo.all_story_mutes():
                    pipe.sadd(keys.muted_key(user_id), target_id)
                pipe.set(keys.BUILT, 1)
                await pipe.execute()
            log.info("stories: rebuilt the tray's structures from PostgreSQL")
        finally:
            await self.redis.delete(keys.BUILDING)
