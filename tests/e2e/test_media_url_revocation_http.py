"""A media URL of a post that became invisible to someone (block, private account, delete) stops
opening for them within PICTOR_MEDIA_URL_TTL + PICTOR_MEDIA_URL_BUCKET (5 minutes by default;
2 + 1 s on this module's own stack), while whoever may still see the post gets fresh URLs that
open, re-signed when posts' cache kept the shape longer than its URLs. The default bound itself is
checked on the session's stack: every URL served expires within 300 s, from the cache or not."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from pictor.posts.v1 import posts_pb2

from services.common.dependencies import sync_redis
from services.mesh.launcher import Stack
from services.posts.cache import url_expiry
from services.posts.keys import cached_post_key
from tests.conftest import private_stack
from tests.e2e.http import Gateway, UserClient, eventually, path_of
from tests.e2e.media_files import unique_jpeg

pytestmark = pytest.mark.e2e

TTL_S, BUCKET_S = 2, 1
BOUND_S = 300
_names = itertools.count()


def ok(r) -> dict:
    assert r.status == 200, r.body
    return r.json


def expiry(url: str) -> int:
    return int(parse_qs(urlsplit(url).query)["exp"][0])


def photo_url(post: dict) -> str:
    return post["media"][0]["variants"][0]["url"]


def post_photo(user: UserClient) -> dict:
    media = ok(user.upload(unique_jpeg(), "image/jpeg"))
    return ok(user.post("/v1/posts", {"media_ids": [media["id"]], "caption": "revocable"}))


def test_every_media_url_served_expires_within_five_minutes(new_user):
    alice, bob = new_user(), new_user()
    ok(bob.post(f"/v1/users/{alice.id}/follow"))
    post = post_photo(alice)
    served = [photo_url(post), ok(alice.get(f"/v1/media/{post['media'][0]['id']}"))["variants"][0]["url"]]
    for _ in range(2):  # the second read comes from posts' cache
        served.append(photo_url(ok(bob.get(f"/v1/posts/{post['id']}"))))
    served += [p["media"][0]["url_template"] for p in ok(bob.get("/v1/feed?mode=CHRONOLOGICAL")).get("posts", [])
               if p["id"] == post["id"]]
    now = time.time()
    assert len(served) >= 4
    assert all(now < expiry(url) <= now + BOUND_S + 1 for url in served), [expiry(u) - now for u in served]


@pytest.fixture(scope="module")
def short_urls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with private_stack(tmp_path_factory.mktemp("urls"), PICTOR_MEDIA_URL_TTL=str(TTL_S),
                       PICTOR_MEDIA_URL_BUCKET=str(BUCKET_S)) as running:
        yield running


@pytest.fixture
def person(short_urls: Stack):
    gateway = Gateway(short_urls.settings.gateway_port)

    def make() -> UserClient:
        n = f"r{next(_names)}x{time.monotonic_ns() % 10**6}"
        return UserClient(gateway, ok(gateway.post("/v1/accounts", {"username": n, "email": f"{n}@example.com",
                                                                    "password": "correct horse"})))

    return make


def stops_opening(viewer: UserClient, url: str) -> float:
    """Seconds until the URL no longer opens (fails the test past TTL + bucket + slack)."""
    began = time.monotonic()
    while viewer.gateway.get(path_of(url)).status == 200:
        assert time.monotonic() - began < TTL_S + BUCKET_S + 5, "the URL still opens"
        time.sleep(0.1)
    return time.monotonic() - began


def test_a_blocked_viewer_loses_the_photo_and_a_friend_keeps_it(person):
    alice, bob, carol = person(), person(), person()
    post = post_photo(alice)
    seen = photo_url(ok(bob.get(f"/v1/posts/{post['id']}")))
    assert bob.gateway.get(path_of(seen)).status == 200
    ok(alice.post(f"/v1/users/{bob.id}/block"))
    assert bob.get(f"/v1/posts/{post['id']}").status == 404
    stops_opening(bob, seen)
    fresh = photo_url(ok(carol.get(f"/v1/posts/{post['id']}")))
    assert carol.gateway.get(path_of(fresh)).status == 200


def test_going_private_takes_the_photo_from_non_followers(person):
    alice, stranger, follower = person(), person(), person()
    ok(follower.post(f"/v1/users/{alice.id}/follow"))
    post = post_photo(alice)
    seen = photo_url(ok(stranger.get(f"/v1/posts/{post['id']}")))
    ok(alice.patch("/v1/users/me", {"is_private": True}))
    assert stranger.get(f"/v1/posts/{post['id']}").status == 404
    stops_opening(stranger, seen)
    fresh = photo_url(ok(follower.get(f"/v1/posts/{post['id']}")))
    assert follower.gateway.get(path_of(fresh)).status == 200


def test_a_deleted_posts_photo_stops_opening(person):
    alice, bob = person(), person()
    post = post_photo(alice)
    seen = photo_url(ok(bob.get(f"/v1/posts/{post['id']}")))
    ok(alice.delete(f"/v1/posts/{post['id']}"))
    stops_opening(bob, seen)


def test_a_shape_cached_past_its_urls_is_served_signed_anew(person, short_urls):
    """Posts' cache keeps a shape longer than its URLs live: a read after they expired gets it re-signed
    (media's SignMediaUrls), never stale, and the cache holds the re-signed shape."""
    alice, bob = person(), person()
    post = post_photo(alice)
    ok(bob.get(f"/v1/posts/{post['id']}"))
    time.sleep(TTL_S + BUCKET_S + 0.5)  # every URL in the cached shape has expired
    again = ok(bob.get(f"/v1/posts/{post['id']}"))
    assert again["caption"] == post["caption"] and again["media"][0]["id"] == post["media"][0]["id"]
    assert expiry(photo_url(again)) > time.time()
    assert bob.gateway.get(path_of(photo_url(again))).status == 200
    cached = sync_redis(short_urls.settings.redis_url).get(cached_post_key(post["id"]))
    assert url_expiry(posts_pb2.Post.FromString(cached)) == expiry(again["media"][0]["url_template"])


def test_the_feed_signs_a_stale_shapes_urls_again_itself(person, short_urls):
    """A feed page whose cached shapes' URLs are past their life is signed again by the feed, with media's
    key for its freshest expiry (GetUrlSigningKey): the URLs open, and posts was not asked (it would have
    written the re-signed shape back to its cache)."""
    alice, bob = person(), person()
    ok(bob.post(f"/v1/users/{alice.id}/follow"))
    post = post_photo(alice)

    def feed_ids() -> list[str]:
        return [p["id"] for p in ok(bob.get("/v1/feed?mode=CHRONOLOGICAL")).get("posts", [])]

    eventually(feed_ids, [post["id"]], timeout_s=15)
    redis = sync_redis(short_urls.settings.redis_url)
    cached = redis.get(cached_post_key(post["id"]))
    assert cached is not None
    time.sleep(TTL_S + BUCKET_S + 0.5)  # every URL in the cached shape has expired
    [served] = ok(bob.get("/v1/feed?mode=CHRONOLOGICAL"))["posts"]
    template = served["media"][0]["url_template"]
    assert expiry(template) > time.time() > url_expiry(posts_pb2.Post.FromString(cached))
    assert bob.gateway.get(path_of(template.replace("{variant}", "150.jpg"))).status == 200
    assert redis.get(cached_post_key(post["id"])) == cached
