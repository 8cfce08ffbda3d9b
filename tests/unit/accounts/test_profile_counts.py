"""Which counts on profiles an event moves (services.accounts.counts)."""

from __future__ import annotations

from services.accounts.counts import CONSUMER, ProfileCounts, count_changes
from services.common.events import Event


def test_a_follow_moves_both_sides_and_an_unfollow_takes_them_back():
    data = {"follower_id": 1, "target_id": 2}
    assert count_changes(Event("graph", "follow", data)) == [(1, "following_count", 1), (2, "follower_count", 1)]
    assert count_changes(Event("graph", "unfollow", data)) == [(1, "following_count", -1), (2, "follower_count", -1)]


def test_a_created_or_deleted_post_moves_its_authors_post_count():
    data = {"post_id": 9, "author_id": 3}
    assert count_changes(Event("posts", "post.created", data)) == [(3, "post_count", 1)]
    assert count_changes(Event("posts", "post.deleted", data)) == [(3, "post_count", -1)]


def test_other_events_move_no_count():
    assert count_changes(Event("graph", "block", {"user_id": 1, "target_id": 2})) == []
    assert count_changes(Event("posts", "post.updated", {"post_id": 9, "author_id": 3})) == []


class Store:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    async def add_once(self, consumer, event_id, user_id, column, delta):
        self.calls.append((consumer, event_id, user_id, column, delta))
        return True


async def test_each_change_goes_to_the_store_under_the_event_id():
    store = Store()
    await ProfileCounts(store).handle(Event("graph", "follow", {"follower_id": 1, "target_id": 2}, id="e1"))
    assert store.calls == [(CONSUMER, "e1", 1, "following_count", 1), (CONSUMER, "e1", 2, "follower_count", 1)]
