"""How long a post's shape is served from the cache: never so long that its media URLs are near expiry."""

from __future__ import annotations

from pictor.media.v1 import media_pb2
from pictor.posts.v1 import posts_pb2

from services.posts.cache import CACHE_TTL_S, URL_LIFE_S, cache_ttl

NOW = 1_800_000_000


def post_with_urls_expiring_at(*expiries: int) -> posts_pb2.Post:
    return posts_pb2.Post(id=1, media=[media_pb2.Media(id=i, url_template=f"https://x/v1/media/{i}/{{variant}}?exp={e}&sig=s")
                                       for i, e in enumerate(expiries)])


def test_a_post_whose_urls_live_long_is_kept_the_full_time():
    assert cache_ttl(post_with_urls_expiring_at(NOW + 3600), NOW) == CACHE_TTL_S


def test_the_earliest_expiry_decides_and_leaves_the_urls_their_last_stretch():
    assert cache_ttl(post_with_urls_expiring_at(NOW + 3600, NOW + 300), NOW) == 300 - URL_LIFE_S


def test_urls_about_to_expire_are_kept_a_second_and_a_post_without_media_the_full_time():
    assert cache_ttl(post_with_urls_expiring_at(NOW + 60), NOW) == 1
    assert cache_ttl(posts_pb2.Post(id=1), NOW) == CACHE_TTL_S
