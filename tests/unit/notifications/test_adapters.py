"""What notifications takes from other services' answers."""

from __future__ import annotations

from pictor.media.v1 import media_pb2
from pictor.posts.v1 import posts_pb2

from services.notifications.adapters import thumbnail_url


def test_a_thumbnail_comes_from_the_smallest_jpeg_or_from_a_compact_items_template():
    full = posts_pb2.Post(media=[media_pb2.Media(variants=[
        media_pb2.Variant(size=320, format="jpeg", url="a"), media_pb2.Variant(size=150, format="webp", url="b"),
        media_pb2.Variant(size=150, format="jpeg", url="c")])])
    compact = posts_pb2.Post(media=[media_pb2.Media(url_template="/v1/media/1/{variant}?sig=x", sizes=[320, 150])])
    assert (thumbnail_url(full), thumbnail_url(compact), thumbnail_url(posts_pb2.Post())) == \
        ("c", "/v1/media/1/150.jpg?sig=x", "")
