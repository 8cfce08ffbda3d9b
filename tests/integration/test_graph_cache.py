"""Graph's cache (services.graph.cache) against the real PostgreSQL and Redis: reads are as fresh as
PostgreSQL after every kind of write, warm or cold; a fill that raced a write is dropped; a viewer's set too
big to keep is read from PostgreSQL; without Redis reads still answer while writes fail before they change
anything."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from services.graph import cache as graph_cache
from services.graph.cache import TOMBSTONE, CachedGraphRepository, CachedProfiles, GraphCache, edges_key, member_key
from services.graph.repository import PostgresGraphRepository, PostgresProfiles
from services.graph.service import Edges, GraphService, Profile


@pytest.fixture
def parts(db, client):
    cache = GraphCache(client)
    repo = CachedGraphRepository(PostgresGraphRepository(db), cache)
    profiles = CachedProfiles(PostgresProfiles(db), cache)
    return SimpleNamespace(cache=cache, repo=repo, profiles=profiles, service=GraphService(repo, profiles))


async def members(parts, client, ids, n: int) -> list[int]:
    """n new public members, their tombstones gone (as TOMBSTONE_TTL_S after the write would see them)."""
    users = [ids.new_id_in_random_shard() for _ in range(n)]
    for user in users:
        await parts.profiles.put(user, False)
    await client.delete(*(member_key(u) for u in users))
    return users


def seen(relationship) -> tuple[bool, bool, bool, bool, bool]:
    r = relationship
    return r.following, r.requested, r.blocked, r.muted, r.can_view


async def test_reads_after_every_kind_of_write_are_postgresqls_then_kept(parts, ids, client):
    service = parts.service
    viewer, owner = await members(parts, client, ids, 2)
    keys = edges_key(viewer), member_key(owner)
    [first] = await service.relationships(viewer, [owner])
    assert seen(first) == (False, False, False, False, True)
    assert await client.type(keys[0]) == b"hash" and await client.get(keys[1]) == b"0"  # both kept now

    steps = [
        (service.follow(viewer, owner), (True, False, False, False, True)),
        (service.mute(viewer, owner), (True, False, False, True, True)),
        (service.unmute(viewer, owner), (True, False, False, False, True)),
        (service.unfollow(viewer, owner), (False, False, False, False, True)),
        (service.set_account_privacy(owner, True), (False, False, False, False, False)),
        (service.follow(viewer, owner), (False, True, False, False, False)),  # a request now
        (service.approve(owner, viewer), (True, False, False, False, True)),
        (service.block(owner, viewer), (False, False, True, False, False)),  # the owner blocks the viewer
        (service.unblock(owner, viewer), (False, False, False, False, False)),
    ]
    for write, expected in steps:
        await write  # over what the cache held before it
        [during] = await service.relationships(viewer, [owner])  # under the write's tombstones
        await client.delete(*keys)  # the tombstones gone
        [filling] = await service.relationships(viewer, [owner])
        [warm] = await service.relationships(viewer, [owner])
        assert (seen(during), seen(filling), seen(warm)) == (expected, expected, expected)
        assert await client.type(keys[0]) == b"hash"


async def test_a_fill_that_read_postgresql_before_a_write_is_dropped(parts, ids, client, db):
    cache, repo, profiles = parts.cache, parts.repo, parts.profiles
    viewer, owner = await members(parts, client, ids, 2)
    looked_at = time.monotonic()
    assert await cache.edges(viewer, [owner]) == (None, True)  # a miss the reader may fill ...
    before = await PostgresGraphRepository(db).all_edges(viewer, 100)  # ... after reading PostgreSQL
    await repo.follow(viewer, owner)  # a write lands meanwhile
    await cache.fill_edges(viewer, before, looked_at)
    assert await client.get(edges_key(viewer)) == TOMBSTONE.encode()
    assert (await repo.edges(viewer, [owner])).following == {owner}

    looked_at = time.monotonic()
    assert await cache.members([owner]) == ({}, [owner])
    await profiles.put(owner, True)
    await cache.fill_members([Profile(owner, False)], looked_at)
    assert await client.get(member_key(owner)) == TOMBSTONE.encode()
    assert (await profiles.get([owner]))[owner].is_private


async def test_a_fill_made_during_a_write_that_outlived_its_tombstone_is_dropped_after_it(parts, ids, client):
    repo = parts.repo
    viewer, owner = await members(parts, client, ids, 2)
    write = repo.inner.follow

    async def slow_write(*args, **kwargs):
        await client.delete(edges_key(viewer))  # the first tombstone ran out
        assert (await repo.edges(viewer, [owner])).following == set()  # filled with the state before
        assert await client.type(edges_key(viewer)) == b"hash"
        return await write(*args, **kwargs)

    repo.inner.follow = slow_write
    await repo.follow(viewer, owner)
    assert await client.get(edges_key(viewer)) == TOMBSTONE.encode()
    assert (await repo.edges(viewer, [owner])).following == {owner}


async def test_a_write_whose_second_tombstone_is_lost_leaves_the_first(parts, ids, client, monkeypatch):
    cache, service = parts.cache, parts.service
    viewer, owner = await members(parts, client, ids, 2)
    assert seen((await service.relationships(viewer, [owner]))[0]) == (False, False, False, False, True)  # kept
    drop, block, committed = cache.drop, parts.repo.inner.block, []

    async def committing(*args):
        await block(*args)
        committed.append(True)

    async def lost_after_the_commit(keys):
        if committed:
            raise RedisConnectionError("gone")
        await drop(keys)

    parts.repo.inner.block = committing
    monkeypatch.setattr(cache, "drop", lost_after_the_commit)
    await service.block(viewer, owner)  # committed; the second tombstone lost (logged)
    assert await client.get(edges_key(viewer)) == TOMBSTONE.encode()
    assert seen((await service.relationships(viewer, [owner]))[0]) == (False, False, True, False, False)


async def test_a_fill_later_than_fill_within_s_after_its_look_is_skipped(parts, ids, client, db):
    cache = parts.cache
    viewer, owner = await members(parts, client, ids, 2)
    edges = await PostgresGraphRepository(db).all_edges(viewer, 100)
    await cache.fill_edges(viewer, edges, time.monotonic() - graph_cache.FILL_WITHIN_S - 1)
    await cache.fill_members([Profile(owner, False)], time.monotonic() - graph_cache.FILL_WITHIN_S - 1)
    assert await client.exists(edges_key(viewer), member_key(owner)) == 0


async def test_a_viewer_with_more_edges_than_kept_is_read_from_postgresql(parts, ids, client, monkeypatch):
    repo = parts.repo
    monkeypatch.setattr(graph_cache, "MAX_CACHED_EDGES", 2)
    viewer, *owners = await members(parts, client, ids, 4)
    for owner in owners:
        await repo.follow(viewer, owner)
    await client.delete(edges_key(viewer))
    assert (await repo.edges(viewer, owners[:2])).following == set(owners[:2])
    assert not await client.exists(edges_key(viewer))


async def test_without_redis_reads_answer_and_writes_fail_before_changing_anything(db, ids, client):
    def service(redis: aioredis.Redis) -> GraphService:
        return GraphService(CachedGraphRepository(PostgresGraphRepository(db), GraphCache(redis)),
                            CachedProfiles(PostgresProfiles(db), GraphCache(redis)))

    viewer, owner = ids.new_id_in_random_shard(), ids.new_id_in_random_shard()
    for user in (viewer, owner):
        await service(client).set_account_privacy(user, False)
    await service(client).follow(viewer, owner)

    gone = aioredis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    [relation] = await service(gone).relationships(viewer, [owner])
    assert relation.following and relation.can_view
    with pytest.raises(RedisConnectionError):
        await service(gone).unfollow(viewer, owner)
    assert (await PostgresGraphRepository(db).edges(viewer, [owner])).following == {owner}
    await gone.aclose()


async def test_no_owners_asked_is_no_call(parts, ids, client):
    [viewer] = await members(parts, client, ids, 1)
    assert await parts.repo.edges(viewer, []) == Edges(set(), set(), set(), set())
    assert await parts.service.relationships(viewer, []) == []
