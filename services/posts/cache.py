"""Redis cache of the viewer-independent part of posts (caption, author, media with signed URLs).

What is cached never decides who sees what: visibility and the viewer's own
state (liked, saved, counts) are looked up on every read. Posts fills and
invalidates it; the feed reads it too (services.feed.pages), never writes it.

  postv2:{id} the serialized posts.v1.Post, for up to CACHE_TTL_S (cache_ttl); or a tombstone (services.posts.keys)

Media's media.updated events (an alt text changed, a video finished processing) evict the posts that use
the item (MediaChanges, in the posts worker). Readers fill with SET NX; a delete writes a tombstone that outlives any fill
a reader may still have in flight (it read the post before the delete), so a
deleted post can never come back from the cache; an edit overwrites.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import redis.asyncio as aioredis
from pictor.engagement.v1.engagement_service_pb2 import PostState
from pictor.media.v1 import media_pb2
from pictor.posts.v1 import posts_pb2

from services.common.events import Event
from services.posts.keys import cached_post_key

# A shape is kept this long at most, and never past the point where its media URLs (signed
# for PICTOR_MEDIA_URL_TTL + up to PICTOR_MEDIA_URL_BUCKET, 4-5 minutes by default, so that a
# revoked viewer loses them soon) would have less than URL_LIFE_S left when served: with the
# defaults a shape is cached for 2-3 minutes.
CACHE_TTL_S = 1800
URL_LIFE_S = 120
TOMBSTONE = b"-"
_NOT_READY = (media_pb2.Media.PROCESSING, media_pb2.Media.FAILED)


def cache_ttl(post: posts_pb2.Post, now: float) -> int:
    """How long the shape may be served from the cache (at least a second)."""
    expiries = [int(exp[0]) for m in post.media if m.url_template
                for exp in [parse_qs(urlsplit(m.url_template).query).get("exp")] if exp and exp[0].isdigit()]
    if not expiries:
        return CACHE_TTL_S
    return max(1, min(CACHE_TTL_S, int(min(expiries) - now) - URL_LIFE_S))


def shown_to(post: posts_pb2.Post, viewer_id: int) -> bool:
    """A post holding a video that is not READY (still PROCESSING, or FAILED) is shown to its author
    only; everyone else sees it once every item is READY (media's media.updated evicts the shape then)."""
    return post.author.id == viewer_id or all(m.state not in _NOT_READY for m in post.media)


def with_state(post: posts_pb2.Post, state: PostState | None) -> posts_pb2.Post:
    """The cached shape with one viewer's part (counts, liked_by_me, saved_by_me) set on it."""
    if state is not None:
        post.like_count, post.comment_count = state.like_count, state.comment_count
        post.liked_by_me, post.saved_by_me = state.liked_by_me, state.saved_by_me
    return post


# Delete a cached shape unless it is a tombstone.
_EVICT = "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


class PostCache:
    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        self._evict = client.register_script(_EVICT)

    async def get(self, post_ids: list[int]) -> dict[int, posts_pb2.Post | None]:
        """Cached posts by id; None for a post known deleted; absent when not cached."""
        if not post_ids:
            return {}
        found: dict[int, posts_pb2.Post | None] = {}
        for post_id, raw in zip(post_ids, await self.client.mget([cached_post_key(i) for i in post_ids])):
            if raw == TOMBSTONE:
                found[post_id] = None
            elif raw is not None:
                found[post_id] = posts_pb2.Post.FromString(raw)
        return found

    async def fill(self, posts: list[posts_pb2.Post]) -> None:
        async with self.client.pipeline(transaction=False) as pipe:
            for post in posts:
                pipe.set(cached_post_key(post.id), post.SerializeToString(), ex=cache_ttl(post, time.time()), nx=True)
            await pipe.execute()

    async def replace(self, post: posts_pb2.Post) -> None:
        """After an edit: the new version wins over any fill in flight."""
        await self.client.set(cached_post_key(post.id), post.SerializeToString(), ex=cache_ttl(post, time.time()))

    async def evict(self, post_ids: list[int]) -> None:
        """After a change elsewhere (a media item's alt text): the next read shapes these posts again.
        A tombstone stays (one script per key: a delete never comes back)."""
        for post_id in post_ids:
            await self._evict(keys=[cached_post_key(post_id)], args=[TOMBSTONE])

    async def forget(self, post_id: int) -> None:
        """After a delete."""
        await self.client.set(cached_post_key(post_id), TOMBSTONE, ex=CACHE_TTL_S * 2)


MEDIA_GROUP = "post-media"
MEDIA_TOPICS = ["media"]


class MediaChanges:
    """The consumer group "post-media": a media item's alt text changed (media.updated, naming the posts
    that use it), so their cached shapes go; the next read asks media again. A repeat is harmless."""

    def __init__(self, cache: PostCache) -> None:
        self.cache = cache

    async def handle(self, event: Event) -> None:
        if event.type == "media.updated":
            await self.cache.evict([int(p) for p in event.data["post_ids"]])
