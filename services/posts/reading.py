"""Posts as their JSON shape, as one viewer sees them: the hot read path of feeds and grids.

A post's shape has two parts. The viewer-independent part (caption, tags,
location, the author's summary, the media with their signed URLs) is built
from accounts and media in batches and cached (services.posts.cache). The
viewer's part (whether they may see it at all, their like and save, the
counts) is looked up on every read, concurrently: graph for visibility,
engagement's answers for the rest (from its cache when it holds them all:
services.engagement.warm_states.CachedStates).
"""

from __future__ import annotations

import asyncio
from typing import Protocol, TypeVar

from pictor.engagement.v1.engagement_service_pb2 import PostState
from pictor.posts.v1 import posts_pb2

from services.common.clients import AccountsClient, EngagementClient, MediaClient, user_summary
from services.common.errors import InvalidArgument
from services.posts.cache import PostCache, resigned, shown_to, with_state
from services.posts.service import MAX_BATCH, Post, PostsService

T = TypeVar("T")


async def _known(value: T) -> T:
    """An answer already at hand, where asyncio.gather wants an awaitable."""
    return value


class StatesReader(Protocol):
    async def post_states_if_up(self, viewer_id: int, post_ids: list[int]) -> dict[int, PostState]: ...


class PostHydrator:
    """Builds posts' shapes from their rows, each dependency asked once per batch."""

    def __init__(self, accounts: AccountsClient, media: MediaClient, engagement: EngagementClient,
                 states: StatesReader) -> None:
        self.accounts = accounts
        self.media = media
        self.engagement = engagement
        self.post_states = states

    async def shared(self, posts: list[Post]) -> list[posts_pb2.Post]:
        """The viewer-independent part: what the cache keeps."""
        if not posts:
            return []
        authors, media = await asyncio.gather(
            self.accounts.get_users([p.author_id for p in posts]),
            self.media.get_media([m for p in posts for m in p.media_ids]))
        result = []
        for post in posts:
            message = posts_pb2.Post(id=post.id, caption=post.caption, hashtags=post.hashtags,
                                     mentions=post.mentions, media=[media[m] for m in post.media_ids if m in media])
            if post.author_id in authors:
                message.author.CopyFrom(user_summary(authors[post.author_id]))
            if post.location is not None:
                message.location.CopyFrom(posts_pb2.Location(
                    name=post.location.name, lat=post.location.lat, lng=post.location.lng))
            if post.created_at is not None:
                message.created_at.FromDatetime(post.created_at)
            result.append(message)
        return result

    async def states(self, viewer_id: int, post_ids: list[int]) -> dict[int, PostState]:
        """Counts, liked_by_me and saved_by_me (for `viewer_id`; 0 is signed out)."""
        return await self.post_states.post_states_if_up(viewer_id, post_ids)


class PostReader:
    def __init__(self, service: PostsService, hydrator: PostHydrator, cache: PostCache) -> None:
        self.service = service
        self.hydrator = hydrator
        self.cache = cache

    async def read(self, viewer_id: int, post_ids: list[int], viewer_state: bool = True,
                   viewable: set[int] | None = None) -> list[posts_pb2.Post]:
        """The posts the viewer may see, in the order asked, fully shaped (without counts, likes and saves
        unless `viewer_state`); the rest left out. `viewable`: the authors the caller has just checked
        the viewer may see (a profile's grid), so graph is not asked again; posts by others are left out."""
        if len(post_ids) > MAX_BATCH:
            raise InvalidArgument("post_ids", f"at most {MAX_BATCH} posts per call")
        wanted = list(dict.fromkeys(post_ids))
        found = await self.cache.read(wanted)
        cached = found.fresh
        stale = {i: raw for i, (_, raw) in found.stale.items()}
        if stale:
            # Only their URLs are old: media signs them again, nothing is read.
            signatures = await self.hydrator.media.sign_urls([m.id for p, _ in found.stale.values() for m in p.media])
            fresh = [p for p in (resigned(post, signatures) for post, _ in found.stale.values()) if p is not None]
            cached.update((p.id, p) for p in fresh)
            await self.cache.refresh(stale, fresh)
        missing = [i for i in wanted if i not in cached]
        if missing:
            shaped = await self.hydrator.shared(await self.service.live(missing))
            # Stale shapes media would not sign again are shaped anew, and replace what was read.
            await self.cache.fill([p for p in shaped if p.id not in stale])
            await self.cache.refresh(stale, [p for p in shaped if p.id in stale])
            cached.update((p.id, p) for p in shaped)
        live = [cached[i] for i in wanted if cached.get(i) is not None]
        allowed, states = await asyncio.gather(
            self.service.viewable_authors(viewer_id, list({p.author.id for p in live})) if viewable is None
            else _known(viewable),
            self.hydrator.states(viewer_id, [p.id for p in live]) if viewer_state else _known({}))
        return [with_state(p, states.get(p.id)) for p in live if p.author.id in allowed and shown_to(p, viewer_id)]

    async def saved(self, viewer_id: int, size: int, token: str) -> tuple[list[posts_pb2.Post], str]:
        """A page of the viewer's saved posts (engagement keeps which), those they can no longer see left out."""
        post_ids, next_token = await self.hydrator.engagement.saved_post_ids(viewer_id, size, token)
        return (await self.read(viewer_id, post_ids) if post_ids else []), next_token

    async def shape(self, viewer_id: int, post: Post) -> posts_pb2.Post:
        """A post the caller has just written (or checked): shaped, and the cache refreshed."""
        shared, = await self.hydrator.shared([post])
        await self.cache.replace(shared)
        return with_state(shared, (await self.hydrator.states(viewer_id, [post.id])).get(post.id))

    async def shape_uncached(self, viewer_id: int, post: Post) -> posts_pb2.Post:
        """A post only some may see (hidden by a moderator): shaped, and kept out of the shared cache."""
        shared, = await self.hydrator.shared([post])
        return with_state(shared, (await self.hydrator.states(viewer_id, [post.id])).get(post.id))

    async def forget(self, post_id: int) -> None:
        await self.cache.forget(post_id)
