"""A feed page written as bytes (services.feed.pages, services.common.wire) parses as the page built from
messages would: the same posts, compact, with the viewer's fields, and the token."""

from __future__ import annotations

import random

from google.protobuf.internal.encoder import _VarintBytes
from pictor.accounts.v1 import accounts_pb2
from pictor.engagement.v1.engagement_service_pb2 import PostState
from pictor.feed.v1 import feed_service_pb2 as feed_pb
from pictor.media.v1 import media_pb2
from pictor.posts.v1 import posts_pb2

from services.common.wire import varint
from services.feed.pages import CompactShapes, Shape, page_reply, state_fields
from services.posts.cache import compact, with_state


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
    spliced = page_reply([Shape.of(p).wire + state_fields(states.get(p.id)) for p in posts], "next")
    assert feed_pb.GetFeedResponse.FromString(spliced) == built
    assert not feed_pb.GetFeedResponse.FromString(spliced).posts[0].media[0].variants
    assert feed_pb.GetFeedResponse.FromString(page_reply([], "")) == feed_pb.GetFeedResponse()


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
