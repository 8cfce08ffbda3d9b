"""The feed's reads in the stack's real Redis: a warm read writes nothing but an hourly expiry push."""

from __future__ import annotations

import asyncio

from services.common.timelines import SENTINEL_BYTES, Timelines
from services.feed import store as store_module
from services.feed.keys import CELEBRITIES, feed_key
from services.feed.store import TOUCH_EVERY_S, FeedStore
from services.posts.keys import timeline_key

TTL_S = 7 * 86_400


def parse(members: list[bytes]) -> list[tuple[int, int]]:
    """(post_id, author_id) of a list's members as Redis gave them, the sentinel dropped (the feed itself
    parses them in hotpath.merge.newest_members)."""
    return [(int(post), int(author)) for post, _, author in (m.partition(b":") for m in members if m != SENTINEL_BYTES)]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_reads_push_a_feeds_expiry_back_once_an_hour(client, ids):
    clock, user = Clock(), ids.new_id(1)
    store = FeedStore(client, clock)
    await store.build(user, [(ids.new_id(2), ids.new_id(3))], [], set(), TTL_S)
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


async def test_celebrities_among_names_the_marked_authors_in_batches(client, ids, monkeypatch):
    monkeypatch.setattr(store_module, "CELEBRITY_BATCH", 2)
    store = FeedStore(client)
    users = [ids.new_id(1) for _ in range(5)]
    for user in users[1::2]:
        await store.set_celebrity(user, True)
    await store.set_celebrity(users[4], False)  # never marked: nothing to take back
    assert await store.celebrities_among(users) == {users[1], users[3]}
    await store.set_celebrity(users[3], False)
    assert await store.celebrities_among(users) == {users[1]}
    assert await store.celebrities_among([]) == set()


async def test_one_script_reads_what_the_clusters_pipelines_read(client, ids):
    """On one Redis a page's candidates come from one script (CANDIDATES); on a Redis Cluster from
    pipelines per slot. Both give the same lists: pushed posts, the reader's own, each followed
    celebrity's newest at or below the page's bound, excluded authors, and the timelines Redis lacks."""
    user, friend, muted, star, lost_star, stranger = (ids.new_id(1) for _ in range(6))
    posts = []
    for _ in range(12):  # a millisecond apart: a bound is a score, and a score is the id's millisecond
        posts.append(ids.new_id(2))
        await asyncio.sleep(0.002)
    pushed = [(posts[0], friend), (posts[3], friend), (posts[6], muted)]
    own, starred = [(posts[1], user), (posts[9], user)], [(posts[2], star), (posts[7], star), (posts[10], star)]
    script, pipelined = FeedStore(client), FeedStore(client)
    pipelined.cluster = True  # the cluster's reads, which work on one Redis too
    await script.build(user, pushed, [friend, muted, star, lost_star], {muted}, TTL_S)
    for celebrity in (star, lost_star):
        await script.set_celebrity(celebrity, True)
    timelines = Timelines(client)
    await timelines.replace(timeline_key(user), own)
    await timelines.replace(timeline_key(star), starred)
    await timelines.replace(timeline_key(stranger), [(posts[11], stranger)])  # a celebrity not followed
    await client.sadd(CELEBRITIES, stranger)
    await client.delete(timeline_key(lost_star))

    for upper, count in ((None, 10), (posts[9], 10), (posts[7], 2)):
        found = await script.candidates(user, upper, count, TTL_S)
        assert found == await pipelined.candidates(user, upper, count, TTL_S)
        bound = upper or posts[-1]
        expected = [sorted((p for p in lst if p[0] <= bound), reverse=True)[:count] for lst in (pushed, own, starred)]
        lists = [sorted(parse(members), reverse=True) for members in found.members]  # a millisecond's ties unordered
        assert lists == expected + [[]]  # the lost celebrity's timeline: nothing until rebuilt
        assert (found.excluded_authors, found.feed_missing, found.missing_timelines) == ({muted}, False, [lost_star])
