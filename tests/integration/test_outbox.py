"""The transactional outbox and its relay, against the stack's real PostgreSQL and Redis.

The stack runs its own relay; these tests hold its advisory lock on the shard
they use, so that only the test's relay (another lock class) drains it.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from services.accounts.counts import ProfileCounts
from services.accounts.repository import PostgresCountStore
from services.common import outbox
from services.common.config import with_placements
from services.common.db import apply_migrations, ensure_database, load_migrations, shard_schema
from services.common.events import EventPublisher, decode, stream

SHARD = 5
TEST_LOCK = outbox.LOCK_CLASS + 1

# What post events carry for search's index, empty here (fields 4-8 of PostRef).
NO_INDEX_FIELDS = {"caption": "", "hashtags": [], "location_name": "", "location_lat": 0.0, "location_lng": 0.0}


@asynccontextmanager
async def stack_relay_kept_out(db):
    """Hold the stack relay's lock on SHARD, so it leaves that shard's outbox to the test."""
    async with db.for_shard(SHARD).connection() as conn:
        await conn.execute("SELECT pg_advisory_lock(%s, %s)", (outbox.LOCK_CLASS, SHARD))
        try:
            yield
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s, %s)", (outbox.LOCK_CLASS, SHARD))


async def outbox_rows(db) -> int:
    async with db.for_shard(SHARD).connection() as conn:
        return (await (await conn.execute(f"SELECT count(*) FROM {shard_schema(SHARD)}.outbox")).fetchone())[0]


async def stream_events(client, topic: str, after: bytes | str = "-") -> list:
    return [decode(topic, message_id, fields) for message_id, fields in await client.xrange(stream(topic), after)]


async def last_id(client, topic: str) -> bytes | str:
    newest = await client.xrevrange(stream(topic), count=1)
    return newest[0][0] if newest else "0-0"


def after(message_id: bytes | str) -> str:
    return "(" + (message_id.decode() if isinstance(message_id, bytes) else message_id)


class DiesAfterPublishing(outbox.Relay):
    """A relay that dies once its XADDs went out, before it deletes the rows and commits."""

    async def publish(self, rows):
        await super().publish(rows)
        raise ConnectionError("relay killed between the stream and the delete")


async def test_an_event_rolled_back_with_its_change_is_never_relayed(db):
    async with stack_relay_kept_out(db):
        before = await outbox_rows(db)
        with pytest.raises(RuntimeError):
            async with db.transaction(SHARD) as (conn,):
                await outbox.write(conn, SHARD, "posts", "post.created", post_id=1, author_id=2)
                raise RuntimeError("the change failed")
        assert await outbox_rows(db) == before


async def test_writing_outside_a_transaction_is_refused(db):
    async with db.for_shard(SHARD).connection() as conn:
        with pytest.raises(RuntimeError, match="transaction"):
            await outbox.write(conn, SHARD, "posts", "post.created", post_id=1, author_id=2)


async def test_the_relay_moves_a_shards_events_to_their_streams_in_order_and_deletes_them(db, client):
    relay = outbox.Relay(db, EventPublisher(client), lock_class=TEST_LOCK)
    async with stack_relay_kept_out(db):
        start = await last_id(client, "posts")
        async with db.transaction(SHARD) as (conn,):
            written = [await outbox.write(conn, SHARD, "posts", type, post_id=10, author_id=2)
                       for type in ("post.created", "post.updated", "post.deleted")]
        assert await relay.drain(SHARD) >= 3
        assert await outbox_rows(db) == 0
    events = [e for e in await stream_events(client, "posts", after(start)) if e.id in written]
    assert [(e.id, e.type, e.data) for e in events] == [
        (written[0], "post.created", {"post_id": 10, "author_id": 2, "mentions": [], **NO_INDEX_FIELDS}),
        (written[1], "post.updated", {"post_id": 10, "author_id": 2, "mentions": [], **NO_INDEX_FIELDS}),
        (written[2], "post.deleted", {"post_id": 10, "author_id": 2, "mentions": [], **NO_INDEX_FIELDS})]


async def test_a_waker_notifies_the_relays_channel_of_each_shard_named(db):
    """What wakes the relay for events written with wake=False (a relay drains the shard a
    notification names: test_the_relay_... above)."""
    url = db.settings.database_for_shard(SHARD)
    other = next(s for s in range(db.logical_shards) if s != SHARD and db.settings.database_for_shard(s) == url)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as listener:
        await listener.execute(f"LISTEN {outbox.CHANNEL}")
        waker = outbox.Waker(db)
        for shard in (SHARD, other, SHARD):
            waker.wake(shard)
        heard: list[str] = []
        async for n in listener.notifies(timeout=10):
            heard.append(n.payload)
            if {shard_schema(SHARD), shard_schema(other)} <= set(heard):
                break
    assert {shard_schema(SHARD), shard_schema(other)} <= set(heard)


async def test_a_relay_that_dies_after_publishing_leaves_the_rows_for_the_next_which_sends_the_same_ids(db, client):
    publisher = EventPublisher(client)
    async with stack_relay_kept_out(db):
        start = await last_id(client, "graph")
        async with db.transaction(SHARD) as (conn,):
            event_id = await outbox.write(conn, SHARD, "graph", "mute", user_id=3, target_id=4)
        with pytest.raises(ConnectionError):
            await DiesAfterPublishing(db, publisher, lock_class=TEST_LOCK).drain(SHARD)
        assert await outbox_rows(db) >= 1
        await outbox.Relay(db, publisher, lock_class=TEST_LOCK).drain(SHARD)
        assert await outbox_rows(db) == 0
    delivered = [e for e in await stream_events(client, "graph", after(start)) if e.id == event_id]
    assert len(delivered) == 2 and delivered[0].data == delivered[1].data == {"user_id": 3, "target_id": 4}


async def test_a_follow_delivered_twice_is_counted_once(db, ids, client):
    follower, target = ids.new_id(SHARD), ids.new_id(SHARD)
    async with db.transaction(SHARD) as (conn,):
        for user in (follower, target):
            await conn.execute(
                f"INSERT INTO {shard_schema(SHARD)}.users (id, username, email, password_hash) VALUES (%s, %s, %s, '')",
                (user, f"u{user}", f"u{user}@example.com"))
    counts = ProfileCounts(PostgresCountStore(db))
    await EventPublisher(client).publish("test-counts", "follow", follower_id=follower, target_id=target)
    message_id, fields = (await client.xrevrange(stream("test-counts"), count=1))[0]
    twice = decode("test-counts", message_id, fields)
    for _ in range(2):
        await counts.handle(twice)
    async with db.for_shard(SHARD).connection() as conn:
        rows = await (await conn.execute(
            f"SELECT id, follower_count, following_count FROM {shard_schema(SHARD)}.users WHERE id = ANY(%s)",
            ([follower, target],))).fetchall()
    assert sorted(rows) == sorted([(follower, 0, 1), (target, 1, 0)])


async def test_two_relays_draining_one_shard_at_once_send_each_event_once_in_order(db, client):
    import asyncio

    publisher = EventPublisher(client)
    relays = [outbox.Relay(db, publisher, lock_class=TEST_LOCK, batch=7) for _ in range(2)]
    async with stack_relay_kept_out(db):
        start = await last_id(client, "posts")
        async with db.transaction(SHARD) as (conn,):
            written = [await outbox.write(conn, SHARD, "posts", "post.updated", post_id=n, author_id=2)
                       for n in range(1, 51)]
        await asyncio.gather(*(relay.drain(SHARD) for relay in relays for _ in range(3)))
        await relays[0].drain(SHARD)  # whatever a skipped turn left
        assert await outbox_rows(db) == 0
    sent = [e.id for e in await stream_events(client, "posts", after(start)) if e.id in set(written)]
    assert sent == written


async def test_a_relay_follows_a_shard_moved_to_another_database(db, client):
    """After a move (services.mesh.shards) the relay listens to and drains the shard's new home."""
    home = urlunsplit(urlsplit(db.settings.database_for_shard(SHARD))._replace(path="/pictor_relay_moved"))
    ensure_database(home)
    with psycopg.connect(home, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {shard_schema(SHARD)} CASCADE")
        apply_migrations(conn, shard_schema(SHARD), load_migrations("shard"))
    relay = outbox.Relay(db, EventPublisher(client), poll_interval_s=0.1, lock_class=TEST_LOCK)
    stop = asyncio.Event()
    running = asyncio.create_task(relay.run(stop))
    try:
        await asyncio.sleep(0.3)  # serving the map as it was
        # What a move's row in shard_placements does to this process's map (the stack's stays as it is).
        db.configured_map = with_placements(db.configured_map, {SHARD: home})
        assert await db.reload_placements()
        start = await last_id(client, "posts")
        async with db.transaction(SHARD) as (conn,):
            written = await outbox.write(conn, SHARD, "posts", "post.created", post_id=11, author_id=3)
        deadline = time.monotonic() + 10
        while written not in [e.id for e in await stream_events(client, "posts", after(start))]:
            assert time.monotonic() < deadline, "the event in the shard's new home was never relayed"
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await running
