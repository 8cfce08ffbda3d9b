"""Engagement's rules: who may like, comment on and save which post, and what a comment may say.

No gRPC here. Likes, comments and saves are written to PostgreSQL before a
call returns; their counts move through sharded Redis counters that the
flusher (services.engagement.flusher) folds into PostgreSQL within about a
second, and a count read here includes what is not folded in yet
(services.engagement.counters).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Protocol

from services.common import text
from services.common.errors import InvalidArgument, NotFound, PermissionDenied
from services.common.ids import IdAllocator, shard_of
from services.common.pagination import (
    check_scan,
    decode_token,
    encode_token,
    iso_time,
    one_of,
    page_size,
    positive_int64,
)
from services.engagement.viewer_state import LIKED, SAVED

MAX_COMMENT = 2200
DEFAULT_COMMENT_PAGE, MAX_COMMENT_PAGE = 20, 100
DEFAULT_LIKES_PAGE, MAX_LIKES_PAGE = 50, 200
DEFAULT_SAVED_PAGE, MAX_SAVED_PAGE = 20, 100
MAX_STATES = 500
TOPIC = "engagement"
LIKES, COMMENTS = "likes", "comments"


class Order(Enum):
    NEWEST = "NEWEST"
    OLDEST = "OLDEST"


@dataclass(frozen=True)
class Comment:
    id: int
    post_id: int
    author_id: int
    text: str
    parent_id: int = 0  # 0: a top-level comment
    mentions: list[str] = field(default_factory=list)
    reply_count: int = 0
    created_at: datetime | None = None
    # Hidden by a moderator: shown to its author only (services.engagement.moderation).
    hidden: bool = False


@dataclass(frozen=True)
class Counts:
    likes: int = 0
    comments: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.likes + other.likes, self.comments + other.comments)

    def shown(self) -> Counts:
        """Never below zero: an unlike's -1 can be folded in before its like's +1."""
        return Counts(max(0, self.likes), max(0, self.comments))


@dataclass(frozen=True)
class PostState:
    post_id: int
    like_count: int
    comment_count: int
    liked_by_me: bool
    saved_by_me: bool


@dataclass(frozen=True)
class Entry:
    """A row of a list ordered by time: who or what, and when."""

    id: int
    created_at: datetime


# --- what the rules need from storage and the mesh ------------------------------


class EngagementRepository(Protocol):
    # like, unlike, add_comment and delete_comment put their event (like, unlike, comment,
    # comment.deleted) in the outbox with the change, and only when something changed.
    async def like(self, post_id: int, user_id: int, author_id: int) -> bool: ...
    async def unlike(self, post_id: int, user_id: int, author_id: int) -> bool: ...
    async def likers(self, post_id: int, limit: int, after: tuple[datetime, int] | None) -> list[Entry]: ...
    async def scan_likes(self, shard: int, after: tuple[int, int], limit: int) -> list[tuple[int, int, datetime]]: ...
    async def save(self, user_id: int, post_id: int) -> bool: ...
    async def unsave(self, user_id: int, post_id: int) -> bool: ...
    async def saved(self, user_id: int, limit: int, after: tuple[datetime, int] | None) -> list[Entry]: ...
    async def add_comment(self, comment: Comment, post_author_id: int) -> Comment | None: ...
    async def get_comment(self, comment_id: int) -> Comment | None: ...
    async def comments(self, post_id: int, newest_first: bool, limit: int, after_id: int | None) -> list[Comment]: ...
    async def replies(self, parent_id: int, limit: int, after_id: int | None) -> list[Comment]: ...
    async def delete_comment(self, comment: Comment, deleted_by: int, post_author_id: int) -> int: ...
    async def counts(self, post_ids: list[int], liked_by: int = 0) -> tuple[dict[int, Counts], set[int]]: ...
    async def saved_among(self, user_id: int, post_ids: list[int]) -> set[int]: ...


class Counters(Protocol):
    """The Redis side of the counts (services.engagement.counters)."""

    async def add(self, post_id: int, kind: str, delta: int) -> None: ...
    async def current(self, post_ids: list[int], durable: dict[int, Counts] | None = None) -> dict[int, Counts]: ...


class ViewerStates(Protocol):
    """Cached answers to "did the viewer like / save this post" (services.engagement.viewer_state)."""

    async def known(self, viewer_id: int, post_ids: list[int]) -> tuple[dict[int, bool], dict[int, bool]]: ...
    async def fill(self, viewer_id: int, liked: dict[int, bool], saved: dict[int, bool]) -> None: ...
    async def forget(self, viewer_id: int, kind: str, post_id: int) -> None: ...
    async def set(self, viewer_id: int, kind: str, post_id: int, yes: bool) -> None: ...


class Posts(Protocol):
    async def authors_visible_to(self, viewer_id: int, post_ids: list[int]) -> dict[int, int]:
        """post_id -> author_id of the posts the viewer may see; the others are left out."""
        ...


class Graph(Protocol):
    async def blocked_either_way(self, viewer_id: int, user_ids: list[int]) -> set[int]: ...


# --- the rules ------------------------------------------------------------------------


def check_comment_text(raw: str) -> str:
    cleaned = raw.strip()
    if not cleaned:
        raise InvalidArgument("text", "text must not be empty")
    if len(cleaned) > MAX_COMMENT:
        raise InvalidArgument("text", f"text must be at most {MAX_COMMENT} characters")
    return text.without_nul("text", cleaned)


def post_not_found(post_id: int) -> NotFound:
    return NotFound(f"post {post_id} not found", reason="POST_NOT_FOUND")


def comment_not_found(comment_id: int) -> NotFound:
    return NotFound(f"comment {comment_id} not found", reason="COMMENT_NOT_FOUND")


def _time_cursor(token: str, scope: str) -> tuple[datetime, int] | None:
    cursor = decode_token(token, scope, t=iso_time, id=positive_int64)
    return (datetime.fromisoformat(cursor["t"]), cursor["id"]) if cursor else None


def _time_token(scope: str, entries: list[Entry], more: bool) -> str:
    return encode_token(scope, t=entries[-1].created_at.isoformat(), id=entries[-1].id) if more else ""


@dataclass
class EngagementService:
    repo: EngagementRepository
    counters: Counters
    posts: Posts
    graph: Graph
    ids: IdAllocator
    viewer_states: ViewerStates

    async def scan_likes(self, shard: int, after: tuple[int, int], page_size: int
                         ) -> list[tuple[int, int, datetime]]:
        """For the mesh (search's rebuild): (post_id, user_id, created_at) of the shard's likes after `after`."""
        size = check_scan(shard, page_size, self.ids.logical_shards, default=1000, maximum=5000)
        return await self.repo.scan_likes(shard, after, size)

    async def _author_of_visible(self, viewer_id: int, post_id: int) -> int:
        """The post's author; NotFound when the post does not exist or the viewer may not see it."""
        author = (await self.posts.authors_visible_to(viewer_id, [post_id])).get(post_id) if post_id > 0 else None
        if author is None:
            raise post_not_found(post_id)
        return author

    async def _current(self, post_ids: list[int], liked_by: int = 0) -> tuple[dict[int, Counts], set[int]]:
        """The posts' counts now, and which of them `liked_by` (0: nobody) liked.

        With a viewer, PostgreSQL is asked first anyway (likes), and its counts
        stand in for posts Redis holds no count of; without one, Redis alone
        answers unless it lacks a post.
        """
        durable, liked = await self.repo.counts(post_ids, liked_by) if liked_by else (None, set())
        counts = await self.counters.current(post_ids, durable)
        return {p: counts.get(p, Counts()).shown() for p in post_ids}, liked

    # --- likes ----------------------------------------------------------------------

    async def like(self, viewer_id: int, post_id: int) -> tuple[bool, int]:
        author = await self._author_of_visible(viewer_id, post_id)
        await self.viewer_states.forget(viewer_id, LIKED, post_id)
        if await self.repo.like(post_id, viewer_id, author):
            # Only a new like moves the counter: liking twice is one like.
            await self.counters.add(post_id, LIKES, +1)
        await self.viewer_states.set(viewer_id, LIKED, post_id, True)
        return True, (await self._current([post_id]))[0][post_id].likes

    async def unlike(self, viewer_id: int, post_id: int) -> tuple[bool, int]:
        author = await self._author_of_visible(viewer_id, post_id)
        await self.viewer_states.forget(viewer_id, LIKED, post_id)
        if await self.repo.unlike(post_id, viewer_id, author):
            await self.counters.add(post_id, LIKES, -1)
        await self.viewer_states.set(viewer_id, LIKED, post_id, False)
        return False, (await self._current([post_id]))[0][post_id].likes

    async def likers(self, viewer_id: int, post_id: int, size: int, token: str) -> tuple[list[int], str]:
        """Who liked the post, newest first; people blocked either way with the viewer are left out."""
        limit = page_size(size, default=DEFAULT_LIKES_PAGE, maximum=MAX_LIKES_PAGE)
        after = _time_cursor(token, f"likes:{post_id}")
        await self._author_of_visible(viewer_id, post_id)
        entries = await self.repo.likers(post_id, limit + 1, after)
        more = len(entries) > limit
        entries = entries[:limit]
        hidden = await self.graph.blocked_either_way(viewer_id, [e.id for e in entries]) if viewer_id else set()
        return [e.id for e in entries if e.id not in hidden], _time_token(f"likes:{post_id}", entries, more)

    # --- comments -------------------------------------------------------------------

    async def create_comment(self, viewer_id: int, post_id: int, raw_text: str, parent_id: int = 0) -> Comment:
        cleaned = check_comment_text(raw_text)
        if parent_id < 0:
            raise InvalidArgument("parent_comment_id", "parent_comment_id must not be negative")
        author = await self._author_of_visible(viewer_id, post_id)
        if parent_id:
            parent = await self.repo.get_comment(parent_id)
            if parent is None or parent.post_id != post_id:
                raise InvalidArgument("parent_comment_id", f"comment {parent_id} is not a comment on this post",
                                      reason="PARENT_NOT_FOUND")
            if parent.parent_id:
                raise InvalidArgument("parent_comment_id", "replies go one level deep: reply to the top-level "
                                      "comment instead", reason="REPLY_TO_REPLY")
        comment = Comment(id=self.ids.new_id(shard_of(post_id)), post_id=post_id, author_id=viewer_id,
                          text=cleaned, parent_id=parent_id, mentions=text.mentions(cleaned))
        created = await self.repo.add_comment(comment, author)
        if created is None:  # the parent was deleted meanwhile
            raise InvalidArgument("parent_comment_id", f"comment {parent_id} is not a comment on this post",
                                  reason="PARENT_NOT_FOUND")
        await self.counters.add(post_id, COMMENTS, +1)
        return created

    async def _visible_comment(self, viewer_id: int, comment_id: int) -> tuple[Comment, int]:
        """The comment and its post's author; NotFound when either is missing or the post is not visible."""
        comment = await self.repo.get_comment(comment_id) if comment_id > 0 else None
        if comment is None or (comment.hidden and comment.author_id != viewer_id):
            raise comment_not_found(comment_id)
        author = (await self.posts.authors_visible_to(viewer_id, [comment.post_id])).get(comment.post_id)
        if author is None:
            raise comment_not_found(comment_id)
        return comment, author

    async def seen_comment(self, viewer_id: int, comment_id: int) -> Comment:
        """The comment, when the viewer can see it (its post, no block either way, not hidden from them)."""
        comment, _ = await self._visible_comment(viewer_id, comment_id)
        if not await self._seen_by(viewer_id, [comment]):
            raise comment_not_found(comment_id)
        return comment

    async def _seen_by(self, viewer_id: int, comments: list[Comment]) -> list[Comment]:
        """What the viewer may see of these: neither hidden from them nor across a block."""
        comments = [c for c in comments if not c.hidden or c.author_id == viewer_id]
        if not viewer_id or not comments:
            return comments
        hidden = await self.graph.blocked_either_way(viewer_id, list({c.author_id for c in comments}))
        return [c for c in comments if c.author_id not in hidden]

    async def list_comments(self, viewer_id: int, post_id: int, order: Order, size: int, token: str
                            ) -> tuple[list[Comment], str]:
        """A post's top-level comments with their reply counts."""
        limit = page_size(size, default=DEFAULT_COMMENT_PAGE, maximum=MAX_COMMENT_PAGE)
        scope = f"comments:{post_id}"
        cursor = decode_token(token, scope, after=positive_int64, order=one_of(*Order.__members__))
        if cursor is not None:
            order = Order(cursor["order"])
        await self._author_of_visible(viewer_id, post_id)
        found = await self.repo.comments(post_id, order is Order.NEWEST, limit + 1,
                                         cursor["after"] if cursor else None)
        more = len(found) > limit
        found = found[:limit]
        token = encode_token(scope, after=found[-1].id, order=order.value) if more else ""
        return await self._seen_by(viewer_id, found), token

    async def list_replies(self, viewer_id: int, comment_id: int, size: int, token: str) -> tuple[list[Comment], str]:
        """Replies to a top-level comment, oldest first."""
        limit = page_size(size, default=DEFAULT_COMMENT_PAGE, maximum=MAX_COMMENT_PAGE)
        scope = f"replies:{comment_id}"
        cursor = decode_token(token, scope, after=positive_int64)
        await self._visible_comment(viewer_id, comment_id)
        found = await self.repo.replies(comment_id, limit + 1, cursor["after"] if cursor else None)
        more = len(found) > limit
        found = found[:limit]
        token = encode_token(scope, after=found[-1].id) if more else ""
        return await self._seen_by(viewer_id, found), token

    async def delete_comment(self, viewer_id: int, comment_id: int) -> None:
        """The comment's author or the post's author deletes a comment; its replies go with it."""
        comment, post_author = await self._visible_comment(viewer_id, comment_id)
        if viewer_id not in (comment.author_id, post_author):
            raise PermissionDenied("only the comment's author or the post's author can delete a comment",
                                   reason="NOT_COMMENT_AUTHOR")
        removed = await self.repo.delete_comment(comment, viewer_id, post_author)
        if removed:
            await self.counters.add(comment.post_id, COMMENTS, -removed)

    # --- saves ------------------------------------------------------------------------

    async def save(self, viewer_id: int, post_id: int) -> bool:
        await self._author_of_visible(viewer_id, post_id)
        await self.viewer_states.forget(viewer_id, SAVED, post_id)
        await self.repo.save(viewer_id, post_id)
        await self.viewer_states.set(viewer_id, SAVED, post_id, True)
        return True

    async def unsave(self, viewer_id: int, post_id: int) -> bool:
        await self._author_of_visible(viewer_id, post_id)
        await self.viewer_states.forget(viewer_id, SAVED, post_id)
        await self.repo.unsave(viewer_id, post_id)
        await self.viewer_states.set(viewer_id, SAVED, post_id, False)
        return False

    async def saved(self, viewer_id: int, size: int, token: str) -> tuple[list[int], str]:
        """My saved post ids, newest saved first (whether I can still see them is the hydrator's filter)."""
        limit = page_size(size, default=DEFAULT_SAVED_PAGE, maximum=MAX_SAVED_PAGE)
        entries = await self.repo.saved(viewer_id, limit + 1, _time_cursor(token, f"saved:{viewer_id}"))
        more = len(entries) > limit
        entries = entries[:limit]
        return [e.id for e in entries], _time_token(f"saved:{viewer_id}", entries, more)

    # --- for the mesh -------------------------------------------------------------------

    async def states(self, viewer_id: int, post_ids: list[int]) -> list[PostState]:
        """Counts and the viewer's likes and saves for each distinct post, in the order asked."""
        if len(post_ids) > MAX_STATES:
            raise InvalidArgument("post_ids", f"at most {MAX_STATES} posts per call")
        unique = list(dict.fromkeys(p for p in post_ids if p > 0))
        if not unique:
            return []
        if not viewer_id:
            counts, _ = await self._current(unique)
            return [PostState(p, counts[p].likes, counts[p].comments, False, False) for p in unique]
        # Warm (every answer cached), Redis alone answers; else the rows, and the cache is filled.
        (liked, saved), (counts, _) = await asyncio.gather(self.viewer_states.known(viewer_id, unique),
                                                           self._current(unique))
        fresh_liked: dict[int, bool] = {}
        fresh_saved: dict[int, bool] = {}
        if len(liked) < len(unique):
            # The rows, then the counts again: PostgreSQL first, as _current wants.
            counts, liked_rows = await self._current(unique, viewer_id)
            liked = fresh_liked = {p: p in liked_rows for p in unique}
        if len(saved) < len(unique):
            saved_rows = await self.repo.saved_among(viewer_id, unique)
            saved = fresh_saved = {p: p in saved_rows for p in unique}
        await self.viewer_states.fill(viewer_id, fresh_liked, fresh_saved)
        return [PostState(p, counts[p].likes, counts[p].comments, liked[p], saved[p]) for p in unique]
