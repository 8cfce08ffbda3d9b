"""Reading the home feed: rebuild when missing, merge-rank with the compiled kernel, hydrate (services.feed.pages)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Protocol

from hotpath import merge
from hotpath.merge import RankedCursor
from services.common.pagination import decode_token, encode_token, page_size, positive_int64, text
from services.feed.config import FeedConfig
from services.feed.pages import PagePost
from services.feed.store import FeedStore

log = logging.getLogger(__name__)

DEFAULT_PAGE, MAX_PAGE = 20, 50
CHRONOLOGICAL, RANKED = "CHRONOLOGICAL", "RANKED"
REBUILD_BATCH = 1000  # authors per RebuildTimelines call


class Sources(Protocol):
    """The sources of truth a feed is rebuilt from (graph, posts)."""

    async def following_ids(self, user_id: int) -> list[int]: ...
    async def exclusions(self, user_id: int) -> tuple[list[int], list[int]]: ...
    async def recent_posts(self, author_ids: list[int], limit: int) -> list[tuple[int, int]]: ...


class Timelines(Protocol):
    """Posts rebuilds the authors' timelines Redis lost (they are its keys)."""

    async def rebuild_timelines(self, author_ids: list[int]) -> None: ...


class Pages(Protocol):
    async def posts_for(self, viewer_id: int, post_ids: list[int]) -> list[PagePost]: ...


def _ranked_cursor(value: object) -> RankedCursor:
    return RankedCursor.decode(text(value))


@dataclass
class FeedService:
    store: FeedStore
    sources: Sources
    timelines: Timelines
    pages: Pages
    config: FeedConfig

    async def rebuild(self, user_id: int) -> None:
        """Rebuild a user's feed from PostgreSQL (new, inactive, or Redis lost it)."""
        following, (muted, blocked) = await asyncio.gather(self.sources.following_ids(user_id),
                                                           self.sources.exclusions(user_id))
        # Pages pull the followed celebrities' timelines; the rest is pushed, starting here.
        celebrities = await self.store.celebrities_among(following)
        pushed_authors = [u for u in following if u not in celebrities]
        posts = await self.sources.recent_posts(pushed_authors, self.config.max_items) if pushed_authors else []
        await self.store.build(user_id, posts, following, {*muted, *blocked}, self.config.ttl_s)

    async def rebuild_timelines(self, author_ids: list[int]) -> None:
        """Authors' timelines are posts' keys: posts rebuilds those Redis lost."""
        for start in range(0, len(author_ids), REBUILD_BATCH):
            await self.timelines.rebuild_timelines(author_ids[start:start + REBUILD_BATCH])

    async def page(self, viewer_id: int, mode: str, size: int, token: str) -> tuple[list[PagePost], str]:
        """A page of the viewer's feed, its posts' shapes and states (services.feed.pages), and the next
        page's token."""
        limit = page_size(size, default=DEFAULT_PAGE, maximum=MAX_PAGE)
        # A token belongs to one reader's feed in one mode.
        scope = f"feed:{viewer_id}:{mode}"
        before_id, cursor = self._parse_token(scope, mode, token)
        window = self.config.ranked_window
        upper = before_id if mode == CHRONOLOGICAL else (cursor.window_newest if cursor else None)
        # Enough candidates for a page after exclusions (chronological), or for the
        # current window and the next (ranked).
        count = limit * 2 + 20 if mode == CHRONOLOGICAL else window + limit
        found = await self.store.candidates(viewer_id, upper, count, self.config.ttl_s)
        # Twice at most: a feed just rebuilt can name celebrities whose timelines Redis lost too.
        for _ in range(2):
            if not (found.feed_missing or found.missing_timelines):
                break
            if found.feed_missing:
                await self.rebuild(viewer_id)
            if found.missing_timelines:
                await self.rebuild_timelines(found.missing_timelines)
            found = await self.store.candidates(viewer_id, upper, count, self.config.ttl_s)
        members, excluded_authors = found.members, found.excluded_authors
        if mode == CHRONOLOGICAL:
            # One more than the page: whether there is a next page.
            ids, _ = merge.newest_members(members, limit=limit + 1, before_id=before_id,
                                          excluded_authors=excluded_authors)
            page_ids = ids[:limit]
            next_token = encode_token(scope, before=page_ids[-1]) if len(ids) > limit else ""
        else:
            # Ranked windows are runs of the chronological merge, so merging first
            # (dropping the excluded) and ranking that one list gives the same
            # pages, with features fetched for `count` posts instead of every
            # candidate of every list.
            merged, authors = merge.newest_members(members, limit=count, before_id=upper + 1 if upper else None,
                                                   excluded_authors=excluded_authors)
            affinity, likes, comments = await self.store.features(viewer_id, list(zip(merged, authors)))
            interest = [0.0] * len(merged)  # no interest model yet: every post counts the same
            page = merge.ranked_page(merged, [0, len(merged)], affinity, likes, comments, interest, limit=limit,
                                     cursor=cursor, window=window)
            page_ids = page.ids
            next_token = encode_token(scope, ranked=page.next_cursor.encode()) if page.next_cursor is not None else ""
        return await self.pages.posts_for(viewer_id, list(page_ids)), next_token

    @staticmethod
    def _parse_token(scope: str, mode: str, token: str) -> tuple[int | None, RankedCursor | None]:
        if mode == CHRONOLOGICAL:
            cursor = decode_token(token, scope, before=positive_int64)
            return (cursor["before"] if cursor else None), None
        cursor = decode_token(token, scope, ranked=_ranked_cursor)
        return None, (cursor["ranked"] if cursor else None)
