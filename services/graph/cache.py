"""Graph's own reads kept in Redis: each viewer's edges and who is private, with graph their only writer.

`GetRelationships` is the mesh's most asked call (posts, accounts, engagement and
the rest ask it for nearly every read a person makes), and each answer took two
PostgreSQL statements. Here a viewer's whole edge set is kept as one hash, and
each member's privacy as one string, so a warm answer is one Redis round trip.

  gedges:{viewer}   hash: owner id -> flags (FOLLOWING | REQUESTED | BLOCKED either way | MUTED) for every
                    owner the viewer has an edge with, and "*" (the set is whole: an owner not in it has none)
  gmember:{user}    "1" private, "0" public (a user without a members row is not kept: asked of PostgreSQL)
  either, "~"       a tombstone: a write changed the entry within TOMBSTONE_TTL_S; read PostgreSQL, fill nothing

Unlike posts' shape cache, this one decides who sees what, so a fill must never put back
an answer a write has since made wrong. Every write goes through `changing`, which puts
tombstones on the entries it changes before the PostgreSQL write and again after it
(committed or not). A reader that missed fills only where the entry is still absent (NX),
and only within FILL_WITHIN_S of looking, so a fill that read PostgreSQL before a write
finds the write's tombstone and is dropped. The second tombstone is for a write slower
than the first one's life; were it lost (the process dying after the commit), the first
still covers the write, so only a write slower than TOMBSTONE_TTL_S that also lost its
second tombstone could leave an entry with the old answer, until CACHE_TTL_S. When Redis
cannot be reached, reads go to PostgreSQL and writes fail as UNAVAILABLE before they
change anything.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from services.common.cluster import execute_each, mget
from services.graph.repository import PostgresGraphRepository, PostgresProfiles
from services.graph.service import Edges, Profile

log = logging.getLogger(__name__)

CACHE_TTL_S = 600
TOMBSTONE, TOMBSTONE_TTL_S = "~", 5
FILL_WITHIN_S = 2.0  # well inside the tombstone's life: a slower fill is skipped
# A viewer with more edges than this is read from PostgreSQL each time (one hash stays small).
MAX_CACHED_EDGES = 20_000
FOLLOWING, REQUESTED, BLOCKED, MUTED = 1, 2, 4, 8
WHOLE = "*"


def edges_key(viewer_id: int) -> str:
    return f"gedges:{{{viewer_id}}}"


def member_key(user_id: int) -> str:
    return f"gmember:{{{user_id}}}"


# KEYS: a viewer's edges. ARGV: owner ids. {1, each owner's flags} when kept, else {0, 1 when it may be filled}.
_READ_EDGES = """
local kind = redis.call('TYPE', KEYS[1]).ok
if kind == 'hash' then return {1, redis.call('HMGET', KEYS[1], unpack(ARGV))} end
return {0, kind == 'none' and 1 or 0}
"""
# KEYS: a viewer's edges. ARGV: the time to live, then field/value pairs. Fills only an absent entry.
_FILL_EDGES = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
for i = 2, #ARGV, 2000 do
  redis.call('HSET', KEYS[1], unpack(ARGV, i, math.min(i + 1999, #ARGV)))
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""


def flags_of(edges: Edges, owner_id: int) -> int:
    return ((FOLLOWING if owner_id in edges.following else 0) | (REQUESTED if owner_id in edges.requested else 0)
            | (BLOCKED if owner_id in edges.blocked else 0) | (MUTED if owner_id in edges.muted else 0))


def edges_from_flags(flags: dict[int, int]) -> Edges:
    return Edges(following={o for o, f in flags.items() if f & FOLLOWING},
                 requested={o for o, f in flags.items() if f & REQUESTED},
                 blocked={o for o, f in flags.items() if f & BLOCKED},
                 muted={o for o, f in flags.items() if f & MUTED})


class GraphCache:
    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        self._read_edges = client.register_script(_READ_EDGES)
        self._fill_edges = client.register_script(_FILL_EDGES)

    async def edges(self, viewer_id: int, owner_ids: list[int]) -> tuple[dict[int, int] | None, bool]:
        """(each owner's flags, _) when the viewer's set is kept; (None, whether a reader may fill it) when not."""
        found, value = await self._read_edges(keys=[edges_key(viewer_id)], args=owner_ids)
        if not found:
            return None, bool(value)
        return {owner: int(flags or 0) for owner, flags in zip(owner_ids, value)}, False

    async def fill_edges(self, viewer_id: int, edges: Edges, looked_at: float) -> None:
        """Keep the viewer's whole edge set, read from PostgreSQL after looking (time.monotonic()) at `looked_at`."""
        if time.monotonic() - looked_at > FILL_WITHIN_S:
            return
        owners = edges.following | edges.requested | edges.blocked | edges.muted
        pairs = [WHOLE, 1, *(v for owner in owners for v in (owner, flags_of(edges, owner)))]
        await self._fill_edges(keys=[edges_key(viewer_id)], args=[CACHE_TTL_S, *pairs])

    async def members(self, user_ids: list[int]) -> tuple[dict[int, bool], list[int]]:
        """(whether each kept member is private, the members not kept that a reader may fill)."""
        kept: dict[int, bool] = {}
        fillable: list[int] = []
        for user_id, value in zip(user_ids, await mget(self.client, [member_key(u) for u in user_ids])):
            if value is None:
                fillable.append(user_id)
            elif (text := _text(value)) != TOMBSTONE:
                kept[user_id] = text == "1"
        return kept, fillable

    async def fill_members(self, profiles: list[Profile], looked_at: float) -> None:
        if not profiles or time.monotonic() - looked_at > FILL_WITHIN_S:
            return
        await execute_each(self.client, [("SET", member_key(p.id), int(p.is_private), "EX", CACHE_TTL_S, "NX")
                                         for p in profiles])

    async def drop(self, keys: list[str]) -> None:
        """Tombstones on these entries: for TOMBSTONE_TTL_S readers read PostgreSQL and fill nothing."""
        if keys:
            await execute_each(self.client, [("SET", key, TOMBSTONE, "EX", TOMBSTONE_TTL_S) for key in keys])

    @asynccontextmanager
    async def changing(self, edges_of: Iterable[int] = (), members: Iterable[int] = ()) -> AsyncIterator[None]:
        """Around a write to these viewers' edges or these members' rows: tombstones on their entries
        before it, which fails the write when Redis cannot be reached, and again after it, whether it
        committed or not."""
        keys = [edges_key(v) for v in dict.fromkeys(edges_of) if v > 0] + \
               [member_key(u) for u in dict.fromkeys(members) if u > 0]
        await self.drop(keys)
        try:
            yield
        finally:
            try:
                await self.drop(keys)
            except RedisError:
                log.exception("graph cache: could not put tombstones on %s after a write", keys)


def _text(value: bytes | str | None) -> str:
    return value.decode() if isinstance(value, bytes) else (value or "")


class CachedProfiles:
    """services.graph.service.Profiles over another (PostgreSQL's), kept in GraphCache."""

    def __init__(self, inner: PostgresProfiles, cache: GraphCache) -> None:
        self.inner = inner
        self.cache = cache

    async def get(self, user_ids: list[int]) -> dict[int, Profile]:
        ids = list(dict.fromkeys(u for u in user_ids if u > 0))
        if not ids:
            return {}
        looked_at = time.monotonic()
        try:
            kept, fillable = await self.cache.members(ids)
        except RedisError:
            log.warning("graph cache: members read from PostgreSQL (Redis unavailable)", exc_info=True)
            return await self.inner.get(ids)
        found = {u: Profile(u, private) for u, private in kept.items()}
        missing = [u for u in ids if u not in found]
        if missing:
            read = await self.inner.get(missing)
            found.update(read)
            try:
                await self.cache.fill_members([read[u] for u in fillable if u in read], looked_at)
            except RedisError:
                log.warning("graph cache: could not fill members", exc_info=True)
        return found

    async def put(self, user_id: int, is_private: bool) -> bool:
        async with self.cache.changing(members=[user_id]):
            return await self.inner.put(user_id, is_private)


class CachedGraphRepository:
    """services.graph.service.GraphRepository over PostgreSQL's: edges read from GraphCache (a viewer's
    whole set filled on a miss), every write between two users dropping both users' sets around it."""

    def __init__(self, inner: PostgresGraphRepository, cache: GraphCache) -> None:
        self.inner = inner
        self.cache = cache
        # The lists and the owner's side are read where they are written.
        self.audience, self.list_edges = inner.audience, inner.list_edges
        self.follower_ids, self.following_ids, self.exclusions = inner.follower_ids, inner.following_ids, inner.exclusions

    async def edges(self, viewer_id: int, owner_ids: list[int]) -> Edges:
        if not owner_ids:
            return Edges(set(), set(), set(), set())
        looked_at = time.monotonic()
        try:
            flags, fillable = await self.cache.edges(viewer_id, owner_ids)
        except RedisError:
            log.warning("graph cache: edges read from PostgreSQL (Redis unavailable)", exc_info=True)
            return await self.inner.edges(viewer_id, owner_ids)
        if flags is not None:
            return edges_from_flags(flags)
        whole = await self.inner.all_edges(viewer_id, MAX_CACHED_EDGES) if fillable else None
        if whole is None:
            return await self.inner.edges(viewer_id, owner_ids)
        try:
            await self.cache.fill_edges(viewer_id, whole, looked_at)
        except RedisError:
            log.warning("graph cache: could not fill edges", exc_info=True)
        asked = set(owner_ids)
        return Edges(whole.following & asked, whole.requested & asked, whole.blocked & asked, whole.muted & asked)

    async def _between(self, write, a: int, b: int, *args: object):
        """`write(a, b, *args)` of PostgreSQL's, the two users' edge sets dropped around it."""
        async with self.cache.changing(edges_of=(a, b)):
            return await write(a, b, *args)

    async def follow(self, follower_id: int, target_id: int, approved: bool = False) -> bool:
        return await self._between(self.inner.follow, follower_id, target_id, approved)

    async def unfollow(self, follower_id: int, target_id: int) -> bool:
        return await self._between(self.inner.unfollow, follower_id, target_id)

    async def request(self, requester_id: int, target_id: int) -> None:
        await self._between(self.inner.request, requester_id, target_id)

    async def drop_request(self, requester_id: int, target_id: int) -> bool:
        return await self._between(self.inner.drop_request, requester_id, target_id)

    async def block(self, user_id: int, target_id: int) -> None:
        await self._between(self.inner.block, user_id, target_id)

    async def unblock(self, user_id: int, target_id: int) -> None:
        await self._between(self.inner.unblock, user_id, target_id)

    async def mute(self, user_id: int, target_id: int) -> None:
        await self._between(self.inner.mute, user_id, target_id)

    async def unmute(self, user_id: int, target_id: int) -> None:
        await self._between(self.inner.unmute, user_id, target_id)
