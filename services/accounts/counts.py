"""The counts shown on profiles, kept from the graph's and posts' events (accounts owns `users`).

follower_count, following_count and post_count move when an edge comes or
goes (follow, unfollow: also an approved request, a removed follower and the
follows a block ends, which the graph sends as follow and unfollow) and when
a post is created or deleted. The graph and posts write each event once per
real change, with the change; this consumer applies each event exactly once
per row: the event id is recorded in the transaction of the count's update
(consumed_events, in the user's shard), and a delivery that finds it there
changes nothing. No gRPC here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from services.common.events import Event

GROUP = "accounts-profile-counts"
TOPICS = ["graph", "posts"]
# Names this consumer's rows in consumed_events.
CONSUMER = "accounts.profile_counts"
COLUMNS = ("follower_count", "following_count", "post_count")


def count_changes(event: Event) -> list[tuple[int, str, int]]:
    """(user id, column, delta) for each count the event moves; [] for the events that move none."""
    data = event.data
    if event.type in ("follow", "unfollow"):
        delta = +1 if event.type == "follow" else -1
        return [(data["follower_id"], "following_count", delta), (data["target_id"], "follower_count", delta)]
    if event.type in ("post.created", "post.deleted"):
        return [(data["author_id"], "post_count", +1 if event.type == "post.created" else -1)]
    return []


class CountStore(Protocol):
    async def add_once(self, consumer: str, event_id: str, user_id: int, column: str, delta: int) -> bool:
        """Add `delta` to the user's `column` unless `event_id` was applied to that user before."""
        ...


@dataclass
class ProfileCounts:
    store: CountStore

    async def handle(self, event: Event) -> None:
        for user_id, column, delta in count_changes(event):
            await self.store.add_once(CONSUMER, event.id, user_id, column, delta)
