"""A feed page's posts: shapes from posts' cache, the viewer's state from engagement's, no hop when warm.

Warm, a page costs no internal RPC, only Redis reads of caches other services
keep and fill, read here and never written:
- the viewer-independent shapes from posts' (services.posts.cache); posts is
  asked only for those its cache lacks, and fills the cache as it answers;
- counts, liked_by_me and saved_by_me from engagement's
  (services.engagement.warm_states.CachedStates); unless all of them are
  there, engagement is asked (GetPostStates), and fills what it lacked.
On one Redis both are read in one pipeline (CacheReads): one round trip.

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
The same goes for the page's JSON (page_body, what GET /v1/feed sends through
the gateway as a google.api.HttpBody): each shape keeps its JSON, printed as
the gateway would print it, up to the viewer's four fields, which are written
after it; so the gateway passes the page on rather than transcoding it.

A cached shape outlives its media URLs (services.posts.cache). When they have
less than URL_LIFE_S left, the feed signs them again itself, with media's key
for its freshest expiry (SigningKeys: one GetUrlSigningKey a minute, not a hop
a page): each item's `exp=...&sig=...` is replaced in the shape's bytes by one
as long, and the re-signed shape is kept for the bytes it came from. Posts'
cached bytes stay as they are; posts re-signs them when it reads them itself.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

import grpc
import redis.asyncio as aioredis
from google.api import httpbody_pb2
from google.protobuf import json_format
from pictor.engagement.v1.engagement_service_pb2 import PostState
from pictor.feed.v1 import feed_service_pb2
from pictor.posts.v1 import posts_pb2

from services.common.cluster import is_cluster
from services.common.redis_wire import WireRedis
from services.common.wire import message_field, varint_field
from services.engagement.warm_states import CachedStates
from services.media.signing import ExpiryKey
from services.posts.cache import TOMBSTONE, PostCache, all_ready, compact, lives_on, seen_by, signed_queries, url_expiry

log = logging.getLogger(__name__)

# Compact shapes kept made: the posts of the pages being read, each a few KB with the cached bytes it
# came from (some 50 MB when full). One pushed out is made again from its bytes when it is read next.
SHAPES_KEPT = 20_000
# After media failed to give its URL signing key: how long stale shapes go to posts before it is asked again.
KEY_RETRY_S = 5.0


class PostsReader(Protocol):
    async def visible_posts(self, viewer_id: int, post_ids: list[int], viewer_state: bool = True
                            ) -> list[posts_pb2.Post]: ...


class CacheReader(Protocol):
    """What a page reads of caches other services keep: posts' cached bytes (TOMBSTONE or None where it
    holds no shape) and the viewer's states."""

    async def read(self, viewer_id: int, post_ids: list[int]) -> tuple[list[bytes | None], dict[int, PostState]]: ...


class KeySource(Protocol):
    async def url_signing_key(self) -> tuple[int, bytes]: ...


@dataclass(frozen=True, slots=True)
class Shape:
    """A post as pages send it (compact, without any viewer's state), serialized, with what deciding
    whether to send it needs."""

    source: bytes | None  # posts' cached bytes it was made from; None when posts answered it
    wire: bytes
    json: bytes  # its JSON object without the viewer's fields and the closing brace (json_head)
    own_state: tuple[int, int, bool, bool]  # the viewer's fields as the shape holds them (VIEWER_FIELDS)
    author_id: int
    ready: bool  # every media item READY (else only its author sees it: services.posts.cache.seen_by)
    url_expiry: int | None
    signed: tuple[tuple[int, bytes], ...] | None  # each media item's id and `exp=...&sig=...` in `wire`

    @classmethod
    def of(cls, post: posts_pb2.Post, source: bytes | None = None) -> Shape:
        expiry, author_id, ready, queries = url_expiry(post), post.author.id, all_ready(post), signed_queries(post)
        signed = None if queries is None else tuple((media_id, q.encode()) for media_id, q in queries)
        post = compact(post)
        own_state = (post.like_count, post.comment_count, post.liked_by_me, post.saved_by_me)
        return cls(source, post.SerializeToString(), json_head(post), own_state, author_id, ready, expiry, signed)

    def shown_to(self, viewer_id: int) -> bool:
        return seen_by(self.author_id, self.ready, viewer_id)

    def resigned(self, key: ExpiryKey) -> Shape | None:
        """The shape with every media URL signed with `key`; None when that cannot keep its bytes' framing
        (a new `exp=...&sig=...` as long as the old one is replaced in place, inside the strings)."""
        if self.signed is None:
            return None
        wire, json_, signed = self.wire, self.json, []
        for media_id, old in self.signed:
            new = key.query(media_id).encode()
            if len(new) != len(old):
                return None
            wire, json_ = wire.replace(old, new), json_.replace(old, new)
            signed.append((media_id, new))
        return dataclasses.replace(self, wire=wire, json=json_, url_expiry=key.exp if signed else self.url_expiry,
                                   signed=tuple(signed))


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
        return self.keep(post_id, Shape.of(posts_pb2.Post.FromString(raw), raw))

    def keep(self, post_id: int, shape: Shape) -> Shape:
        """Keep a shape made from posts' bytes (shape.source), or from them and signed again."""
        self._made[post_id] = shape
        self._made.move_to_end(post_id)
        if len(self._made) > self.capacity:
            self._made.popitem(last=False)
        return shape


class SigningKeys:
    """Media's key for its freshest URL expiry (services.media.signing.ExpiryKey), asked for again once
    the URLs it signs would not have URL_LIFE_S to live: about once a bucket (a minute), one request at a
    time. None while media cannot say (then posts signs the shapes again, as it reads them); after a
    failure, media is asked again only KEY_RETRY_S later, so pages do not wait on it one by one."""

    def __init__(self, media: KeySource) -> None:
        self.media = media
        self._key: ExpiryKey | None = None
        self._asking: asyncio.Future[ExpiryKey | None] | None = None
        self._retry_at = 0.0

    async def current(self, now: float) -> ExpiryKey | None:
        if self._key is not None and lives_on(self._key.exp, now):
            return self._key
        if self._asking is None or self._asking.done():
            if now < self._retry_at:
                return None
            self._asking = asyncio.ensure_future(self._ask(now))
        return await asyncio.shield(self._asking)

    async def _ask(self, now: float) -> ExpiryKey | None:
        try:
            exp, key = await self.media.url_signing_key()
        except grpc.aio.AioRpcError as error:
            log.warning("media did not give its URL signing key (%s): posts signs stale shapes for %.0f s",
                        error.code(), KEY_RETRY_S)
            self._retry_at = now + KEY_RETRY_S
            return None
        self._key = ExpiryKey(exp, key)
        return self._key


# A page's post: its shape and the viewer's state (None when engagement could not say).
PagePost = tuple[Shape, PostState | None]

# The fields the splice writes: a post's viewer fields, a GetFeedResponse's two, a HttpBody's two.
VIEWER_FIELDS = ("like_count", "comment_count", "liked_by_me", "saved_by_me")
LIKE_COUNT, COMMENT_COUNT, LIKED_BY_ME, SAVED_BY_ME = (
    posts_pb2.Post.DESCRIPTOR.fields_by_name[name].number for name in VIEWER_FIELDS)
POSTS, NEXT_PAGE_TOKEN = (feed_service_pb2.GetFeedResponse.DESCRIPTOR.fields_by_name[name].number
                          for name in ("posts", "next_page_token"))
CONTENT_TYPE, DATA = (httpbody_pb2.HttpBody.DESCRIPTOR.fields_by_name[name].number
                      for name in ("content_type", "data"))
JSON_TYPE = b"application/json"


def state_fields(state: PostState | None) -> bytes:
    """The viewer's part of a post, to write after its shape (nothing when engagement could not say)."""
    if state is None:
        return b""
    return (varint_field(LIKE_COUNT, state.like_count) + varint_field(COMMENT_COUNT, state.comment_count)
            + varint_field(LIKED_BY_ME, state.liked_by_me) + varint_field(SAVED_BY_ME, state.saved_by_me))


def page_reply(posts: list[PagePost], next_page_token: str) -> bytes:
    """A GetFeedResponse, serialized: each post its shape's bytes with the viewer's fields written after."""
    parts = [message_field(POSTS, shape.wire + state_fields(state)) for shape, state in posts]
    if next_page_token:
        parts.append(message_field(NEXT_PAGE_TOKEN, next_page_token.encode()))
    return b"".join(parts)


def json_head(post: posts_pb2.Post) -> bytes:
    """A post's JSON object as the gateway prints it (envoy_config's print options: the protos' field
    names, fields without presence printed at their defaults), without the viewer's fields and the
    closing brace: json_state writes them (so they come last, where the gateway puts them in field
    order: the same object to a JSON reader)."""
    fields = json_format.MessageToDict(post, always_print_fields_with_no_presence=True,
                                       preserving_proto_field_name=True)
    for name in VIEWER_FIELDS:
        del fields[name]
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()[:-1]


# VIEWER_FIELDS, int64 as JSON strings (as the gateway prints them), and the post's closing brace.
_JSON_STATE = b',"like_count":"%d","comment_count":"%d","liked_by_me":%s,"saved_by_me":%s}'


def json_state(shape: Shape, state: PostState | None) -> bytes:
    """The viewer's fields and the closing brace of a post's JSON (the shape's own when engagement could
    not say)."""
    likes, comments, liked, saved = shape.own_state if state is None else (
        state.like_count, state.comment_count, state.liked_by_me, state.saved_by_me)
    return _JSON_STATE % (likes, comments, b"true" if liked else b"false", b"true" if saved else b"false")


def page_json(posts: list[PagePost], next_page_token: str) -> bytes:
    """The GetFeedResponse's JSON, as the gateway would print it."""
    return b"".join((b'{"posts":[', b",".join(shape.json + json_state(shape, state) for shape, state in posts),
                     b'],"next_page_token":', json.dumps(next_page_token).encode(), b"}"))


def page_body(posts: list[PagePost], next_page_token: str) -> bytes:
    """A google.api.HttpBody, serialized, holding the page's JSON: what GetFeedJson answers, and the
    gateway sends on as it is."""
    return message_field(CONTENT_TYPE, JSON_TYPE) + message_field(DATA, page_json(posts, next_page_token))


class CacheReads:
    """A page's reads of posts' cache and engagement's (CachedStates): one pipeline on one Redis, so one
    round trip, not three; on a Redis Cluster, whose MGET spans slots, both reads at once."""

    def __init__(self, cache: PostCache, states: CachedStates, reads: aioredis.Redis | WireRedis | None = None) -> None:
        """reads: what the pipeline goes through (services.common.redis_wire, to the same Redis), else the
        cache's client."""
        self.cache = cache
        self.states = states
        self.pipelined = not is_cluster(cache.client) and states.client is cache.client
        self.reads = reads or cache.client

    async def read(self, viewer_id: int, post_ids: list[int]) -> tuple[list[bytes | None], dict[int, PostState]]:
        if not self.pipelined:
            return await asyncio.gather(self.cache.read_bytes(post_ids),
                                        self.states.post_states_if_up(viewer_id, post_ids))
        async with self.reads.pipeline(transaction=False) as pipe:
            shapes_from = self.cache.queue_read_bytes(pipe, post_ids)
            states_from = self.states.queue(pipe, viewer_id, post_ids)
            replies = iter(await pipe.execute())
        shapes = shapes_from(replies)
        return shapes, await self.states.or_engagement(viewer_id, post_ids, states_from(replies))


class FeedPages:
    def __init__(self, caches: CacheReader, posts: PostsReader, keys: SigningKeys,
                 shapes: CompactShapes | None = None) -> None:
        self.caches = caches
        self.posts = posts
        self.keys = keys
        self.shapes = shapes or CompactShapes()

    async def posts_for(self, viewer_id: int, post_ids: list[int]) -> list[PagePost]:
        """The posts of a page, in its order, each its compact shape and the viewer's state; deleted ones
        left out."""
        if not post_ids:
            return []
        cached, states = await self.caches.read(viewer_id, post_ids)
        now = time.time()
        shapes: dict[int, Shape | None] = {}
        stale: dict[int, Shape] = {}
        for post_id, raw in zip(post_ids, cached):
            if raw == TOMBSTONE:
                shapes[post_id] = None  # deleted
            elif raw is not None:
                shape = self.shapes.of(post_id, raw)
                if lives_on(shape.url_expiry, now):
                    shapes[post_id] = shape
                else:
                    stale[post_id] = shape
        if stale and (key := await self.keys.current(now)) is not None:
            for post_id, shape in stale.items():
                resigned = shape.resigned(key)
                if resigned is not None:  # else posts signs it again
                    shapes[post_id] = self.shapes.keep(post_id, resigned)
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
            page.append((shape, states.get(post_id)))
        return page
