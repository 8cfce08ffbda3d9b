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
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from pictor.engagement.v1.engagement_service_pb2 import PostState
from pictor.posts.v1 import posts_pb2

from services.posts.cache import PostCache, compact, shown_to, with_state


class PostsReader(Protocol):
    async def visible_posts(self, viewer_id: int, post_ids: list[int], viewer_state: bool = True
                            ) -> list[posts_pb2.Post]: ...


class StatesReader(Protocol):
    async def post_states_if_up(self, viewer_id: int, post_ids: list[int]) -> dict[int, PostState]: ...


class FeedPages:
    def __init__(self, cache: PostCache, posts: PostsReader, engagement: StatesReader) -> None:
        self.cache = cache
        self.posts = posts
        self.engagement = engagement

    async def posts_for(self, viewer_id: int, post_ids: list[int]) -> list[posts_pb2.Post]:
        """The posts of a page, in its order, compact and with the viewer's state; deleted ones left out."""
        if not post_ids:
            return []
        shapes, states = await asyncio.gather(self.cache.get(post_ids),
                                              self.engagement.post_states_if_up(viewer_id, post_ids))
        missing = [p for p in post_ids if p not in shapes]
        if missing:
            # Posts checks who may see them as it shapes them (and caches the shapes).
            shapes.update((p.id, p) for p in await self.posts.visible_posts(viewer_id, missing, viewer_state=False))
        page = []
        for post_id in post_ids:
            post = shapes.get(post_id)
            if post is None or not shown_to(post, viewer_id):  # deleted (a tombstone), posts no longer shows
                continue  # it, or a video in it is not READY yet
            page.append(with_state(compact(post), states.get(post_id)))
        return page
