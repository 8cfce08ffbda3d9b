"""The feed's ranking features, counted from engagement's events in the stack's real Redis."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest

from services.common.cluster import mget
from services.common.events import Event
from services.feed import features as features_module
from services.feed.features import AFFINITY_MAX, RankingFeatures, convert_hashes
from services.feed.keys import FEATURES_FORMAT_KEY, affinity_key, features_key
from services.feed.store import FeedStore


def event(type: str, **data: object) -> Event:
    return Event("engagement", type, data, f"{uuid.uuid4().int % 10**12}-0")


@pytest.fixture
def features(client) -> RankingFeatures:
    return RankingFeatures(client)


async def test_likes_and_comments_count_into_the_posts_features(features, client, ids):
    post, author, fan = ids.new_id(1), ids.new_id(2), ids.new_id(3)
    await features.handle(event("like", post_id=post, user_id=fan, author_id=author))
    await features.handle(event("comment", post_id=post, user_id=fan, author_id=author, comment_id=1))
    await features.handle(event("comment", post_id=post, user_id=author, author_id=author, comment_id=2))
    assert await client.get(features_key(post)) == b"1:2"


async def test_unlike_and_a_deleted_comment_with_its_replies_take_their_counts_back(features, client, ids):
    post, author, fan = ids.new_id(1), ids.new_id(2), ids.new_id(3)
    for n in range(3):
        await features.handle(event("comment", post_id=post, user_id=fan, author_id=author, comment_id=n))
    await features.handle(event("like", post_id=post, user_id=fan, author_id=author))
    await features.handle(event("unlike", post_id=post, user_id=fan, author_id=author))
    await features.handle(event("comment.deleted", post_id=post, comment_id=0, user_id=fan, author_id=author,
                                removed=2))
    assert await client.get(features_key(post)) == b"0:1"


async def test_a_redelivered_event_counts_once(features, client, ids):
    post, author, fan = ids.new_id(1), ids.new_id(2), ids.new_id(3)
    like = event("like", post_id=post, user_id=fan, author_id=author)
    assert await features.handle(like) is True
    assert await features.handle(like) is False
    assert await client.get(features_key(post)) == b"1:0"
    assert float(await client.hget(affinity_key(fan), author)) == pytest.approx(0.1)


async def test_affinity_rises_by_steps_stops_at_the_cap_and_never_for_my_own_posts(features, client, ids):
    post, author, fan = ids.new_id(1), ids.new_id(2), ids.new_id(3)
    for _ in range(15):
        await features.handle(event("like", post_id=post, user_id=fan, author_id=author))
    await features.handle(event("like", post_id=post, user_id=author, author_id=author))
    assert float(await client.hget(affinity_key(fan), author)) == AFFINITY_MAX
    assert not await client.exists(affinity_key(author))


async def test_fields_the_feed_does_not_know_are_ignored(features, client, ids):
    post, author, fan = ids.new_id(1), ids.new_id(2), ids.new_id(3)
    await features.handle(event("like", post_id=post, user_id=fan, author_id=author, schema_version=2, extra="x"))
    assert await client.get(features_key(post)) == b"1:0"


async def test_the_ranker_reads_the_features_and_sees_no_count_below_zero(features, client, ids):
    early, late, author, fan = ids.new_id(1), ids.new_id(1), ids.new_id(2), ids.new_id(3)
    await features.handle(event("unlike", post_id=early, user_id=fan, author_id=author))  # before its like
    await features.handle(event("like", post_id=late, user_id=fan, author_id=author))
    await features.handle(event("comment", post_id=late, user_id=fan, author_id=author, comment_id=1))
    affinity, likes, comments = await FeedStore(client).features(fan, [(early, author), (late, author)])
    assert likes == [0, 1] and comments == [0, 1] and affinity == [pytest.approx(0.2)] * 2


async def test_the_ranker_reads_each_posts_features_among_many_posts_and_authors(client, ids):
    """A ranked window's worth of posts many times over, by many authors each with several posts, mixed:
    each post gets its own counts and its author's affinity, in the order asked."""
    fan = ids.new_id(3)
    authors = [ids.new_id(2) for _ in range(700)]
    posts = [(ids.new_id(1), authors[(n * 7) % len(authors)]) for n in range(1_400)]
    liked = {author: f"{(n % 10) / 10:.6f}" for n, author in enumerate(authors) if n % 3}
    await client.hset(affinity_key(fan), mapping=liked)
    for n, (post, _) in enumerate(posts[::5]):
        await client.set(features_key(post), f"{n}:{n % 4}")
    counted = {post: (n, n % 4) for n, (post, _) in enumerate(posts[::5])}

    affinity, likes, comments = await FeedStore(client).features(fan, posts)

    assert affinity == [float(liked.get(author, 0)) for _, author in posts]
    assert likes == [counted.get(post, (0, 0))[0] for post, _ in posts]
    assert comments == [counted.get(post, (0, 0))[1] for post, _ in posts]


async def test_the_ranker_keeps_features_it_read_for_their_time_and_then_reads_them_again(client, ids):
    now = [0.0]
    kept, every_page = FeedStore(client, lambda: now[0], features_ttl_s=10), FeedStore(client, features_ttl_s=0)
    known, new, author, other_author, fan, other_fan = (ids.new_id(n) for n in (1, 1, 2, 2, 3, 3))
    await client.set(features_key(known), "1:1")
    await client.hset(affinity_key(fan), author, "0.300000")
    assert await kept.features(fan, [(known, author)]) == ([0.3], [1], [1])

    await client.set(features_key(known), "5:2")
    await client.set(features_key(new), "3:0")
    await client.hset(affinity_key(fan), mapping={author: "0.400000", other_author: "0.700000"})
    await client.hset(affinity_key(other_fan), author, "0.900000")
    now[0] = 9.9  # what was read 9.9 s ago is kept; the new post's counts and the other author's affinity read now
    assert await kept.features(fan, [(known, author), (new, other_author)]) == ([0.3, 0.7], [1, 3], [1, 0])
    assert await every_page.features(fan, [(known, author), (new, other_author)]) == ([0.4, 0.7], [5, 3], [2, 0])
    assert await kept.features(fan, [(new, other_author), (known, author)]) == ([0.7, 0.3], [3, 1], [0, 1])
    assert await kept.features(other_fan, [(known, author)]) == ([0.9], [1], [1])  # affinities are each viewer's
    now[0] = 10.0
    assert await kept.features(fan, [(known, author), (new, other_author)]) == ([0.4, 0.7], [5, 3], [2, 0])


async def test_a_deleted_posts_features_are_forgotten(features, client, ids):
    post, author, fan = ids.new_id(1), ids.new_id(2), ids.new_id(3)
    await features.handle(event("like", post_id=post, user_id=fan, author_id=author))
    await features.forget(post)
    assert not await client.exists(features_key(post))


async def test_a_post_counted_in_an_older_versions_hash_counts_on_from_it(features, client, ids):
    post, author, fan = ids.new_id(1), ids.new_id(2), ids.new_id(3)
    await client.hset(features_key(post), mapping={"likes": 3, "comments": 1})
    await features.handle(event("like", post_id=post, user_id=fan, author_id=author))
    assert await client.get(features_key(post)) == b"4:1"


async def test_the_hashes_an_older_version_left_become_strings_once_with_their_ttl(client, ids, caplog, monkeypatch):
    # Small SCAN batches, so the conversion goes on from cursors (on a cluster, node by node), and
    # reports its progress at every batch.
    monkeypatch.setattr(features_module, "CONVERT_BATCH", 50)
    monkeypatch.setattr(features_module, "PROGRESS_EVERY_S", 0.0)
    # The stack's own worker converts once at its start: let that pass end, so this one is alone.
    for _ in range(300):
        if await client.get(FEATURES_FORMAT_KEY) == b"string":
            break
        await asyncio.sleep(0.1)
    counted, expiring, liked_only, new = (ids.new_id(1) for _ in range(4))
    await client.hset(features_key(counted), mapping={"likes": 7, "comments": 2})
    await client.hset(features_key(expiring), mapping={"likes": 1, "comments": 0})
    await client.expire(features_key(expiring), 1000)
    await client.hset(features_key(liked_only), "likes", 5)
    await client.set(features_key(new), "2:9")
    many = [ids.new_id(1) for _ in range(300)]  # more than a SCAN batch
    for post in many:
        await client.hset(features_key(post), mapping={"likes": post % 7, "comments": post % 3})
    await client.delete(FEATURES_FORMAT_KEY)  # as on a keyspace an older version wrote

    with caplog.at_level(logging.INFO, logger="services.feed.features"):
        assert await convert_hashes(client) >= 303  # (and any other test left)

    assert await mget(client, [features_key(p) for p in (counted, expiring, liked_only, new)]) == \
        [b"7:2", b"1:0", b"5:0", b"2:9"]
    assert await mget(client, [features_key(p) for p in many]) == [f"{p % 7}:{p % 3}".encode() for p in many]
    assert 990 < await client.ttl(features_key(expiring)) <= 1000
    assert await client.ttl(features_key(counted)) == -1
    assert "% of the keyspace scanned, about" in caplog.text  # progress, with the time left
    assert "hashes converted to strings in" in caplog.text
    _, likes, comments = await FeedStore(client).features(ids.new_id(3), [(counted, 1), (liked_only, 2)])
    assert likes == [7, 5] and comments == [2, 0]
    # Done once: a later start does not scan again.
    assert await client.get(FEATURES_FORMAT_KEY) == b"string"
    await client.hset(features_key(ids.new_id(1)), "likes", 1)
    assert await convert_hashes(client) == 0
