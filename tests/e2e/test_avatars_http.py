"""Profile pictures through the gateway: PATCH /v1/users/me {avatar_media_id} makes a photo of mine
my avatar (media holds it as a post would); anyone fetches its square at avatar_url without a
signature; nothing else of mine is reachable that way; a replaced avatar's photo goes away."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest

from services.media import testclips
from tests.e2e.media_files import unique_jpeg
from tests.e2e.videos import put_all

pytestmark = pytest.mark.e2e


def photo(user) -> str:
    r = user.upload(unique_jpeg(), "image/jpeg")
    assert r.status == 200, r.body
    return r.json["id"]


def set_avatar(user, media_id: str):
    return user.patch("/v1/users/me", {"avatar_media_id": media_id})


def path(url: str) -> str:
    return urlsplit(url).path


def test_a_photo_becomes_my_avatar_that_anyone_can_fetch(gateway, new_user):
    alice, bob = new_user(private=True), new_user()
    media_id = photo(alice)
    r = set_avatar(alice, media_id)
    assert r.status == 200, r.body
    assert path(r.json["avatar_url"]) == f"/v1/avatars/{media_id}/150.webp"
    assert r.json["avatar_media_id"] == media_id
    # Bob (not her follower: her account is private) and an anonymous client see the picture.
    seen = bob.get(f"/v1/users/{alice.id}").json
    assert seen["avatar_url"] == r.json["avatar_url"]
    # Her posts carry it as their author's.
    post = alice.post("/v1/posts", {"media_ids": [photo(alice)], "caption": "with my face"}).json
    assert alice.get(f"/v1/posts/{post['id']}").json["author"]["avatar_url"] == r.json["avatar_url"]
    for file, content_type in (("150.webp", "image/webp"), ("150.jpg", "image/jpeg")):
        got = gateway.get(f"/v1/avatars/{media_id}/{file}")
        assert got.status == 200, (file, got.status, got.body[:200])
        assert got.headers["content-type"] == content_type and len(got.body) > 100
        assert got.headers["cache-control"].startswith("public")


def test_only_the_avatars_square_is_served_and_only_while_it_is_one(gateway, new_user):
    alice = new_user()
    avatar, other = photo(alice), photo(alice)
    assert set_avatar(alice, avatar).status == 200
    assert gateway.get(f"/v1/avatars/{other}/150.webp").status == 404  # hers, but not an avatar
    assert gateway.get(f"/v1/avatars/{avatar}/1080.webp").status == 404  # the avatar, but not its square
    assert gateway.get(f"/v1/avatars/{avatar}/original").status == 404
    # Replaced: the old one is no avatar any more, and as no post holds it, it is gone.
    assert path(set_avatar(alice, other).json["avatar_url"]) == f"/v1/avatars/{other}/150.webp"
    assert gateway.get(f"/v1/avatars/{avatar}/150.webp").status == 404
    assert alice.get(f"/v1/media/{avatar}").status == 404
    assert gateway.get(f"/v1/avatars/{other}/150.webp").status == 200
    # Removed.
    r = set_avatar(alice, "0")
    assert r.status == 200 and r.json.get("avatar_url", "") == "" and "avatar_media_id" not in r.json
    assert gateway.get(f"/v1/avatars/{other}/150.webp").status == 404


def test_changes_made_at_once_leave_one_avatar_the_one_the_profile_names(gateway, new_user):
    # Each change reads the avatar before it: unserialised, every photo set at once stayed held.
    alice = new_user()
    photos = [photo(alice) for _ in range(6)]
    with ThreadPoolExecutor(len(photos)) as pool:
        assert {r.status for r in pool.map(lambda m: set_avatar(alice, m), photos)} == {200}
    named = alice.get("/v1/users/me").json["avatar_media_id"]
    served = [m for m in photos if gateway.get(f"/v1/avatars/{m}/150.webp").status == 200]
    assert served == [named]
    assert [m for m in photos if alice.get(f"/v1/media/{m}").status == 200] == [named]


def test_a_photo_in_a_post_stays_in_the_post_when_it_stops_being_the_avatar(gateway, new_user):
    alice = new_user()
    media_id = photo(alice)
    assert alice.post("/v1/posts", {"media_ids": [media_id], "caption": "me"}).status == 200
    assert set_avatar(alice, media_id).status == 200
    assert set_avatar(alice, "0").status == 200
    assert alice.get(f"/v1/media/{media_id}").status == 200


def test_someone_elses_photo_a_video_and_nonsense_are_refused_by_name(gateway, new_user, tmp_path):
    alice, bob = new_user(), new_user()
    hers = photo(alice)
    r = set_avatar(bob, hers)
    assert r.status == 400 and r.json["details"][0]["reason"] == "MEDIA_NOT_FOUND", r.body
    assert "avatar_media_id" in r.body.decode()
    clip = testclips.clip(tmp_path / "clip.mp4", seconds=1, width=320, height=240)
    video = put_all(bob, clip.read_bytes()).json["id"]
    r = set_avatar(bob, video)
    assert r.status == 400 and r.json["details"][0]["reason"] == "AVATAR_NOT_A_PHOTO", r.body
    for bad in ("-1", "abc"):
        r = set_avatar(bob, bad)
        assert r.status == 400, (bad, r.status, r.body)
    assert gateway.get("/v1/avatars/abc/150.webp").status == 400
    assert gateway.get(f"/v1/avatars/{hers}/150.webp").status == 404
    assert bob.get("/v1/users/me").json.get("avatar_url", "") == ""
