"""Posts' rules: what a post may hold, who may see, edit and delete it. No gRPC here."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol

from services.common import text
from services.common.errors import InvalidArgument, NotFound, PermissionDenied
from services.common.ids import IdAllocator, shard_of
from services.common.pagination import check_scan, decode_token, encode_token, page_size, positive_int64
from services.posts.keys import TIMELINE_MAX

MAX_CAPTION = 2200
MAX_MEDIA = 10
MAX_LOCATION_NAME = 100
MAX_REQUEST_ID = 64
DEFAULT_PAGE, MAX_PAGE = 20, 100
MAX_BATCH = 100
MAX_RECENT = 1000
MAX_REBUILD = 1000
MAX_EXISTING = 500
TOPIC = "posts"


@dataclass(frozen=True)
class Location:
    name: str
    lat: float
    lng: float


@dataclass(frozen=True)
class Post:
    id: int
    author_id: int
    media_ids: list[int]
    caption: str = ""
    hashtags: list[str] = field(default_factory=list)
    mentions: list[str] = field(default_factory=list)
    location: Location | None = None
    like_count: int = 0
    comment_count: int = 0
    request_id: str | None = None
    created_at: datetime | None = None
    deleted: bool = False
    # Deleted, and everything that hung on it cleaned up (services.posts.cleanup).
    cleaned: bool = False
    # Hidden by a moderator: seen by its author and moderators only, at its own URL (services.posts.moderation).
    hidden: bool = False


@dataclass(frozen=True)
class Access:
    """How a viewer stands towards an author (from the graph)."""

    can_view: bool
    blocked: bool


class PostsRepository(Protocol):
    # create, update_caption and soft_delete put post.created / post.updated / post.deleted in the
    # outbox with the change (feeds, cleanup and the author's post count follow from them).
    async def create(self, post: Post) -> Post: ...
    async def get_many(self, post_ids: list[int]) -> dict[int, Post]: ...
    async def list_by_author(self, author_id: int, before_id: int | None, limit: int) -> list[Post]: ...
    async def update_caption(self, post: Post) -> Post | None: ...
    async def soft_delete(self, post_id: int) -> bool: ...
    async def mark_cleaned(self, post_id: int) -> bool: ...
    async def uncleaned(self, shard: int, deleted_before: datetime, limit: int) -> list[int]: ...
    async def recent_ids(self, author_ids: list[int], limit: int) -> list[tuple[int, int]]: ...
    async def scan(self, shard: int, after_id: int, limit: int) -> list[Post]: ...


class AuthorTimelines(Protocol):
    """The authors' recent posts in Redis, which feeds read (services.posts.timelines)."""

    async def added(self, post_id: int, author_id: int) -> None: ...
    async def removed(self, post_id: int, author_id: int) -> None: ...
    async def missing(self, author_ids: list[int]) -> list[int]: ...
    async def replace(self, author_id: int, posts: list[tuple[int, int]]) -> None: ...


class Graph(Protocol):
    async def access(self, viewer_id: int, author_ids: list[int]) -> dict[int, Access]: ...


class Moderators(Protocol):
    async def is_moderator(self, user_id: int) -> bool:
        """Whether the user may see hidden content (moderation's CheckModerator)."""


class Media(Protocol):
    async def attach_media(self, owner_id: int, post_id: int, media_ids: list[int]) -> None:
        """Media records that the post uses these media (MediaService/AttachMedia); InvalidArgument
        MEDIA_NOT_FOUND when one does not exist or is not the owner's."""


def check_caption(caption: str) -> str:
    if len(caption) > MAX_CAPTION:
        raise InvalidArgument("caption", f"caption must be at most {MAX_CAPTION} characters")
    return text.without_nul("caption", caption)


def check_location(location: Location | None) -> Location | None:
    if location is None:
        return None
    name = location.name.strip()
    if not name or len(name) > MAX_LOCATION_NAME:
        raise InvalidArgument("location.name", f"location.name must be 1-{MAX_LOCATION_NAME} characters")
    if not (math.isfinite(location.lat) and -90 <= location.lat <= 90):
        raise InvalidArgument("location.lat", "location.lat must be between -90 and 90")
    if not (math.isfinite(location.lng) and -180 <= location.lng <= 180):
        raise InvalidArgument("location.lng", "location.lng must be between -180 and 180")
    return Location(name, location.lat, location.lng)


def not_found(post_id: int) -> NotFound:
    return NotFound(f"post {post_id} not found", reason="POST_NOT_FOUND")


@dataclass
class PostsService:
    repo: PostsRepository
    ids: IdAllocator
    graph: Graph
    timelines: AuthorTimelines
    media: Media
    moderators: Moderators | None = None

    async def create(self, author_id: int, media_ids: list[int], caption: str, location: Location | None,
                     request_id: str = "") -> Post:
        if not 1 <= len(media_ids) <= MAX_MEDIA:
            raise InvalidArgument("media_ids", f"a post holds 1 to {MAX_MEDIA} media items")
        if len(set(media_ids)) != len(media_ids):
            raise InvalidArgument("media_ids", "media_ids must not repeat an item")
        if len(request_id) > MAX_REQUEST_ID:
            raise InvalidArgument("request_id", f"request_id must be at most {MAX_REQUEST_ID} characters")
        caption = check_caption(caption)
        location = check_location(location)
        post = Post(
            id=self.ids.new_id(shard_of(author_id)), author_id=author_id, media_ids=list(media_ids),
            caption=caption, hashtags=text.hashtags(caption), mentions=text.mentions(caption),
            location=location, request_id=request_id or None,
        )
        # Media checks the media are the author's and keeps them while the post holds them. A post
        # that fails from here on leaves an attachment media's collector drops later.
        await self.media.attach_media(author_id, post.id, post.media_ids)
        created = await self.repo.create(post)
        # The author's own feed reads their timeline: they see the post at once.
        await self.timelines.added(created.id, author_id)
        return created

    async def live(self, post_ids: list[int]) -> list[Post]:
        """The posts that exist and are neither deleted nor hidden, whoever asks, in the order asked."""
        if len(post_ids) > MAX_BATCH:
            raise InvalidArgument("post_ids", f"at most {MAX_BATCH} posts per call")
        found = await self.repo.get_many(post_ids)
        return [found[i] for i in dict.fromkeys(post_ids) if i in found and not found[i].deleted
                and not found[i].hidden]

    async def hidden_for(self, viewer_id: int, post_id: int) -> Post | None:
        """A hidden post, when the viewer is its author or a moderator (the only ones who see it)."""
        if viewer_id <= 0:
            return None
        post = (await self.repo.get_many([post_id])).get(post_id)
        if post is None or post.deleted or not post.hidden:
            return None
        if post.author_id == viewer_id or (self.moderators is not None
                                            and await self.moderators.is_moderator(viewer_id)):
            return post
        return None

    async def scan(self, shard: int, after_id: int, page_size: int) -> tuple[list[Post], int]:
        """For the mesh (search's rebuild): a page of the shard's live posts and the id to go on after (0: done)."""
        size = check_scan(shard, page_size, self.ids.logical_shards, default=500, maximum=2000)
        posts = await self.repo.scan(shard, after_id, size)
        return posts, posts[-1].id if len(posts) == size else 0

    async def existing(self, post_ids: list[int]) -> list[int]:
        """The ids among these of posts that exist, deleted ones included (media's collector asks)."""
        if len(post_ids) > MAX_EXISTING:
            raise InvalidArgument("post_ids", f"at most {MAX_EXISTING} posts per call")
        return list(await self.repo.get_many(
            [i for i in dict.fromkeys(post_ids) if i > 0 and shard_of(i) < self.ids.logical_shards]))

    async def viewable_authors(self, viewer_id: int, author_ids: list[int]) -> set[int]:
        """The authors whose posts the viewer (0: signed out) may see."""
        access = await self.graph.access(viewer_id, author_ids)
        return {author for author, a in access.items() if a.can_view}

    async def visible(self, viewer_id: int, post_ids: list[int]) -> list[Post]:
        """The posts the viewer may see, in the order asked; others are left out."""
        live = await self.live(post_ids)
        allowed = await self.viewable_authors(viewer_id, [p.author_id for p in live])
        return [p for p in live if p.author_id in allowed]

    async def get(self, viewer_id: int, post_id: int) -> Post:
        posts = await self.visible(viewer_id, [post_id])
        if not posts:
            raise not_found(post_id)
        return posts[0]

    async def _own(self, viewer_id: int, post_id: int) -> Post:
        post = await self.get(viewer_id, post_id)
        if post.author_id != viewer_id:
            raise PermissionDenied("only the author can change a post", reason="NOT_AUTHOR")
        return post

    async def update_caption(self, viewer_id: int, post_id: int, caption: str) -> Post:
        post = await self._own(viewer_id, post_id)
        caption = check_caption(caption)
        updated = await self.repo.update_caption(
            replace(post, caption=caption, hashtags=text.hashtags(caption), mentions=text.mentions(caption)))
        if updated is None:
            raise not_found(post_id)
        return updated

    async def delete(self, viewer_id: int, post_id: int) -> None:
        found = (await self.repo.get_many([post_id])).get(post_id)
        if found is not None and found.deleted and found.author_id == viewer_id:
            return  # deleting again succeeds
        if found is None or not (found.hidden and found.author_id == viewer_id):  # an author may delete a hidden post
            await self._own(viewer_id, post_id)
        await self.repo.soft_delete(post_id)
        # Feeds and caches clean up from its post.deleted event, afterwards and idempotently.
        await self.timelines.removed(post_id, viewer_id)

    async def recent_ids(self, author_ids: list[int], limit: int) -> list[tuple[int, int]]:
        """(post_id, author_id) of the authors' newest live posts, newest first."""
        if len(author_ids) > 10_000:
            raise InvalidArgument("author_ids", "at most 10,000 authors per call")
        return await self.repo.recent_ids(author_ids, page_size(limit, default=MAX_RECENT, maximum=MAX_RECENT))

    async def rebuild_timelines(self, author_ids: list[int]) -> int:
        """Rebuild the missing timelines among these authors' (Redis lost them, or they expired); returns how many."""
        if len(author_ids) > MAX_REBUILD:
            raise InvalidArgument("author_ids", f"at most {MAX_REBUILD:,} authors per call")
        missing = await self.timelines.missing(list(dict.fromkeys(a for a in author_ids if a > 0)))
        for author in missing:
            await self.timelines.replace(author, await self.repo.recent_ids([author], TIMELINE_MAX))
        return len(missing)

    async def list_by_author(self, viewer_id: int, author_id: int, size: int, token: str) -> tuple[list[Post], str]:
        limit = page_size(size, default=DEFAULT_PAGE, maximum=MAX_PAGE)
        cursor = decode_token(token, f"posts:{author_id}", before=positive_int64)
        access = (await self.graph.access(viewer_id, [author_id])).get(author_id)
        if access is None or access.blocked:
            raise NotFound(f"user {author_id} not found", reason="USER_NOT_FOUND")
        if not access.can_view:
            raise PermissionDenied("this account is private: follow it to see its posts", reason="ACCOUNT_PRIVATE")
        posts = await self.repo.list_by_author(author_id, cursor["before"] if cursor else None, limit + 1)
        more = len(posts) > limit
        posts = posts[:limit]
        return posts, encode_token(f"posts:{author_id}", before=posts[-1].id) if more else ""
