"""A feed page written as bytes (services.feed.pages, services.common.wire) parses as the page built from
messages would: the same posts, compact, with the viewer's fields, and the token; its JSON is that page's
JSON as the gateway prints it; a stale shape is signed again in its bytes and its JSON, as posts would
sign it."""

from __future__ import annotations

import asyncio
import json
import random
import time

import grpc
from google.api import httpbody_pb2
from google.protobuf import json_format
from google.protobuf.internal.encoder import _VarintBytes
from pictor.accounts.v1 import accounts_pb2
from pictor.engagement.v1.engagement_service_pb2 import PostState
from pictor.feed.v1 import feed_service_pb2 as feed_pb
from pictor.media.v1 import media_pb2
from pictor.posts.v1 import posts_pb2

from services.common.wire import varint
from services.feed.pages import (
    KEY_RETRY_S,
    CompactShapes,
    FeedPages,
    Shape,
    SigningKeys,
    page_body,
    page_json,
    page_reply,
    state_fields,
)
from services.media.signing import UrlSigner
from services.posts.cache import compact, resigned, url_expiry, with_state


def shape(post_id: int, caption: str = "hi", video_state: int | None = None) -> posts_pb2.Post:
    """A post as posts caches it: eight signed variant URLs besides the template, no viewer's state."""
    photo = media_pb2.Media(id=post_id * 10, kind=media_pb2.Media.PHOTO, state=media_pb2.Media.READY, width=1080,
                            height=1080, url_template=f"http://x/m/{post_id}/{{variant}}?exp=9999999999&sig=s",
                            variants=[media_pb2.Variant(url=f"http://x/{w}", width=w)
                                      for w in (150, 320, 640, 1080)], owner_id=7)
    media = [photo]
    if video_state is not None:
        media.append(media_pb2.Media(id=post_id * 10 + 1, kind=media_pb2.Media.VIDEO, state=video_state))
    return posts_pb2.Post(id=post_id, author=accounts_pb2.UserSummary(id=7, username="ada"),
                          media=media, caption=caption, hashtags=["x"])


def test_varints_are_protobufs_own_for_every_size_and_sign():
    values = [*range(20_000), *(random.randrange(1 << 63) for _ in range(5_000)), -1, -300, -(1 << 63)]
    assert all(varint(v) == _VarintBytes(v & (1 << 64) - 1) for v in values)


def test_the_viewers_fields_written_after_a_shape_win_zeros_included():
    counted = shape(1)
    counted.like_count, counted.comment_count, counted.liked_by_me, counted.saved_by_me = 5, 2, True, True
    after = posts_pb2.Post.FromString(counted.SerializeToString() + state_fields(PostState(post_id=1)))
    assert (after.like_count, after.comment_count, after.liked_by_me, after.saved_by_me) == (0, 0, False, False)
    state = PostState(post_id=1, like_count=70_000, comment_count=3, liked_by_me=True, saved_by_me=False)
    after = posts_pb2.Post.FromString(shape(1).SerializeToString() + state_fields(state))
    assert (after.like_count, after.comment_count, after.liked_by_me, after.saved_by_me) == (70_000, 3, True, False)
    assert state_fields(None) == b""  # engagement could not say: the shape goes as it is


def test_a_spliced_page_parses_as_the_page_built_from_messages():
    posts = [shape(i, caption=f"post {i}") for i in (3, 2, 1)]
    states = {3: PostState(post_id=3, like_count=4, liked_by_me=True), 1: PostState(post_id=1, saved_by_me=True)}
    built = feed_pb.GetFeedResponse(next_page_token="next", posts=[
        with_state(compact(posts_pb2.Post.FromString(p.SerializeToString())), states.get(p.id)) for p in posts])
    spliced = page_reply([(Shape.of(p), states.get(p.id)) for p in posts], "next")
    assert feed_pb.GetFeedResponse.FromString(spliced) == built
    assert not feed_pb.GetFeedResponse.FromString(spliced).posts[0].media[0].variants
    assert feed_pb.GetFeedResponse.FromString(page_reply([], "")) == feed_pb.GetFeedResponse()


def printed(reply: feed_pb.GetFeedResponse) -> dict:
    """A reply's JSON as the gateway prints it (envoy_config's print options)."""
    return json_format.MessageToDict(reply, always_print_fields_with_no_presence=True,
                                     preserving_proto_field_name=True)


def test_a_pages_json_is_the_json_the_gateway_would_print_of_the_page():
    posts = [shape(i, caption=f"post {i} 🌊 \"quoted\" \\ ünïcode") for i in (3, 2, 1)]
    posts[2].location.name, posts[2].location.lat, posts[2].location.lng = "Lisboa", 38.7223, -9.1393
    posts[2].created_at.FromSeconds(1_700_000_000)
    posts[1].like_count, posts[1].liked_by_me = 12, True  # the shape's own state: sent when engagement cannot say
    states = {3: PostState(post_id=3, like_count=4, comment_count=1 << 40, liked_by_me=True),
              1: PostState(post_id=1, saved_by_me=True)}
    built = feed_pb.GetFeedResponse(next_page_token='n"e/x\\t', posts=[
        with_state(compact(posts_pb2.Post.FromString(p.SerializeToString())), states.get(p.id)) for p in posts])
    page = [(Shape.of(p), states.get(p.id)) for p in posts]
    written = page_json(page, built.next_page_token)
    assert json.loads(written) == printed(built)
    assert json.loads(written)["posts"][1]["like_count"] == "12" and json.loads(written)["posts"][0]["comment_count"] \
        == str(1 << 40)  # int64 as JSON strings, as the gateway prints them
    assert "🌊".encode() in written  # UTF-8 as it is, not escaped
    assert json.loads(page_json([], "")) == printed(feed_pb.GetFeedResponse()) == {"posts": [], "next_page_token": ""}
    body = httpbody_pb2.HttpBody.FromString(page_body(page, "next"))
    assert body.content_type == "application/json" and body.data == page_json(page, "next")


def test_a_shape_is_made_once_per_version_of_the_cached_bytes():
    shapes = CompactShapes(capacity=2)
    first = shape(1).SerializeToString()
    made = shapes.of(1, first)
    assert shapes.of(1, bytes(first)) is made  # equal bytes read again: the same shape, not parsed again
    edited = shapes.of(1, shape(1, caption="edited").SerializeToString())
    assert edited is not made and posts_pb2.Post.FromString(edited.wire).caption == "edited"
    other, third = shape(2).SerializeToString(), shape(3).SerializeToString()
    kept = shapes.of(2, other)
    assert shapes.of(1, shape(1, caption="edited").SerializeToString()) is edited  # 1 used last, 2 before
    shapes.of(3, third)  # over capacity: the least recently read (2) goes
    assert shapes.of(2, other) is not kept


def test_a_post_with_a_video_not_ready_is_shown_to_its_author_only():
    processing = Shape.of(shape(1, video_state=media_pb2.Media.PROCESSING))
    ready = Shape.of(shape(2, video_state=media_pb2.Media.READY))
    assert processing.shown_to(7) and not processing.shown_to(8)
    assert ready.shown_to(8)
    assert Shape.of(shape(3)).url_expiry == 9999999999


SIGNER = UrlSigner(b"k" * 32, ttl_s=240, bucket_s=60)


def signed_shape(post_id: int, now: float) -> posts_pb2.Post:
    """A post as posts caches it from media's answers: a photo and a video, every URL of an item carrying
    the item's `exp=...&sig=...`."""
    def media(media_id: int, kind: int, files: list[str]) -> media_pb2.Media:
        exp, sig = SIGNER.sign(media_id, now)

        def url(file: str) -> str:
            return f"http://x/v1/media/{media_id}/{file}?exp={exp}&sig={sig}"

        item = media_pb2.Media(id=media_id, kind=kind, state=media_pb2.Media.READY, url_template=url("{variant}"),
                               variants=[media_pb2.Variant(url=url(f), width=150) for f in files],
                               full_screen=[media_pb2.Variant(url=url("fs-1080.jpg"), width=1080)])
        if kind == media_pb2.Media.VIDEO:
            item.video.hls_url = url("master.m3u8")
            item.video.renditions.add(url=url("720.mp4"))
        return item

    return posts_pb2.Post(id=post_id, author=accounts_pb2.UserSummary(id=7, username="ada"), caption="x" * 40,
                          media=[media(post_id * 10, media_pb2.Media.PHOTO, ["150.jpg", "1080.webp"]),
                                 media(post_id * 10 + 1, media_pb2.Media.VIDEO, ["poster.jpg"])])


def test_a_stale_shape_signed_again_in_its_bytes_is_what_posts_would_sign():
    then = time.time() - 600
    post = signed_shape(1, then)
    key = SIGNER.current_key(time.time())
    shape = Shape.of(posts_pb2.Post.FromString(post.SerializeToString()))
    again = shape.resigned(key)
    assert again is not None and again.url_expiry == key.exp > shape.url_expiry == url_expiry(post)
    by_posts = resigned(post, {m.id: (key.exp, key.signature(m.id)) for m in post.media})
    assert posts_pb2.Post.FromString(again.wire) == compact(by_posts)
    assert json.loads(page_json([(again, None)], "")) == printed(feed_pb.GetFeedResponse(posts=[compact(by_posts)]))
    for media in posts_pb2.Post.FromString(again.wire).media:
        exp, sig = media.url_template.split("?")[1].replace("exp=", "").split("&sig=")
        SIGNER.verify(media.id, int(exp), sig, time.time())
    assert again.resigned(SIGNER.current_key(time.time() + 120)).url_expiry > key.exp  # and again, later


def test_a_shape_that_cannot_be_signed_in_place_goes_to_posts():
    key = SIGNER.current_key(time.time())
    assert Shape.of(shape(1)).resigned(key) is None  # "sig=s": the new signature would not fit in its place
    mixed = signed_shape(2, time.time() - 600)
    mixed.media[0].full_screen[0].url = mixed.media[0].full_screen[0].url.replace("exp=", "exp=1")
    assert Shape.of(mixed).resigned(key) is None  # one item's URLs carry two signatures: which to replace?
    unsigned = posts_pb2.Post(id=3, caption="text only")
    assert Shape.of(unsigned).resigned(key) == Shape.of(unsigned)  # nothing to sign


class Media:
    def __init__(self, failing: bool = False) -> None:
        self.asked, self.failing = 0, failing

    async def url_signing_key(self) -> tuple[int, bytes]:
        self.asked += 1
        await asyncio.sleep(0.01)
        if self.failing:
            raise grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata())
        key = SIGNER.current_key(time.time())
        return key.exp, key.key


async def test_the_feed_asks_media_for_its_key_once_a_bucket_and_once_at_a_time():
    media = Media()
    keys = SigningKeys(media)
    now = time.time()
    first = await asyncio.gather(*(keys.current(now) for _ in range(20)))
    assert media.asked == 1 and len(set(first)) == 1 and first[0] == SIGNER.current_key(now)
    assert await keys.current(now + 60) is first[0] and media.asked == 1  # its URLs still live long enough
    await keys.current(first[0].exp - 119)  # they would not: asked again
    assert media.asked == 2


async def test_without_medias_key_media_is_asked_again_only_after_a_pause():
    media = Media(failing=True)
    keys = SigningKeys(media)
    now = time.time()
    assert await keys.current(now) is None
    assert await keys.current(now + KEY_RETRY_S - 1) is None and media.asked == 1  # the next pages wait on nobody
    media.failing = False
    assert await keys.current(now + KEY_RETRY_S) == SIGNER.current_key(time.time()) and media.asked == 2


class Caches:
    """The caches as the feed reads them: posts' cached bytes of each post, and no viewer's state."""

    def __init__(self, posts: list[posts_pb2.Post]) -> None:
        self.raw = {p.id: p.SerializeToString() for p in posts}

    async def read(self, viewer_id: int, post_ids: list[int]) -> tuple[list[bytes | None], dict[int, PostState]]:
        return [self.raw.get(p) for p in post_ids], {}


class Posts:
    def __init__(self, posts: list[posts_pb2.Post]) -> None:
        self.posts, self.asked = {p.id: p for p in posts}, []

    async def visible_posts(self, viewer_id: int, post_ids: list[int], viewer_state: bool = True
                            ) -> list[posts_pb2.Post]:
        self.asked.append(post_ids)
        return [self.posts[p] for p in post_ids]


async def test_stale_shapes_go_to_posts_while_media_cannot_give_its_key_and_not_once_it_can():
    stale, fresh = signed_shape(1, time.time() - 600), signed_shape(2, time.time())
    signed_now = signed_shape(1, time.time())
    media, posts = Media(failing=True), Posts([signed_now])
    pages = FeedPages(Caches([stale, fresh]), posts, SigningKeys(media))

    page = [posts_pb2.Post.FromString(shape.wire) for shape, _ in await pages.posts_for(5, [1, 2])]
    assert posts.asked == [[1]] and [p.id for p in page] == [1, 2]
    assert page[0] == compact(signed_now)  # posts' fresh signatures, not the stale ones

    media.failing = False
    pages = FeedPages(Caches([stale, fresh]), posts, SigningKeys(media))
    page = [posts_pb2.Post.FromString(shape.wire) for shape, _ in await pages.posts_for(5, [1, 2])]
    assert posts.asked == [[1]] and url_expiry(page[0]) > url_expiry(stale)  # signed by the feed itself
