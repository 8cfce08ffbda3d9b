"""Sharded Redis counters, the flusher and reconciliation against the stack's real Redis and PostgreSQL.

Each test has its own key prefix (and so its own dirty set and lock), so the
stack's running flusher never takes its posts.
"""

from __future__ import annotations

import uuid

import psycopg
import pytest

from services.common.db import Database, shard_schema
from services.common.ids import shard_of
from services.engagement.counters import RedisCounters
from services.engagement.flusher import Flusher, by_shard
from services.engagement.keys import CounterKeys
from services.engagement.reconcile import reconcile
from services.engagement.repository import PostgresCountStore, PostgresEngagementRepository
from services.engagement.service import COMMENTS, LIKES, Counts

# The posts' author, as the events name them (no such user needs to exist here).
AUTHOR = 1 << 23 | 7


@pytest.fixture(params=[None, 4], ids=["partitions-as-deployed", "four-partitions"])
def counters(client, db, request):
    """Counters under a prefix of their own: partitioned as the stack's Redis needs (one on one Redis,
    PARTITIONS_ON_CLUSTER on a Redis Cluster), or in four."""
    return RedisCounters(client, PostgresCountStore(db).counts, CounterKeys(f"test-{uuid.uuid4().hex[:8]}"),
                         partitions=request.param)


@pytest.fixture
def flusher(counters, db, settings):
    return Flusher(counters, PostgresCountStore(db), logical_shards=settings.logical_shards)


async def current(counters: RedisCounters, db: Database, post_id: int) -> Counts:
    """What a reader sees: PostgreSQL first, then Redis."""
    return (await counters.current([post_id], await PostgresCountStore(db).counts([post_id])))[post_id]


async def durable(db: Database, post_id: int) -> Counts:
    return (await PostgresEngagementRepository(db).counts([post_id]))[0][post_id]


async def test_deltas_spread_over_shards_and_count_before_any_flush(counters, client, db, ids):
    post = ids.new_id(1)
    for _ in range(40):
        await counters.add(post, LIKES, +1)
    await counters.add(post, COMMENTS, +2)
    used = [await client.get(counters.keys_of(post).shard(LIKES, post, n)) for n in range(counters.shards)]
    assert sum(v is not None for v in used) > 1
    assert await current(counters, db, post) == Counts(40, 2)
    assert await client.sismember(counters.keys_of(post).dirty, post)


async def test_a_post_whose_count_is_unknown_to_redis_starts_from_postgresql(counters, client, db, ids):
    post = ids.new_id(1)
    async with db.for_shard(shard_of(post)).connection() as conn:
        await conn.execute(f"INSERT INTO {shard_schema(shard_of(post))}.post_counts (post_id, like_count, "
                           "comment_count) VALUES (%s, 10, 4)", (post,))
    await counters.add(post, LIKES, +1)
    assert await client.hgetall(counters.counts_key(post)) == {b"likes": b"10", b"comments": b"4"}
    assert await current(counters, db, post) == Counts(11, 4)


async def test_a_read_of_a_count_unknown_to_redis_fills_it_so_the_next_read_is_redis_alone(counters, client, db,
                                                                                          ids):
    post = ids.new_id(1)
    async with db.for_shard(shard_of(post)).connection() as conn:
        await conn.execute(f"INSERT INTO {shard_schema(shard_of(post))}.post_counts (post_id, like_count, "
                           "comment_count) VALUES (%s, 3, 2)", (post,))
    assert (await counters.current([post]))[post] == Counts(3, 2)
    assert await client.hgetall(counters.counts_key(post)) == {b"likes": b"3", b"comments": b"2"}
    assert await client.ttl(counters.counts_key(post)) > 0


async def test_a_read_never_fills_the_count_of_a_post_with_pending_deltas(counters, client, db, ids):
    post = ids.new_id(1)
    await counters.add(post, LIKES, +1)
    await client.delete(counters.counts_key(post))  # evicted while its delta waits for the flusher
    assert (await counters.current([post]))[post] == Counts(1, 0)
    assert not await client.exists(counters.counts_key(post))


async def test_counts_read_exactly_while_a_flush_is_in_flight(counters, flusher, db, ids):
    post = ids.new_id(1)
    await counters.add(post, LIKES, +1)
    await flusher.flush_once()
    await counters.add(post, LIKES, +1)
    drained = await counters.drain(100)
    assert await current(counters, db, post) == Counts(2, 0)  # drained, not committed
    for shard, parts in by_shard(drained).items():
        await flusher.store.apply(shard, parts)
    assert await current(counters, db, post) == Counts(2, 0)  # committed, not finished
    await flusher.flush_once()
    assert await current(counters, db, post) == Counts(2, 0)



async def test_one_read_counts_settled_pending_and_in_flight_posts_exactly(counters, flusher, db, ids):
    """One read of posts in every state: settled (their read model alone), with deltas pending,
    drained into a flush not finished yet, and both at once."""
    settled, pending, in_flight, both = (ids.new_id(1) for _ in range(4))
    for post in (settled, in_flight, both):
        await counters.add(post, LIKES, +1)
    await flusher.flush_once()
    for post in (in_flight, both):
        await counters.add(post, COMMENTS, +2)
    await counters.drain(100)
    await counters.add(both, LIKES, +1)
    await counters.add(pending, LIKES, +3)
    posts = [settled, pending, in_flight, both]
    assert await counters.current(posts, await PostgresCountStore(db).counts(posts)) == {
        settled: Counts(1, 0), pending: Counts(3, 0), in_flight: Counts(1, 2), both: Counts(2, 2)}



async def test_a_cached_read_is_redis_alone_and_nothing_when_redis_lacks_a_count(counters, flusher, ids):
    known, unknown = ids.new_id(1), ids.new_id(1)
    await counters.add(known, LIKES, +1)
    await flusher.flush_once()
    await counters.add(known, COMMENTS, +1)
    assert await counters.cached([known]) == {known: Counts(1, 1)}
    assert await counters.cached([known, unknown]) is None

async def test_a_read_skips_the_shards_of_a_post_not_marked_dirty(counters, flusher, client, ids):
    """Only ADD writes a shard, and it marks the post dirty in the same script; DRAIN, SETTLE and
    FORGET take both away together. So a read takes a post that is not dirty from its read model
    alone: a shard value no writer could have left there is not counted."""
    post = ids.new_id(1)
    await counters.add(post, LIKES, +1)
    await flusher.flush_once()
    await client.set(counters.keys_of(post).shard(LIKES, post, 0), 5)
    assert (await counters.current([post]))[post] == Counts(1, 0)

async def test_a_flush_writes_the_totals_and_empties_redis(flusher, counters, client, db, ids):
    post = ids.new_id(2)
    for delta in (+1, +1, +1, -1):
        await counters.add(post, LIKES, delta)
    assert await flusher.flush_once() == 1
    assert await durable(db, post) == Counts(2, 0)
    assert [await client.get(counters.keys_of(post).shard(LIKES, post, n)) for n in range(counters.shards)] == [None] * 8
    assert not await client.smembers(counters.keys_of(post).flushing)


async def test_a_flush_adds_to_what_was_flushed_before(flusher, counters, db, ids):
    post = ids.new_id(2)
    await counters.add(post, COMMENTS, +3)
    await flusher.flush_once()
    await counters.add(post, COMMENTS, -1)
    await flusher.flush_once()
    assert await durable(db, post) == Counts(0, 2)


async def test_a_flush_writes_the_rankers_counts_hash(flusher, counters, client, ids):
    post = ids.new_id(3)
    await counters.add(post, LIKES, +5)
    await counters.add(post, COMMENTS, +2)
    await flusher.flush_once()
    assert await client.hgetall(counters.counts_key(post)) == {b"likes": b"5", b"comments": b"2"}


async def test_a_flusher_that_dies_after_draining_loses_nothing(flusher, counters, db, ids):
    post = ids.new_id(4)
    await counters.add(post, LIKES, +7)
    assert await counters.drain(100)  # ...and the process dies here
    assert await durable(db, post) == Counts()
    await flusher.flush_once()
    assert await durable(db, post) == Counts(7, 0)


async def test_a_flusher_that_dies_after_committing_adds_nothing_twice(flusher, counters, db, ids):
    post = ids.new_id(5)
    await counters.add(post, LIKES, +3)
    drained = await counters.drain(100)
    for shard, parts in by_shard(drained).items():
        await flusher.store.apply(shard, parts)  # committed; the process dies before forgetting the flush
    await flusher.flush_once()
    assert await durable(db, post) == Counts(3, 0)


async def test_a_flush_batch_is_bounded_and_the_rest_waits(flusher, counters, db, ids):
    flusher.batch_posts = 2
    posts = [ids.new_id(6) for _ in range(3)]
    for post in posts:
        await counters.add(post, LIKES, +1)
    assert [await flusher.flush_once(), await flusher.flush_once(), await flusher.flush_once()] == [2, 1, 0]
    assert [await durable(db, p) for p in posts] == [Counts(1, 0)] * 3


async def test_int64_extremes_are_flushed_exactly(flusher, counters, db, ids):
    post = ids.new_id(7)
    await counters.add(post, LIKES, 2**62)
    await counters.add(post, LIKES, 2**62 - 1)
    await flusher.flush_once()
    assert (await durable(db, post)).likes == 2**63 - 1


async def test_a_flush_that_would_leave_int64_is_set_aside_and_blocks_nothing(flusher, counters, client, db, ids):
    huge, fine = ids.new_id(7), ids.new_id(7)
    await counters.add(huge, LIKES, 2**63 - 1)
    await flusher.flush_once()
    await counters.add(huge, LIKES, +1)  # the durable count is at int64's maximum already
    with pytest.raises(psycopg.errors.NumericValueOutOfRange):
        await flusher.flush_once()
    await counters.add(fine, LIKES, +1)
    await flusher.flush_once()
    assert await durable(db, fine) == Counts(1, 0)
    assert len(await client.smembers(counters.keys_of(huge).dead)) == 1


async def test_reconciliation_repairs_corrupted_counts_from_the_rows(counters, flusher, db, client, ids, settings):
    repo = PostgresEngagementRepository(db)
    post = ids.new_id(1)
    for _ in range(3):
        await repo.like(post, ids.new_id_in_random_shard(), AUTHOR)
    async with db.for_shard(shard_of(post)).connection() as conn:
        await conn.execute(f"INSERT INTO {shard_schema(shard_of(post))}.post_counts (post_id, like_count, "
                           "comment_count) VALUES (%s, 99, 5)", (post,))
    report = await reconcile(counters, flusher.store, settings.logical_shards, [post])
    assert report.repaired == (post,)
    assert await durable(db, post) == Counts(3, 0)
    assert await client.hgetall(counters.counts_key(post)) == {b"likes": b"3", b"comments": b"0"}


async def test_reconciliation_drops_pending_deltas_the_rows_already_count(counters, flusher, db, ids, settings):
    repo = PostgresEngagementRepository(db)
    post = ids.new_id(2)
    await repo.like(post, ids.new_id(0), AUTHOR)
    await counters.add(post, LIKES, +1)  # the same like's delta, not flushed yet
    await reconcile(counters, flusher.store, settings.logical_shards, [post])
    await flusher.flush_once()
    assert await durable(db, post) == Counts(1, 0)


async def test_reconciliation_finishes_an_interrupted_flush_before_recounting(counters, flusher, db, ids, settings):
    repo = PostgresEngagementRepository(db)
    post = ids.new_id(3)
    await repo.like(post, ids.new_id(0), AUTHOR)
    await counters.add(post, LIKES, +1)
    await counters.drain(100)  # the flusher dies holding the like's delta
    await reconcile(counters, flusher.store, settings.logical_shards, [post])
    await flusher.flush_once()
    assert await durable(db, post) == Counts(1, 0)


async def test_reconciliation_of_every_post_finds_a_drifted_one(client, db, ids, settings):
    # Every post of the stack: so with the stack's own keys and lock, which keep its flusher out meanwhile.
    store = PostgresCountStore(db)
    post = ids.new_id(4)
    # A like whose delta Redis lost: a row and nothing else (no event either, so no recheck comes for it).
    async with db.for_shard(shard_of(post)).connection() as conn:
        await conn.execute(f"INSERT INTO {shard_schema(shard_of(post))}.likes (post_id, user_id) VALUES (%s, %s)",
                           (post, ids.new_id(0)))
    report = await reconcile(RedisCounters(client, store.counts), store, settings.logical_shards)
    assert post in report.repaired and await durable(db, post) == Counts(1, 0)


async def test_a_later_event_moves_a_pending_recheck_later_and_a_due_one_is_taken_once(counters, ids):
    post = ids.new_id(5)
    await counters.recheck_at(post, 100.0)
    await counters.recheck_at(post, 102.0)  # another like, later
    await counters.recheck_at(post, 101.0)  # an older event delivered late
    assert await counters.take_due(101.5, 10) == []
    assert await counters.take_due(102.0, 10) == [post]
    assert await counters.take_due(200.0, 10) == []
