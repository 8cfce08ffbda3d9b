"""Photo edits, filters and alt text through the real Envoy: JSON in, new media items and signed images out."""

from __future__ import annotations

import hashlib
import os
import time
from urllib.parse import quote

import pytest
import pyvips

from tests.e2e.http import eventually, path_of
from tests.unit.media.test_edits import make_scene, saturation

pytestmark = pytest.mark.e2e

# Small: under a loaded machine's starvation a big image can pass the test stack's 4 s processing limit.
SCENE = (480, 320)


def scene_jpeg() -> bytes:
    return make_scene(*SCENE).jpegsave_buffer(Q=90)


@pytest.fixture(scope="module", autouse=True)
def decoders_warm(gateway):
    """Wait until an upload goes through: right after the stack starts, on a starved machine, the first
    jobs can pass the test stack's 4 s processing limit (IMAGE_TOO_COMPLEX) while everything boots."""
    name = f"warmup{os.getpid()}"
    r = gateway.post("/v1/accounts", {"username": name, "email": f"{name}@example.com", "password": "correct horse"})
    assert r.status == 200, r.body
    token = r.json["access_token"]
    deadline = time.monotonic() + 120
    while (r := gateway.request("POST", "/v1/media", raw=scene_jpeg(), token=token,
                                headers={"content-type": "image/jpeg"})).status != 200:
        assert b"IMAGE_TOO_COMPLEX" in r.body and time.monotonic() < deadline, r.body


def upload(user, alt_text: str | None = None) -> dict:
    query = f"?alt_text={quote(alt_text)}" if alt_text is not None else ""
    r = user.gateway.request("POST", f"/v1/media{query}", raw=scene_jpeg(), token=user.token,
                             headers={"content-type": "image/jpeg"})
    assert r.status == 200, r.body
    return r.json


def fetch_image(user, url: str) -> pyvips.Image:
    r = user.gateway.get(path_of(url))
    assert r.status == 200, r.body
    return pyvips.Image.new_from_buffer(r.body, "")


def variant(media: dict, size: int, fmt: str = "jpeg") -> dict:
    return next(v for v in media["variants"] if v["size"] == size and v["format"] == fmt)


def assert_error(response, status: int, reason: str, field: str | None = None) -> dict:
    assert response.status == status, response.body
    assert response.headers["content-type"].startswith("application/json")
    detail = response.json["details"][0]
    assert detail["reason"] == reason, response.json
    if field is not None:
        assert detail["metadata"]["field"] == field, response.json
    return response.json


# --- edits ----------------------------------------------------------------------


def test_an_edit_is_a_new_media_item_with_every_variant_and_its_recipe(new_user):
    alice = new_user()
    original = upload(alice)
    recipe = {"crop": {"x": 60, "y": 40, "width": 300, "height": 200}, "rotate": 90, "filter": "moon",
              "adjustments": {"contrast": 20, "vignette": 30}}
    r = alice.post(f"/v1/media/{original['id']}:edit", recipe)
    assert r.status == 200, r.body
    edited = r.json
    assert edited["id"] != original["id"]
    assert (edited["width"], edited["height"]) == (200, 300)
    assert len(edited["variants"]) == 8 and edited["placeholder"]
    assert edited["edit"]["source_media_id"] == original["id"]
    assert (edited["edit"]["source_width"], edited["edit"]["source_height"]) == SCENE
    assert edited["edit"]["crop"] == {"x": 60, "y": 40, "width": 300, "height": 200}
    assert edited["edit"]["filter"] == "moon" and edited["edit"]["rotate"] == 90
    assert edited["edit"]["adjustments"] == {"brightness": 0, "contrast": 20, "saturation": 0, "warmth": 0, "fade": 0,
                                             "vignette": 30, "sharpen": 0}
    image = fetch_image(alice, variant(edited, 1080)["url"])
    assert (image.width, image.height) == (200, 300)
    assert saturation(image) < 3  # moon is black and white


def test_the_original_is_left_as_it_was(new_user):
    alice = new_user()
    original = upload(alice)
    assert alice.post(f"/v1/media/{original['id']}:edit", {"filter": "inkwell"}).status == 200
    again = alice.get(f"/v1/media/{original['id']}").json
    assert "edit" not in again and (again["width"], again["height"]) == SCENE
    assert saturation(fetch_image(alice, variant(again, 640)["url"])) > 20


def test_an_edit_of_an_edit_starts_from_the_original(new_user):
    alice = new_user()
    original = upload(alice)
    cropped = alice.post(f"/v1/media/{original['id']}:edit", {"crop": {"x": 0, "y": 0, "width": 200, "height": 100},
                                                               "filter": "moon"}).json
    r = alice.post(f"/v1/media/{cropped['id']}:edit", {"aspect": "SQUARE"})
    assert r.status == 200, r.body
    second = r.json
    # The whole original, cut square, in colour: nothing of the first edit's crop or filter remains.
    assert (second["width"], second["height"]) == (320, 320)
    assert second["edit"]["source_media_id"] == original["id"]
    assert saturation(fetch_image(alice, variant(second, 640)["url"])) > 20


def test_an_edit_keeps_the_alt_text_unless_given(new_user):
    alice = new_user()
    original = upload(alice, "a sunset over the bay")
    kept = alice.post(f"/v1/media/{original['id']}:edit", {"filter": "juno"}).json
    assert kept["alt_text"] == "a sunset over the bay"
    given = alice.post(f"/v1/media/{original['id']}:edit", {"filter": "juno", "alt_text": "warmer"}).json
    assert given["alt_text"] == "warmer"


@pytest.mark.parametrize(("body", "field", "reason"), [
    ({"crop": {"x": 1000, "y": 0, "width": 400, "height": 100}}, "crop", "CROP_OUT_OF_BOUNDS"),
    ({"crop": {"x": 0, "y": 0, "width": 10, "height": 10}, "aspect": "SQUARE"}, "aspect", "CROP_AND_ASPECT"),
    ({"aspect": "CINEMA"}, "aspect", "UNKNOWN_ASPECT"),
    ({"rotate": 45}, "rotate", "INVALID_ROTATION"),
    ({"filter": "no-such-filter"}, "filter", "UNKNOWN_FILTER"),
    ({"adjustments": {"brightness": 101}}, "adjustments.brightness", "ADJUSTMENT_OUT_OF_RANGE"),
    ({"adjustments": {"warmth": -150}}, "adjustments.warmth", "ADJUSTMENT_OUT_OF_RANGE"),
    ({"alt_text": "x" * 1001}, "alt_text", "ALT_TEXT_TOO_LONG"),
])
def test_bad_edits_are_400_naming_the_problem(new_user, body, field, reason):
    alice = new_user()
    media = upload(alice)
    assert_error(alice.post(f"/v1/media/{media['id']}:edit", body), 400, reason, field)


def test_someone_elses_media_cannot_be_edited(new_user):
    alice, mallory = new_user(), new_user()
    media = upload(alice)
    assert_error(mallory.post(f"/v1/media/{media['id']}:edit", {"filter": "moon"}), 404, "MEDIA_NOT_FOUND")
    assert_error(mallory.post("/v1/media/123:edit", {"filter": "moon"}), 404, "MEDIA_NOT_FOUND")


def test_an_edit_needs_a_token(gateway, new_user):
    media = upload(new_user())
    assert gateway.post(f"/v1/media/{media['id']}:edit", {"filter": "moon"}).status == 401


def test_an_edited_item_can_be_posted(new_user):
    alice = new_user()
    edited = alice.post(f"/v1/media/{upload(alice)['id']}:edit", {"aspect": "PORTRAIT"}).json
    r = alice.post("/v1/posts", {"media_ids": [edited["id"]]})
    assert r.status == 200, r.body
    assert r.json["media"][0]["id"] == edited["id"]
    assert (r.json["media"][0]["width"], r.json["media"][0]["height"]) == (256, 320)


# --- filters ----------------------------------------------------------------------


def test_filters_are_listed_without_previews(new_user):
    r = new_user().get("/v1/media/filters")
    assert r.status == 200, r.body
    names = [f["name"] for f in r.json["filters"]]
    assert names[0] == "normal" and len(names) >= 9 and "clarendon" in names
    assert all(f["preview_url"] == "" and f["title"] for f in r.json["filters"])


def test_each_filter_has_a_preview_on_the_media_item_given(new_user):
    alice = new_user()
    media = upload(alice)
    r = alice.get(f"/v1/media/filters?media_id={media['id']}")
    assert r.status == 200, r.body
    previews = {f["name"]: f["preview_url"] for f in r.json["filters"]}
    digests = set()
    for name, url in previews.items():
        response = alice.gateway.get(path_of(url))
        assert response.status == 200, (name, response.body)
        assert response.headers["content-type"] == "image/jpeg"
        assert "immutable" in response.headers["cache-control"]
        digests.add(hashlib.sha256(response.body).hexdigest())
        image = pyvips.Image.new_from_buffer(response.body, "")
        assert (image.width, image.height) == (320, 213)
        if name in ("moon", "inkwell"):
            assert saturation(image) < 3
    assert len(digests) == len(previews)  # every filter looks different


def test_filter_previews_of_someone_elses_media_are_404(new_user):
    alice, mallory = new_user(), new_user()
    media = upload(alice)
    assert_error(mallory.get(f"/v1/media/filters?media_id={media['id']}"), 404, "MEDIA_NOT_FOUND")


def test_a_preview_of_an_unknown_filter_is_404(new_user):
    alice = new_user()
    media = upload(alice)
    url = variant(media, 320)["url"].replace("320.jpg", "filter-nosuch.jpg")
    assert alice.gateway.get(path_of(url)).status == 404


# --- alt text ----------------------------------------------------------------------


def test_alt_text_is_set_at_upload_and_changed_later(new_user):
    alice = new_user()
    media = upload(alice, "a dog on a beach")
    assert media["alt_text"] == "a dog on a beach"
    r = alice.patch(f"/v1/media/{media['id']}", {"alt_text": "  two dogs on a beach  "})
    assert r.status == 200, r.body
    assert r.json["alt_text"] == "two dogs on a beach"
    assert alice.get(f"/v1/media/{media['id']}").json["alt_text"] == "two dogs on a beach"
    assert alice.patch(f"/v1/media/{media['id']}", {"alt_text": ""}).json["alt_text"] == ""


def test_alt_text_travels_with_a_resumable_upload(new_user):
    alice = new_user()
    data = scene_jpeg()
    r = alice.post("/v1/uploads", {"content_type": "image/jpeg", "size_bytes": len(data),
                                   "sha256": hashlib.sha256(data).hexdigest(), "alt_text": "resumed"})
    assert r.status == 200, r.body
    upload_id = r.json["upload_id"]
    put = alice.gateway.request("PUT", f"/v1/uploads/{upload_id}?offset=0", raw=data, token=alice.token,
                                headers={"content-type": "application/octet-stream"})
    assert put.status == 200, put.body
    done = alice.post(f"/v1/uploads/{upload_id}:complete", {})
    assert done.status == 200, done.body
    assert done.json["alt_text"] == "resumed"


def test_alt_text_is_in_posts_and_feed_pages(new_user, settle):
    alice = new_user()
    media = upload(alice, "a red kite")
    post = alice.post("/v1/posts", {"media_ids": [media["id"]]}).json
    assert post["media"][0]["alt_text"] == "a red kite"
    assert alice.get(f"/v1/posts/{post['id']}").json["media"][0]["alt_text"] == "a red kite"
    settle()
    page = alice.get("/v1/feed").json
    assert next(p for p in page["posts"] if p["id"] == post["id"])["media"][0]["alt_text"] == "a red kite"


def test_a_changed_alt_text_reaches_posts_and_feeds_already_cached(new_user, settle):
    alice = new_user()
    media = upload(alice, "before")
    post = alice.post("/v1/posts", {"media_ids": [media["id"]]}).json
    assert alice.get(f"/v1/posts/{post['id']}").json["media"][0]["alt_text"] == "before"  # cached now
    assert alice.patch(f"/v1/media/{media['id']}", {"alt_text": "after"}).status == 200

    def in_post() -> str:
        return alice.get(f"/v1/posts/{post['id']}").json["media"][0]["alt_text"]

    def in_feed() -> str:
        page = alice.get("/v1/feed").json
        return next(p for p in page["posts"] if p["id"] == post["id"])["media"][0]["alt_text"]

    eventually(in_post, "after", timeout_s=15)
    settle()
    assert in_feed() == "after"


@pytest.mark.parametrize(("alt_text", "reason"), [("x" * 1001, "ALT_TEXT_TOO_LONG"), ("a\u0000b", "INVALID_ARGUMENT")])
def test_bad_alt_text_is_400(new_user, alt_text, reason):
    alice = new_user()
    media = upload(alice)
    assert_error(alice.patch(f"/v1/media/{media['id']}", {"alt_text": alt_text}), 400, reason, "alt_text")
    r = alice.gateway.request("POST", f"/v1/media?alt_text={quote(alt_text)}", raw=scene_jpeg(), token=alice.token,
                              headers={"content-type": "image/jpeg"})
    assert_error(r, 400, reason, "alt_text")


def test_someone_elses_alt_text_cannot_be_changed(new_user):
    alice, mallory = new_user(), new_user()
    media = upload(alice, "mine")
    assert_error(mallory.patch(f"/v1/media/{media['id']}", {"alt_text": "theirs"}), 404, "MEDIA_NOT_FOUND")
    assert alice.get(f"/v1/media/{media['id']}").json["alt_text"] == "mine"
