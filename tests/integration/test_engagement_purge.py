"""Forgetting a deleted post's engagement (PostPurger) against the stack's real PostgreSQL and Redis.

The counters have their own key prefix, so the stack's running flusher never
takes these posts.
"""

from __future__ import annotations

import uuid

import pytest

from services.common.db import Database, shard_schema
from services.common.errors import InvalidArgument
from services.common.ids import IdAllocator, shard_of
from services.engagement.counters import RedisCounters
from services.engagement.flusher import Flusher
from services.engagement.keys import PURGED_COUNTS_TTL_S, CounterKeys
from services.engagement.purge import PostPurger, Purged
from services.engagement.repository import PostgresCountStore, PostgresEngagementRepository
from services.engagement.service import COMMENTS, LIKES, Comment, Counts
from services.engagement.viewer_state import ViewerStates

# The posts' author, as the events name them (no such user needs to exist here).
AUTHOR = 1 << 23 | 7


@pytest.fixture(params=[None, 4], ids=["partitions-as-deployed", "four-partitions"])
def counters(client, db, request):
    """Counters under a prefix of their own: partitioned as the stack's Redis needs (one on one Redis,
    PARTITIONS_ON_CLUSTER on a Redis Cluster), or in four."""
    return RedisCounters(client, PostgresCountStore(db).counts, CounterKeys(f"test-{uuid.uuid4().hex[:8]}"),
                         partitions=request.param)


@pytest.fixture
def repo(db):
    return PostgresEngagementRepository(db)


@pytest.fixture
def purger(repo, counters, db, client):
    return PostPurger(repo, counters, PostgresCountStore(db), ViewerStates(client))


async def engage(repo: PostgresEngagementRepository, counters: RedisCounters, ids: IdAllocator, post: int,
                 users: list[int]) -> None:
    """Every user likes, saves and comments on the post; the first comment gets a reply."""
    parent = 0
    for user in users:
        await repo.like(post, user, AUTHOR)
        await counters.add(post, LIKES, +1)
        await repo.save(user, post)
        added = await repo.add_comment(Comment(id=ids.new_id(shard_of(post)), post_id=post, author_id=user,
                                               text="nice", parent_id=parent), AUTHOR)
        await counters.add(post, COMMENTS, +1)
        parent = parent or added.id


async def rows(db: Database, post: int) -> dict[str, int]:
    """How many rows of each table still name the post (saves: in every shard)."""
    s = shard_schema(shard_of(post))
    found = {}
    async with db.for_shard(shard_of(post)).connection() as conn:
        for table in ("likes", "comments", "post_counts"):
            found[table] = (await (await conn.execute(
                f"SELECT count(*) FROM {s}.{table} WHERE post_id = %s", (post,))).fetchone())[0]
    found["saves"] = len(await db.every_shard("SELECT user_id FROM {schema}.saves WHERE post_id = %s", (post,)))
    return found


async def test_a_purge_removes_every_row_and_counter_of_the_post_and_only_of_it(purger, repo, counters, client,
                                                                                 db, ids, settings):
    post, other = ids.new_id(2), ids.new_id(2)
    # Savers in several shards: their saves live in their own shards.
    users = [ids.new_id(s % settings.logical_shards) for s in range(5)]
    await engage(repo, counters, ids, post, users)
    await engage(repo, counters, ids, other, users[:2])
    await Flusher(counters, PostgresCountStore(db), logical_shards=settings.logical_shards).flush_once()
    await counters.add(post, LIKES, +1)  # a delta not flushed yet
    assert (await rows(db, post))["saves"] == 5

    assert await purger.purge(post) == Purged(likes=5, comments=5, saves=5)

    assert await rows(db, post) == {"likes": 0, "comments": 0, "post_counts": 0, "saves": 0}
    assert await client.hgetall(counters.counts_key(post)) == {b"likes": b"0", b"comments": b"0"}
    assert 0 < await client.ttl(counters.counts_key(post)) <= PURGED_COUNTS_TTL_S
    assert not await client.sismember(counters.keys_of(post).dirty, post)
    assert await client.exists(*(counters.keys_of(post).shard(kind, post, n)
                                 for kind in (LIKES, COMMENTS) for n in range(counters.shards))) == 0
    assert await rows(db, other) == {"likes": 2, "comments": 2, "post_counts": 1, "saves": 2}
    assert (await counters.current([other]))[other] == Counts(2, 2)


async def test_a_read_that_asked_postgresql_before_the_purge_does_not_fill_the_old_count_back(
        purger, repo, counters, client, db, ids, settings):
    """A read finds no pc: (expired, say) and reads post_counts; the purge runs; then the read fills pc:
    from what it read. The count must stay 0 (the stack's readers do this while posts' cleanup purges)."""
    post = ids.new_id(5)
    await engage(repo, counters, ids, post, [ids.new_id(0), ids.new_id(1)])
    await Flusher(counters, PostgresCountStore(db), logical_shards=settings.logical_shards).flush_once()
    await client.delete(counters.counts_key(post))

    async def read_then_purge(post_ids: list[int]) -> dict[int, Counts]:
        found = await PostgresCountStore(db).counts(post_ids)
        await purger.purge(post)
        return found

    reader = RedisCounters(client, read_then_purge, counters.keys, partitions=len(counters.partitions))
    assert (await reader.current([post]))[post] == Counts(2, 2)  # what it read, before the purge
    assert (await counters.current([post]))[post] == Counts(0, 0)


async def test_a_purge_again_removes_nothing_and_succeeds(purger, repo, counters, ids):
    post = ids.new_id(3)
    await engage(repo, counters, ids, post, [ids.new_id(0)])
    await purger.purge(post)
    assert await purger.purge(post) == Purged()


async def test_a_purge_takes_the_post_out_of_a_flush_its_flusher_left_unfinished(purger, repo, counters, client,
                                                                                 db, ids, settings):
    post, other = ids.new_id(4), ids.new_id(4)
    await engage(repo, counters, ids, post, [ids.new_id(1)])
    await engage(repo, counters, ids, other, [ids.new_id(1)])
    assert await counters.drain(100)  # ...and that flusher dies here

    await purger.purge(post)
    await Flusher(counters, PostgresCountStore(db), logical_shards=settings.logical_shards).flush_once()

    assert (await rows(db, post))["post_counts"] == 0  # the recovered flush did not write it back
    assert (await PostgresCountStore(db).counts([other]))[other] == Counts(1, 1)


async def test_a_purge_refuses_what_is_no_post_id(purger):
    with pytest.raises(InvalidArgument):
        await purger.purge(-5)


async def test_purge_forgets_every_likers_and_savers_cached_answers(purger, repo, counters, client, ids):
    post, users = ids.new_id(1), [ids.new_id(2), ids.new_id(5)]
    await engage(repo, counters, ids, post, users)
    states = ViewerStates(client)
    for user in users:
        await states.fill(user, {post: True}, {post: True})
    await purger.purge(post)
    for user in users:
        assert await states.known(user, [post]) == ({}, {})
