"""The Redis side of like and comment counts: sharded counters, the read model and the flusher's drain.

A like or comment adds its delta (+1, -1, -n for a comment deleted with its
replies) to one of SHARDS counters of its post, chosen at random, so a viral
post's writes spread over several keys (over several nodes with Redis
Cluster), and marks the post dirty. The flusher (services.engagement.flusher)
drains dirty posts and folds their shards with the compiled hotpath.counters
into one UPSERT per post. The keys are listed in services.engagement.keys.

NOTE: two invariants.
- No delta is ever only in a process's memory. DRAIN moves dirty posts'
  shard values into a flush hash in one atomic script; a flush is forgotten
  only after PostgreSQL committed it, and PostgreSQL records each flush's id
  in the same transaction (counter_flushes), so a flusher that dies anywhere
  leaves a flush that the next one applies exactly once.
- For a post whose pc: exists, pc: + its entries in unfinished flushes + its
  shards is its exact count at every instant: a flush's finish writes pc:
  and forgets the flush in one MULTI, and a write creates a missing pc: (from
  PostgreSQL) only while no flush holds the post. So SNAPSHOT, one atomic
  script, reads exact counts; only a post without pc: falls back to
  PostgreSQL, where a read between a flush's commit and its finish can count
  that flush twice for a moment.
"""

from __future__ import annotations

import random
import uuid
from array import array
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from hotpath import counters as kernels
from services.common.cluster import Call, call_each, is_cluster
from services.engagement.keys import COUNTS_TTL_S, PURGED_COUNTS_TTL_S, CounterKeys
from services.engagement.service import COMMENTS, LIKES, Counts

SHARDS = 8
KINDS = (LIKES, COMMENTS)

# Shared by the scripts: does any unfinished flush hold the post?
_IN_FLIGHT = """
local function in_flight(prefix, flushing, post)
  for _, id in ipairs(redis.call('SMEMBERS', flushing)) do
    if redis.call('HEXISTS', prefix .. ':flush:' .. id, post) == 1 then return true end
  end
  return false
end
"""

# KEYS: pc:{post}, dirty set, flushing set, the shard to add to.
# ARGV: post, delta, key prefix, pc TTL, then (on the second try) the post's likes and comments in PostgreSQL.
# Returns 0, adding nothing, when pc: is missing and may be created: the
# caller reads PostgreSQL and calls again with the counts to create it from.
ADD = _IN_FLIGHT + """
if redis.call('EXISTS', KEYS[1]) == 0 and redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 0
    and not in_flight(ARGV[3], KEYS[3], ARGV[1]) then
  if ARGV[5] == nil then return 0 end
  redis.call('HSET', KEYS[1], 'likes', ARGV[5], 'comments', ARGV[6])
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
end
redis.call('INCRBY', KEYS[4], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
return 1
"""

# KEYS: dirty set, flushing set. ARGV: key prefix, pc TTL, pc: prefix, then post, likes, comments triples.
# A read's fill: creates each missing pc: from the counts PostgreSQL just gave,
# under ADD's condition (nothing pending, no flush holding the post), so the
# next read of the post is Redis's alone; a post a writer touched meanwhile
# has its pc: already, and is left as it is.
FILL = _IN_FLIGHT + """
for i = 4, #ARGV, 3 do
  local post, key = ARGV[i], ARGV[3] .. ARGV[i]
  if redis.call('EXISTS', key) == 0 and redis.call('SISMEMBER', KEYS[1], post) == 0
      and not in_flight(ARGV[1], KEYS[2], post) then
    redis.call('HSET', key, 'likes', ARGV[i + 1], 'comments', ARGV[i + 2])
    redis.call('EXPIRE', key, tonumber(ARGV[2]))
  end
end
return 0
"""

# KEYS: flushing set, dirty set. ARGV: shards per kind, key prefix, pc: prefix, post ids...
# Returns the number of unfinished flushes F, then per post: pc likes, pc
# comments (nil without pc:), 1 and its 2*shards shard values if the post is
# dirty, else 0 alone, and its entry in each of the F flushes (nil when
# absent). A post that is not dirty has no shard values (ADD sets them and
# marks the post in one script; DRAIN, SETTLE and FORGET take both away in
# one), so most posts of a page cost two reads, not 2 + 2*shards.
SNAPSHOT = """
local flushes = redis.call('SMEMBERS', KEYS[1])
local shards = tonumber(ARGV[1])
local out = {#flushes}
for i = 4, #ARGV do
  local post = ARGV[i]
  local pc = redis.call('HMGET', ARGV[3] .. post, 'likes', 'comments')
  out[#out + 1] = pc[1] or false
  out[#out + 1] = pc[2] or false
  local dirty = redis.call('SISMEMBER', KEYS[2], post)
  out[#out + 1] = dirty
  if dirty == 1 then
    for _, kind in ipairs({'likes', 'comments'}) do
      for n = 0, shards - 1 do
        out[#out + 1] = redis.call('GET', ARGV[2] .. ':' .. kind .. ':' .. post .. ':' .. n) or false
      end
    end
  end
  for _, id in ipairs(flushes) do
    out[#out + 1] = redis.call('HGET', ARGV[2] .. ':flush:' .. id, post) or false
  end
end
return out
"""

# KEYS: dirty set, flushing set, the new flush's hash.
# ARGV: max posts, shards per kind, key prefix, flush id.
DRAIN = """
local posts = redis.call('SPOP', KEYS[1], tonumber(ARGV[1]))
if #posts == 0 then return {} end
local shards = tonumber(ARGV[2])
local out = {}
for _, post in ipairs(posts) do
  local values = {}
  for _, kind in ipairs({'likes', 'comments'}) do
    for n = 0, shards - 1 do
      values[#values + 1] = redis.call('GETDEL', ARGV[3] .. ':' .. kind .. ':' .. post .. ':' .. n) or '0'
    end
  end
  local joined = table.concat(values, ',')
  redis.call('HSET', KEYS[3], post, joined)
  out[#out + 1] = post
  out[#out + 1] = joined
end
redis.call('SADD', KEYS[2], ARGV[4])
return out
"""

# KEYS: dirty set. ARGV: shards per kind, key prefix, pc TTL, pc: prefix, then post, likes, comments triples.
# Reconciliation's last step: the posts' pending deltas go (the recount
# counted their rows: writers commit a row before they add its delta) and pc:
# takes the recount, together.
SETTLE = """
local shards = tonumber(ARGV[1])
for i = 5, #ARGV, 3 do
  local post = ARGV[i]
  if redis.call('SREM', KEYS[1], post) == 1 then
    for _, kind in ipairs({'likes', 'comments'}) do
      for n = 0, shards - 1 do
        redis.call('DEL', ARGV[2] .. ':' .. kind .. ':' .. post .. ':' .. n)
      end
    end
  end
  redis.call('HSET', ARGV[4] .. post, 'likes', ARGV[i + 1], 'comments', ARGV[i + 2])
  redis.call('EXPIRE', ARGV[4] .. post, tonumber(ARGV[3]))
end
return 0
"""
# KEYS: dirty set, flushing set, pc:{post}. ARGV: post, shards per kind, key prefix, zeros' TTL.
# A deleted post's counters go: its pending deltas and its entries in
# unfinished flushes. Its read model becomes zeros rather than going: a read
# that found no pc: and asked PostgreSQL before the purge deleted the row
# would otherwise fill the old count back in (FILL creates only a missing
# pc:). Run under the flusher's lock (purge.py), so no flush is in a
# flusher's hands meanwhile.
FORGET = """
local post = ARGV[1]
redis.call('SREM', KEYS[1], post)
for _, kind in ipairs({'likes', 'comments'}) do
  for n = 0, tonumber(ARGV[2]) - 1 do
    redis.call('DEL', ARGV[3] .. ':' .. kind .. ':' .. post .. ':' .. n)
  end
end
for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  redis.call('HDEL', ARGV[3] .. ':flush:' .. id, post)
end
redis.call('HSET', KEYS[3], 'likes', 0, 'comments', 0)
redis.call('EXPIRE', KEYS[3], tonumber(ARGV[4]))
return 0
"""
# KEYS: recheck set. ARGV: now, max posts. Takes (removes and returns) the posts due by now.
TAKE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #due > 0 then redis.call('ZREM', KEYS[1], unpack(due)) end
return due
"""
# NOTE: the scripts build the keys of the posts they touch rather than take
# them in KEYS, so every post a call names must be in the call's partition:
# on a Redis Cluster, each partition's keys share one slot (CounterKeys.partition).
PARTITIONS_ON_CLUSTER = 16


@dataclass(frozen=True)
class Flush:
    """Shard values drained from Redis in one go: post_id -> likes' shards then comments' shards."""

    id: str
    values: dict[int, list[int]]
    partition: int = 0  # whose keys hold it (services.engagement.keys)


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


def _shard_values(joined: bytes | str) -> list[int]:
    return [int(v) for v in _text(joined).split(",")]


def _parse(pairs: Iterable[tuple[bytes | str | int, bytes | str]]) -> dict[int, list[int]]:
    return {int(post): _shard_values(joined) for post, joined in pairs}


def fold(flushes: list[Flush]) -> tuple[array, array, array]:
    """(post ids, like deltas, comment deltas): every flush's shards summed, one total per post.

    sum_sharded adds each post's shards (per flush, so a flush drained with
    another shard count still adds up); coalesce then merges the same post
    across flushes, in first-seen order. Both raise OverflowError rather than
    wrap outside int64.
    """
    posts: list[int] = []
    values = array("q")
    shards_per_key = array("q")
    for flush in flushes:
        for post_id, shard_values in flush.values.items():
            half = len(shard_values) // 2
            posts.append(post_id)
            values.extend(shard_values)
            shards_per_key.extend((half, len(shard_values) - half))
    if not posts:
        return array("q"), array("q"), array("q")
    totals = kernels.sum_sharded(values, shards_per_key)
    # Same keys in the same (first-seen) order both times.
    keys, likes = kernels.coalesce(posts, totals[0::2])
    _, comments = kernels.coalesce(posts, totals[1::2])
    return keys, likes, comments


DEFAULT_KEYS = CounterKeys()
DurableCounts = Callable[[list[int]], Awaitable[Mapping[int, Counts]]]


def _all_cached(post_ids: list[int], bases: list[Counts | None], pending: list[Counts]) -> dict[int, Counts] | None:
    """`cached`'s answer from a snapshot: None unless every post has its read model."""
    if any(base is None for base in bases):
        return None
    return {p: base + more for p, base, more in zip(post_ids, bases, pending) if base is not None}


class RedisCounters:
    def __init__(self, client: aioredis.Redis, durable: DurableCounts, keys: CounterKeys = DEFAULT_KEYS,
                 shards: int = SHARDS, partitions: int | None = None) -> None:
        """`durable` reads post_counts from PostgreSQL, for posts whose pc: is missing. `partitions`:
        1 on one Redis, PARTITIONS_ON_CLUSTER on a Redis Cluster unless given (see keys.py)."""
        self.client = client
        self.durable = durable
        self.keys = keys
        self.shards = shards
        count = partitions or (PARTITIONS_ON_CLUSTER if is_cluster(client) else 1)
        self.partitions = [keys.partition(n, count) for n in range(count)]
        self._next_drain = 0
        self._add = client.register_script(ADD)
        self._fill = client.register_script(FILL)
        self._snapshot = client.register_script(SNAPSHOT)
        self._drain = client.register_script(DRAIN)
        self._settle = client.register_script(SETTLE)
        self._forget = client.register_script(FORGET)
        self._take_due = client.register_script(TAKE_DUE)

    def partition_of(self, post_id: int) -> int:
        return post_id % len(self.partitions)

    def keys_of(self, post_id: int) -> CounterKeys:
        """The keys of the post's partition."""
        return self.partitions[self.partition_of(post_id)]

    def counts_key(self, post_id: int) -> str:
        """The post's read model (pc:)."""
        return self.keys_of(post_id).counts(post_id)

    def _by_partition(self, post_ids: Iterable[int]) -> dict[int, list[int]]:
        grouped: dict[int, list[int]] = {}
        for post_id in post_ids:
            grouped.setdefault(self.partition_of(post_id), []).append(post_id)
        return grouped

    # --- writers and readers --------------------------------------------------------

    async def add(self, post_id: int, kind: str, delta: int) -> None:
        """Add a change to a random shard of the post and mark it dirty, atomically."""
        part = self.keys_of(post_id)
        keys = [part.counts(post_id), part.dirty, part.flushing,
                part.shard(kind, post_id, random.randrange(self.shards))]
        args: list[object] = [post_id, delta, part.prefix, COUNTS_TTL_S]
        if await self._add(keys=keys, args=args):
            return
        base = (await self.durable([post_id])).get(post_id, Counts())
        await self._add(keys=keys, args=[*args, base.likes, base.comments])

    async def current(self, post_ids: list[int], durable: Mapping[int, Counts] | None = None) -> dict[int, Counts]:
        """Each post's count now (raw: may dip below zero for a moment; show it with Counts.shown).

        A post without pc: counts from post_counts instead: `durable` when the
        caller read it just before (the safer order), else read here after.
        """
        if not post_ids:
            return {}
        bases, pending = await self._read(post_ids, durable)
        missing = [p for p, base in zip(post_ids, bases) if base is None]
        late = await self.durable(missing) if missing else {}
        if late:
            await call_each(self.client, self._fill, [
                ([self.partitions[n].dirty, self.partitions[n].flushing],
                 [self.partitions[n].prefix, COUNTS_TTL_S, self.partitions[n].counts_prefix,
                  *(v for p in posts for v in (p, late[p].likes, late[p].comments))])
                for n, posts in self._by_partition(late).items()])
        return {p: (base if base is not None else late.get(p, Counts())) + more
                for p, base, more in zip(post_ids, bases, pending)}

    async def cached(self, post_ids: list[int]) -> dict[int, Counts] | None:
        """Each post's count now (raw, as current gives it) from Redis alone; None when Redis holds no
        read model (pc:) of one of them (current would read PostgreSQL for it)."""
        if not post_ids:
            return {}
        return _all_cached(post_ids, *await self._read(post_ids, None))

    def queue_cached(self, pipe: aioredis.client.Pipeline, post_ids: list[int]
                     ) -> Callable[[Iterator[Any]], dict[int, Counts] | None]:
        """`cached`'s read queued on a pipeline of one Redis, for a reader that reads other keys in the same
        round trip; the function returned takes its replies from the pipeline's, in their order. (EVAL, not
        EVALSHA: a pipeline would ask SCRIPT EXISTS first, one more round trip.)"""
        if not post_ids:
            return lambda replies: {}
        grouped, calls = self._snapshots(post_ids)
        for keys, args in calls:
            pipe.eval(SNAPSHOT, len(keys), *keys, *args)
        return lambda replies: _all_cached(post_ids, *self._parse(post_ids, grouped, [next(replies) for _ in calls],
                                                                  None))

    async def _read(self, post_ids: list[int], durable: Mapping[int, Counts] | None
                    ) -> tuple[list[Counts | None], list[Counts]]:
        """One snapshot of the posts, in their order: each one's read model (pc:, else its `durable`
        count when given, else None), and what is pending beside it (its shards and unfinished flushes)."""
        grouped, calls = self._snapshots(post_ids)
        return self._parse(post_ids, grouped, await call_each(self.client, self._snapshot, calls), durable)

    def _snapshots(self, post_ids: list[int]) -> tuple[dict[int, list[int]], list[Call]]:
        """The posts by partition, and SNAPSHOT's call for each partition."""
        grouped = self._by_partition(dict.fromkeys(post_ids))
        return grouped, [([self.partitions[n].flushing, self.partitions[n].dirty],
                          [self.shards, self.partitions[n].prefix, self.partitions[n].counts_prefix, *posts])
                         for n, posts in grouped.items()]

    def _parse(self, post_ids: list[int], grouped: dict[int, list[int]], replies: list[Any],
               durable: Mapping[int, Counts] | None) -> tuple[list[Counts | None], list[Counts]]:
        """_read's answer from SNAPSHOT's replies, one per partition of `grouped`."""
        found: dict[int, tuple[Counts | None, list[int], list[int]]] = {}
        for posts, reply in zip(grouped.values(), replies):
            flushes, at = reply[0], 1
            for post_id in posts:
                pc_likes, pc_comments = reply[at], reply[at + 1]
                base = (Counts(int(pc_likes), int(pc_comments)) if pc_likes is not None
                        else durable.get(post_id, Counts()) if durable is not None else None)
                dirty, at = reply[at + 2], at + 3
                if dirty:
                    shards = [int(v) if v is not None else 0 for v in reply[at:at + 2 * self.shards]]
                    at += 2 * self.shards
                else:
                    shards = [0] * (2 * self.shards)
                drained = [_shard_values(joined) for joined in reply[at:at + flushes] if joined is not None]
                at += flushes
                found[post_id] = (base, shards[:self.shards] + [v for d in drained for v in d[:len(d) // 2]],
                                  shards[self.shards:] + [v for d in drained for v in d[len(d) // 2:]])
        values = array("q")
        shards_per_key = array("q")
        for post_id in post_ids:
            _, likes, comments = found[post_id]
            values.extend(likes + comments)
            shards_per_key.extend((len(likes), len(comments)))
        totals = kernels.sum_sharded(values, shards_per_key)
        return ([found[p][0] for p in post_ids],
                [Counts(totals[2 * i], totals[2 * i + 1]) for i in range(len(post_ids))])

    # --- the flusher and reconciliation -------------------------------------------

    async def drain(self, max_posts: int) -> list[Flush]:
        """Move up to `max_posts` dirty posts' shard values into new flushes, one per partition that
        has any (the partitions taken in turn from one call to the next); [] when nothing is dirty."""
        flushes: list[Flush] = []
        left = max_posts
        count = len(self.partitions)
        first, self._next_drain = self._next_drain, (self._next_drain + 1) % count
        for n in [(first + i) % count for i in range(count)]:
            if left <= 0:
                break
            part, flush_id = self.partitions[n], uuid.uuid4().hex
            reply = await self._drain(keys=[part.dirty, part.flushing, part.flush(flush_id)],
                                      args=[left, self.shards, part.prefix, flush_id])
            if reply:
                flushes.append(Flush(flush_id, _parse(zip(reply[0::2], reply[1::2])), n))
                left -= len(reply) // 2
        return flushes

    async def unfinished(self) -> list[Flush]:
        """Flushes drained earlier and not finished (their flusher died, or failed to write)."""
        flushes = []
        for n, part in enumerate(self.partitions):
            for flush_id in sorted(_text(i) for i in await self.client.smembers(part.flushing)):
                values = await self.client.hgetall(part.flush(flush_id))
                flushes.append(Flush(flush_id, _parse(values.items()), n))
        return flushes

    async def finish(self, flushes: list[Flush], counts: Mapping[int, Counts]) -> None:
        """Forget flushes PostgreSQL has committed, and write their posts' new counts to pc:, together
        (one transaction per partition: a post's pc: and its flushes are in its partition)."""
        done: dict[int, set[str]] = {}
        for flush in flushes:
            done.setdefault(flush.partition, set()).add(flush.id)
        posts = self._by_partition(counts)
        for n in sorted(done.keys() | posts.keys()):
            part, ids = self.partitions[n], sorted(done.get(n, ()))
            async with self.client.pipeline(transaction=True) as pipe:
                for post_id in posts.get(n, ()):
                    c = counts[post_id]
                    pipe.hset(part.counts(post_id), mapping={"likes": c.likes, "comments": c.comments})
                    pipe.expire(part.counts(post_id), COUNTS_TTL_S)
                if ids:
                    pipe.delete(*(part.flush(i) for i in ids))
                    pipe.srem(part.flushing, *ids)
                await pipe.execute()

    async def set_aside(self, flush: Flush) -> None:
        """Stop retrying a flush that can never apply; its hash stays for inspection."""
        part = self.partitions[flush.partition]
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.sadd(part.dead, flush.id)
            pipe.srem(part.flushing, flush.id)
            await pipe.execute()

    def dead_key(self, flush: Flush) -> str:
        return self.partitions[flush.partition].dead

    async def settle(self, counts: Mapping[int, Counts]) -> None:
        """Drop the posts' pending deltas and set their pc: to `counts` (recounted from the rows)."""
        await call_each(self.client, self._settle, [
            ([self.partitions[n].dirty], [self.shards, self.partitions[n].prefix, COUNTS_TTL_S,
                                          self.partitions[n].counts_prefix,
                                          *(v for p in posts for v in (p, counts[p].likes, counts[p].comments))])
            for n, posts in self._by_partition(counts).items()])

    async def recheck_at(self, post_id: int, when: float) -> None:
        """Have reconciliation recount the post at `when` (Unix s), or later if a later recheck is pending.

        NOTE: later wins, so a post is recounted only once its events have been quiet for the delay: a
        recount that ran while a like's row was committed but its delta not yet added would count that
        like twice (or drop it). Such a like's event, handled after the recount, schedules another.
        """
        await self.client.zadd(self.keys.recheck, {str(post_id): when}, gt=True)

    async def take_due(self, now: float, max_posts: int) -> list[int]:
        """The posts whose recheck is due by `now`, taken off the set."""
        return [int(p) for p in await self._take_due(keys=[self.keys.recheck], args=[now, max_posts])]

    async def forget(self, post_id: int) -> None:
        """Drop what Redis counts for a deleted post, and read zeros for it for a while (call under the
        flusher's lock)."""
        part = self.keys_of(post_id)
        await self._forget(keys=[part.dirty, part.flushing, part.counts(post_id)],
                           args=[post_id, self.shards, part.prefix, PURGED_COUNTS_TTL_S])
