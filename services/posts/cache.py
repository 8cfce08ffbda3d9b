"""Redis cache of the viewer-independent part of posts (caption, author, media with signed URLs).

What is cached never decides who sees what: visibility and the viewer's own
state (liked, saved, counts) are looked up on every read. Posts fills and
invalidates it; the feed reads it too (services.feed.pages), never writes it.

  postv3:{id} the serialized posts.v1.Post, for CACHE_TTL_S; or a tombstone (services.posts.keys)

A shape outlives its media URLs, which expire within minutes so that a
revoked viewer loses them soon. Readers serve a shape only while every URL in
it has URL_LIFE_S left (fresh); an older one (stale) posts re-signs with
media's SignMediaUrls, which reads nothing, and writes back unless the shape
changed meanwhile (PostCache.refresh), rather than shaping the post again from
PostgreSQL, accounts and media. The feed signs a stale shape again itself, for
its own pages, and writes nothing back (services.feed.pages).

Media's media.updated events (an alt text changed, a video finished processing) evict the posts that use
the item (MediaChanges, in the posts worker). Readers fill with SET NX; a delete writes a tombstone that outlives any fill
a reader may still have in flight (it read the post before the delete), so a
deleted post can never come back from the cache; an edit overwrites.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from google.protobuf.message import Message
from pictor.engagement.v1.engagement_service_pb2 import PostState
from pictor.media.v1 import media_pb2
from pictor.posts.v1 import posts_pb2

from services.common.cluster import call_each, mget
from services.common.events import Event
from services.posts.keys import cached_post_key

# A shape is kept this long, so its author's name and avatar may be as old (an edit or a media change
# replaces it sooner): longer would shape posts again less often, and show renames later. Its media
# URLs are signed for PICTOR_MEDIA_URL_TTL + up to PICTOR_MEDIA_URL_BUCKET (4-5 minutes by default);
# a shape is served only while they have URL_LIFE_S left, and re-signed after.
CACHE_TTL_S = 600
URL_LIFE_S = 120
TOMBSTONE = b"-"
_NOT_READY = (media_pb2.Media.PROCESSING, media_pb2.Media.FAILED)
_EXPIRY = re.compile(r"[?&]exp=(\d+)")
_SIGNED = re.compile(r"(?<=[?&])exp=\d+&sig=[A-Za-z0-9_-]*")  # what a URL carries: `exp=...&sig=...`


def url_expiry(post: posts_pb2.Post) -> int | None:
    """When the first of the shape's media URLs expires (Unix seconds); None when it has none."""
    expiries = [int(found.group(1)) for m in post.media if m.url_template
                for found in [_EXPIRY.search(m.url_template)] if found]
    return min(expiries) if expiries else None


def is_fresh(post: posts_pb2.Post, now: float) -> bool:
    """Every media URL of the shape still has URL_LIFE_S to live."""
    return lives_on(url_expiry(post), now)


def lives_on(url_expiry: int | None, now: float) -> bool:
    """URLs that expire at `url_expiry` (None: a shape without any) still have URL_LIFE_S to live."""
    return url_expiry is None or url_expiry - now >= URL_LIFE_S


def _url_fields(media: media_pb2.Media) -> Iterator[tuple[Message, str]]:
    """Where a media item's signed URLs are: (message, field name) pairs."""
    yield media, "url_template"
    for variant in (*media.variants, *media.full_screen):
        yield variant, "url"
    if media.HasField("video"):
        yield media.video, "hls_url"
        for rendition in media.video.renditions:
            yield rendition, "url"


def resigned(post: posts_pb2.Post, signatures: Mapping[int, tuple[int, str]]) -> posts_pb2.Post | None:
    """A copy of the shape whose every media URL carries its item's new (exp, sig); None when an item
    with URLs has none in `signatures` (then it must be shaped again)."""
    copy = posts_pb2.Post()
    copy.CopyFrom(post)
    for media in copy.media:
        if not media.url_template:
            continue
        if media.id not in signatures:
            return None
        exp, sig = signatures[media.id]
        signed = f"exp={exp}&sig={sig}"
        for holder, name in _url_fields(media):
            setattr(holder, name, _SIGNED.sub(lambda _, new=signed: new, getattr(holder, name)))
    return copy


def signed_queries(post: posts_pb2.Post) -> tuple[tuple[int, str], ...] | None:
    """Each media item with URLs: its id and the `exp=...&sig=...` they all carry (what re-signing the item
    replaces); None when one item's URLs carry more than one."""
    found = []
    for media in post.media:
        if not media.url_template:
            continue
        queries = {query for holder, name in _url_fields(media) for query in _SIGNED.findall(getattr(holder, name))}
        if len(queries) != 1:
            return None
        found.append((media.id, queries.pop()))
    return tuple(found)


def shown_to(post: posts_pb2.Post, viewer_id: int) -> bool:
    return seen_by(post.author.id, all_ready(post), viewer_id)


def seen_by(author_id: int, ready: bool, viewer_id: int) -> bool:
    """A post holding a video that is not READY (still PROCESSING, or FAILED) is shown to its author
    only; everyone else sees it once every item is READY (media's media.updated evicts the shape then)."""
    return ready or author_id == viewer_id


def all_ready(post: posts_pb2.Post) -> bool:
    return all(m.state not in _NOT_READY for m in post.media)


# A list's media fields that drawing it does not need (all of them stay one GET /v1/posts/{id} or
# /v1/media/{id} away): every item's, and a photo's besides (always READY, without length or sound;
# a video keeps them, and its state matters to its author, who sees their post while it processes).
UNDRAWN = ("variants", "owner_id", "created_at", "captured_at", "edit")
PHOTO_UNDRAWN = (*UNDRAWN, "kind", "state", "failure_reason", "duration_ms", "has_audio")


def compact(post: posts_pb2.Post) -> posts_pb2.Post:
    """A post as lists send it (feed pages, grids, search): each media item with one signed URL
    template and its sizes (Media.url_template, Media.sizes) rather than eight signed variant URLs,
    and without what drawing does not need; a photo goes without kind (PHOTO when absent), and an
    empty alt text or author's avatar goes out (44 bytes of JSON of a post of two photos)."""
    for media in post.media:
        for name in PHOTO_UNDRAWN if media.kind != media_pb2.Media.VIDEO else UNDRAWN:
            media.ClearField(name)
        if not media.alt_text:
            media.ClearField("alt_text")
    if post.HasField("author") and not post.author.avatar_url:  # (clearing a field of an absent author sets it)
        post.author.ClearField("avatar_url")
    return post


def with_state(post: posts_pb2.Post, state: PostState | None) -> posts_pb2.Post:
    """The cached shape with one viewer's part (counts, liked_by_me, saved_by_me) set on it."""
    if state is not None:
        post.like_count, post.comment_count = state.like_count, state.comment_count
        post.liked_by_me, post.saved_by_me = state.liked_by_me, state.saved_by_me
    return post


# Delete a cached shape unless it is a tombstone.
_EVICT = "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
# KEYS: the shape. ARGV: the bytes read, the new ones. Replaces the shape, its time to live kept, only if it
# is still what was read: an edit, an eviction or a delete (its tombstone) meanwhile wins.
_REFRESH = ("if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL') "
            "return 1 end return 0")


@dataclass
class Cached:
    """What the cache holds for some posts: fresh shapes (None: deleted), and stale ones with their bytes."""

    fresh: dict[int, posts_pb2.Post | None] = field(default_factory=dict)
    stale: dict[int, tuple[posts_pb2.Post, bytes]] = field(default_factory=dict)


class PostCache:
    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        self._evict = client.register_script(_EVICT)
        self._refresh = client.register_script(_REFRESH)

    async def read(self, post_ids: list[int], now: float | None = None) -> Cached:
        """The cached shapes of these posts; a post cached nowhere is in neither map."""
        found = Cached()
        if not post_ids:
            return found
        now = time.time() if now is None else now
        for post_id, raw in zip(post_ids, await self.read_bytes(post_ids)):
            if raw == TOMBSTONE:
                found.fresh[post_id] = None
            elif raw is not None:
                post = posts_pb2.Post.FromString(raw)
                if is_fresh(post, now):
                    found.fresh[post_id] = post
                else:
                    found.stale[post_id] = (post, raw)
        return found

    async def read_bytes(self, post_ids: list[int]) -> list[bytes | None]:
        """What the cache holds for each post, as it holds it: a serialized shape, TOMBSTONE, or None."""
        return await mget(self.client, [cached_post_key(i) for i in post_ids])

    def queue_read_bytes(self, pipe: aioredis.client.Pipeline, post_ids: list[int]
                         ) -> Callable[[Iterator[Any]], list[bytes | None]]:
        """read_bytes queued on a pipeline of one Redis (one MGET: on a cluster, the keys span slots); the
        function returned takes its reply from the pipeline's."""
        pipe.mget([cached_post_key(i) for i in post_ids])
        return lambda replies: next(replies)

    async def get(self, post_ids: list[int]) -> dict[int, posts_pb2.Post | None]:
        """Cached shapes fit to serve by id; None for a post known deleted; absent when not cached or stale."""
        return (await self.read(post_ids)).fresh

    async def fill(self, posts: list[posts_pb2.Post]) -> None:
        async with self.client.pipeline(transaction=False) as pipe:
            for post in posts:
                pipe.set(cached_post_key(post.id), post.SerializeToString(), ex=CACHE_TTL_S, nx=True)
            await pipe.execute()

    async def refresh(self, stale: Mapping[int, bytes], posts: list[posts_pb2.Post]) -> None:
        """Stale shapes (their bytes as read) replaced by these, where nothing changed them meanwhile."""
        if not posts:
            return
        await call_each(self.client, self._refresh,
                        [([cached_post_key(post.id)], [stale[post.id], post.SerializeToString()]) for post in posts])

    async def replace(self, post: posts_pb2.Post) -> None:
        """After an edit: the new version wins over any fill in flight."""
        await self.client.set(cached_post_key(post.id), post.SerializeToString(), ex=CACHE_TTL_S)

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
