"""The feed's reads in the stack's real Redis: a warm read writes nothing but an hourly expiry push."""

from __future__ import annotations

from services.feed.keys import feed_key
from services.feed.store import TOUCH_EVERY_S, FeedStore

TTL_S = 7 * 86_400


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_reads_push_a_feeds_expiry_back_once_an_hour(client, ids):
    clock, user = Clock(), ids.new_id(1)
    store = FeedStore(client, clock)
    await store.build(user, [(ids.new_id(2), ids.new_id(3))], [], set(), set(), TTL_S)
    await client.expire(feed_key(user), 100)
    await store.candidates(user, None, 10, TTL_S)
    assert await client.ttl(feed_key(user)) > TTL_S - 60  # the first read pushes it back
    await client.expire(feed_key(user), 100)
    await store.candidates(user, None, 10, TTL_S)
    assert await client.ttl(feed_key(user)) <= 100  # within the hour: a read alone
    clock.now += TOUCH_EVERY_S
    await store.candidates(user, None, 10, TTL_S)
    assert await client.ttl(feed_key(user)) > TTL_S - 60


async def test_a_read_reports_a_missing_feed_and_missing_timelines(client, ids):
    user = ids.new_id(1)
    found = await FeedStore(client).candidates(user, None, 10, TTL_S)
    assert found.feed_missing and found.missing_timelines == [user]
