"""A feed page's posts: shapes from posts' cache, the viewer's state from engagement's, no hop when warm.

Warm, a page costs no internal RPC, only Redis reads of caches other services
keep and fill, read here and never written:
- the viewer-independent shapes from posts' (services.posts.cache); posts is
  asked only for those its cache lacks, and fills the cache as it answers;
- counts, liked_by_me and saved_by_me from engagement's
  (services.engagement.warm_states.CachedStates); unless all of them are
  there, engagement is asked (GetPostStates), and fills what it lacked.

Who may see which post is already settled by the feed's own keys: a page
holds posts of the viewer, of authors they follow (approved follows only) and
of followed celebrities, minus muted and blocked authors; the fan-out keeps
those keys from graph's events (services.feed.fanout).

Pages are compact (services.posts.cache.compact): each media item goes out as
one signed URL template and its sizes, not as eight signed variant URLs.

And a warm page is spliced, not built: each post goes out as its compact
shape's bytes followed by the viewer's four fields (services.common.wire), and
the reply is those posts joined (page_reply). A shape is parsed and compacted
once per version of posts' cached bytes (CompactShapes), not once per page.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

from pictor.engagement.v1.engagement_service_pb2 import PostState
from pictor.feed.v1 import feed_service_pb2
from pictor.posts.v1 import posts_pb2

from services.common.wire import message_field, varint_field
from services.posts.cache import TOMBSTONE, PostCache, all_ready, compact, lives_on, seen_by, url_expiry

# Compact shapes kept made: the posts of the pages being read, each a few KB with the cached bytes it
# came from (some 50 MB when full). One pushed out is made again from its bytes when it is read next.
SHAPES_KEPT = 20_000


class PostsReader(Protocol):
    async def visible_posts(self, viewer_id: int, post_ids: list[int], viewer_state: bool = True
                            ) -> list[posts_pb2.Post]: ...


class StatesReader(Protocol):
    async def post_states_if_up(self, viewer_id: int, post_ids: list[int]) -> dict[int, PostState]: ...


@dataclass(frozen=True, slots=True)
class Shape:
    """A post as pages send it (compact, without any viewer's state), serialized, with what deciding
    whether to send it needs."""

    source: bytes | None  # posts' cached bytes it was made from; None when posts answered it
    wire: bytes
    author_id: int
    ready: bool  # every media item READY (else only its author sees it: services.posts.cache.seen_by)
    url_expiry: int | None

    @classmethod
    def of(cls, post: posts_pb2.Post, source: bytes | None = None) -> Shape:
        expiry, author_id, ready = url_expiry(post), post.author.id, all_ready(post)
        return cls(source, compact(post).SerializeToString(), author_id, ready, expiry)

    def shown_to(self, viewer_id: int) -> bool:
        return seen_by(self.author_id, self.ready, viewer_id)


class CompactShapes:
    """Shapes made from posts' cached bytes, once per version: an edit, a re-signing or a media change
    writes new bytes there, so bytes equal to the ones a shape was made from give the same shape."""

    def __init__(self, capacity: int = SHAPES_KEPT) -> None:
        self.capacity = capacity
        self._made: OrderedDict[int, Shape] = OrderedDict()

    def of(self, post_id: int, raw: bytes) -> Shape:
        shape = self._made.get(post_id)
        if shape is not None and shape.source == raw:
            self._made.move_to_end(post_id)
            return shape
        shape = self._made[post_id] = Shape.of(posts_pb2.Post.FromString(raw), raw)
        self._made.move_to_end(post_id)
        if len(self._made) > self.capacity:
            self._made.popitem(last=False)
        return shape


# The field numbers the splice writes: a post's viewer fields, and a GetFeedResponse's two.
LIKE_COUNT, COMMENT_COUNT, LIKED_BY_ME, SAVED_BY_ME = (
    posts_pb2.Post.DESCRIPTOR.fields_by_name[name].number
    for name in ("like_count", "comment_count", "liked_by_me", "saved_by_me"))
POSTS, NEXT_PAGE_TOKEN = (feed_service_pb2.GetFeedResponse.DESCRIPTOR.fields_by_name[name].number
                          for name in ("posts", "next_page_token"))


def state_fields(state: PostState | None) -> bytes:
    """The viewer's part of a post, to write after its shape (nothing when engagement could not say)."""
    if state is None:
        return b""
    return (varint_field(LIKE_COUNT, state.like_count) + varint_field(COMMENT_COUNT, state.comment_count)
            + varint_field(LIKED_BY_ME, state.liked_by_me) + varint_field(SAVED_BY_ME, state.saved_by_me))


def page_reply(posts: list[bytes], next_page_token: str) -> bytes:
    """A GetFeedResponse, serialized, from its posts serialized."""
    parts = [message_field(POSTS, post) for post in posts]
    if next_page_token:
        parts.append(message_field(NEXT_PAGE_TOKEN, next_page_token.encode()))
    return b"".join(parts)


class FeedPages:
    def __init__(self, cache: PostCache, posts: PostsReader, engagement: StatesReader,
                 shapes: CompactShapes | None = None) -> None:
        self.cache = cache
        self.posts = posts
        self.engagement = engagement
        self.shapes = shapes or CompactShapes()

    async def posts_for(self, viewer_id: int, post_ids: list[int]) -> list[bytes]:
        """The posts of a page, in its order, each serialized: compact and with the viewer's state; deleted
        ones left out."""
        if not post_ids:
            return []
        cached, states = await asyncio.gather(self.cache.read_bytes(post_ids),
                                              self.engagement.post_states_if_up(viewer_id, post_ids))
        now = time.time()
        shapes: dict[int, Shape | None] = {}
        for post_id, raw in zip(post_ids, cached):
            if raw == TOMBSTONE:
                shapes[post_id] = None  # deleted
            elif raw is not None:
                shape = self.shapes.of(post_id, raw)
                if lives_on(shape.url_expiry, now):  # else posts signs its URLs again
                    shapes[post_id] = shape
        missing = [p for p in post_ids if p not in shapes]
        if missing:
            # Posts checks who may see them as it shapes them (and caches the shapes).
            shapes.update((p.id, Shape.of(p)) for p in await self.posts.visible_posts(viewer_id, missing,
                                                                                       viewer_state=False))
        page = []
        for post_id in post_ids:
            shape = shapes.get(post_id)
            if shape is None or not shape.shown_to(viewer_id):  # deleted (a tombstone), posts no longer shows
                continue  # it, or a video in it is not READY yet
            page.append(shape.wire + state_fields(states.get(post_id)))
        return page
