"""The fan-out by user class, in the stack's real Redis: pushes to LIVE and ACTIVE followers, drops
the others' feeds (pulled whole at their next read), and pushes to all while classes are unknown.

The sources (graph's followers, accounts' counts, realtime's classes) are stand-ins here: what is
under test is what the worker does with their answers in Redis.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from services.feed.config import FeedConfig
from services.feed.fanout import FanOut
from services.feed.features import RankingFeatures
from services.feed.keys import feed_key
from services.feed.store import FeedStore

TTL_S = 3600


class Sources:
    def __init__(self, followers: list[int], classes: dict[int, set[str]] | None) -> None:
        self.followers, self.classes = followers, classes

    async def follower_id_pages(self, user_id: int) -> AsyncIterator[list[int]]:
        yield self.followers

    async def follower_counts(self, user_ids: list[int]) -> dict[int, int]:
        return {u: len(self.followers) for u in user_ids}

    async def recent_posts(self, author_ids: list[int], limit: int) -> list[tuple[int, int]]:
        return []

    async def classes_if_up(self, user_ids: list[int]) -> dict[int, set[str]] | None:
        return None if self.classes is None else {u: self.classes[u] for u in user_ids if u in self.classes}


async def fanned_out(client, ids, classes_by_index: list[set[str]] | None, known: bool = True):
    """Followers with built feeds, one per class set; a post by their author fanned out to them."""
    store = FeedStore(client)
    author, post = ids.new_id(1), ids.new_id(1)
    followers = [ids.new_id(2) for _ in range(4)]
    for f in followers:
        await store.build(f, [], [author], set(), TTL_S)
    classes = dict(zip(followers, classes_by_index, strict=True)) if known else None
    fanout = FanOut(store, Sources(followers, classes), FeedConfig(), RankingFeatures(client))
    await fanout.on_post_created(post, author)
    feeds = [await client.zrange(feed_key(f), 0, -1) if await client.exists(feed_key(f)) else None
             for f in followers]
    return [None if feed is None else any(m.startswith(f"{post}:".encode()) for m in feed) for feed in feeds]


async def test_live_and_active_followers_take_the_push_and_the_others_feeds_are_dropped(client, ids):
    found = await fanned_out(client, ids, [{"LIVE"}, {"ACTIVE", "POPULAR"}, {"PASSIVE"}, {"INACTIVE"}])
    assert found == [True, True, None, None]


async def test_a_follower_the_classifier_never_named_is_pulled(client, ids):
    found = await fanned_out(client, ids, [{"ACTIVE"}, set(), set(), {"LIVE"}])
    assert found == [True, None, None, True]


async def test_while_classes_are_unknown_every_built_feed_takes_the_push(client, ids):
    found = await fanned_out(client, ids, None, known=False)
    assert found == [True, True, True, True]
