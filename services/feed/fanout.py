"""Fan-out on write: what the feed workers do with each domain event. No gRPC here.

Posts and graph events change feeds (here); engagement's events change the
ranking features (services.feed.features).

Every handler is idempotent (events arrive at least once): pushes are ZADDs,
removals ZREMs, set changes SADD/SREM, drops DELs, and none creates a feed that
is not built (PUSH_IF_BUILT, SET_IF_BUILT).

User classes drive the push (realtime's classifier): a post goes into the
built feeds of followers who are LIVE or ACTIVE (PICTOR_FEED_PUSH_CLASSES);
the feeds of PASSIVE and INACTIVE followers are dropped instead, so the one
who comes back gets a feed pulled whole at that read (a rebuild), and the
fan-out spends nothing on feeds nobody is reading. While the classes cannot
be read (realtime down) everyone takes the push, as before classes existed.
POPULAR authors are the feed's celebrities (the same threshold,
PICTOR_FEED_CELEBRITY_THRESHOLD, read from the author's follower count at
once rather than from the classifier's next sweep): pulled at read time. The
celebrities set is marked here, at each post, and a rebuild pushes every
followed author not in it (FeedService.rebuild).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from services.common.events import Event
from services.feed.config import FeedConfig
from services.feed.features import TOPIC as ENGAGEMENT
from services.feed.features import RankingFeatures
from services.feed.keys import feed_key
from services.feed.store import FeedStore

log = logging.getLogger(__name__)


class FanOutSources(Protocol):
    def follower_id_pages(self, user_id: int) -> AsyncIterator[list[int]]: ...
    async def follower_counts(self, user_ids: list[int]) -> dict[int, int]: ...
    async def recent_posts(self, author_ids: list[int], limit: int) -> list[tuple[int, int]]: ...
    async def classes_if_up(self, user_ids: list[int]) -> dict[int, set[str]] | None: ...


@dataclass
class FanOut:
    store: FeedStore
    sources: FanOutSources
    config: FeedConfig
    features: RankingFeatures

    async def handle(self, event: Event) -> None:
        if event.topic == ENGAGEMENT:
            await self.features.handle(event)
            return
        handler = getattr(self, "on_" + event.type.replace(".", "_"), None)
        if handler is not None:
            # Only the fields the handler names: a payload that grew a field must not break it.
            wanted = inspect.signature(handler).parameters
            await handler(**{name: value for name, value in event.data.items() if name in wanted})

    async def on_post_created(self, post_id: int, author_id: int) -> None:
        followers = (await self.sources.follower_counts([author_id])).get(author_id, 0)
        celebrity = followers >= self.config.celebrity_threshold
        await self.store.set_celebrity(author_id, celebrity)
        if celebrity:
            return  # pulled from the author's timeline at read time
        # Only built feeds take the push: a feed that expired, was dropped or was
        # lost is rebuilt whole when its user comes back.
        async for page in self.sources.follower_id_pages(author_id):
            pushed, pulled = await self.by_delivery(page)
            await self.store.timelines.push([feed_key(f) for f in pushed], post_id, author_id, self.config.max_items)
            await self.store.drop(pulled)

    async def by_delivery(self, user_ids: list[int]) -> tuple[list[int], list[int]]:
        """(whose feeds take pushes, whose feeds are pulled at their next read), by user class."""
        classes = await self.sources.classes_if_up(user_ids)
        if classes is None:
            return user_ids, []
        pushed, pulled = [], []
        for user in user_ids:
            (pushed if classes.get(user, set()) & self.config.push_classes else pulled).append(user)
        return pushed, pulled

    async def on_post_deleted(self, post_id: int, author_id: int) -> None:
        # Also for celebrities: they may have been pushed before they became one.
        async for page in self.sources.follower_id_pages(author_id):
            await self.store.timelines.remove([feed_key(f) for f in page], [(post_id, author_id)])
        await self.features.forget(post_id)

    async def on_moderation_content_hidden(self, target_type: str, target_id: int, owner_id: int) -> None:
        """A moderator hid a post: out of its author's followers' feeds, as a deleted one. (A suspended
        author's posts are dropped at read time: posts tombstones their cached shapes.)"""
        if target_type == "post":
            await self.on_post_deleted(target_id, owner_id)

    async def on_follow(self, follower_id: int, target_id: int) -> None:
        await self.store.follows(follower_id, target_id, True)
        if not await self.store.feed_built(follower_id) or await self.store.is_celebrity(target_id):
            return
        # A new (or newly approved) follower sees the author's recent posts.
        posts = await self.sources.recent_posts([target_id], self.config.max_items)
        await self.store.timelines.push_posts(feed_key(follower_id), posts, self.config.max_items)

    async def on_unfollow(self, follower_id: int, target_id: int) -> None:
        await self.store.follows(follower_id, target_id, False)
        if await self.store.feed_built(follower_id):
            posts = await self.sources.recent_posts([target_id], 1000)
            await self.store.timelines.remove([feed_key(follower_id)], posts)

    async def on_block(self, user_id: int, target_id: int) -> None:
        for a, b in ((user_id, target_id), (target_id, user_id)):
            await self.store.excludes(a, b, True)
            await self.on_unfollow(a, b)

    async def on_unblock(self, user_id: int, target_id: int) -> None:
        for a, b in ((user_id, target_id), (target_id, user_id)):
            await self.store.excludes(a, b, False)

    async def on_mute(self, user_id: int, target_id: int) -> None:
        await self.store.excludes(user_id, target_id, True)

    async def on_unmute(self, user_id: int, target_id: int) -> None:
        await self.store.excludes(user_id, target_id, False)
