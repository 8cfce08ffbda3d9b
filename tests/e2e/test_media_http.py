"""Media through the real Envoy: raw image bodies in, JSON and signed image URLs out."""

from __future__ import annotations

import hashlib
import os
import signal

import grpc
import pytest
import pyvips
from pictor.media.v1 import media_service_pb2 as pb
from pictor.media.v1 import media_service_pb2_grpc

from services.common.mesh_tls import gateway_channel, service_channel
from services.media.config import load_media_config
from services.media.signing import UrlSigner, load_or_create_key
from tests.e2e.http import path_of
from tests.unit.media.conftest import ACCEPTED, EXPECTED, REJECTED, media_corpus_dir

pytestmark = pytest.mark.e2e

CONTENT_TYPES = {"jpg": "image/jpeg", "png": "image/png", "gif": "image/gif", "webp": "image/webp",
                 "avif": "image/avif", "heif": "image/heic"}
VARIANT_KEYS = {"size", "format", "width", "height", "url"}


def content_type(name: str) -> str:
    return CONTENT_TYPES[name.rsplit(".", 1)[1]]


@pytest.fixture(scope="module")
def corpus():
    return media_corpus_dir()


def upload(gateway, token: str | None, data: bytes, mime: str = "image/jpeg"):
    return gateway.post("/v1/media", raw=data, headers={"content-type": mime}, token=token)


def assert_json_error(response, status: int, reason: str) -> dict:
    assert response.status == status, response.body
    assert response.headers["content-type"].startswith("application/json")
    body = response.json
    assert body["details"][0]["reason"] == reason, body
    return body


@pytest.fixture(scope="module")
def owner(gateway):
    """One account for the module's uploads (registered through the gateway)."""
    name = f"mediaowner{os.getpid()}"
    r = gateway.post("/v1/accounts", {"username": name, "email": f"{name}@example.com",
                                      "password": "correct horse"})
    assert r.status == 200, r.body
    return r.json


@pytest.fixture(scope="module")
def uploaded(gateway, owner, corpus):
    """Each accepted corpus file uploaded once, on first use: name -> media JSON."""
    media: dict[str, dict] = {}

    def get(name: str) -> dict:
        if name not in media:
            r = upload(gateway, owner["access_token"], (corpus / name).read_bytes(), content_type(name))
            assert r.status == 200, (name, r.body)
            media[name] = r.json
        return media[name]

    return get


# --- one request ----------------------------------------------------------------


@pytest.mark.parametrize("name", ACCEPTED)
def test_accepted_file_becomes_processed_media(uploaded, owner, name):
    media = uploaded(name)
    assert {"id", "width", "height", "placeholder", "variants"} <= set(media)
    assert isinstance(media["id"], str) and media["owner_id"] == owner["user"]["id"]
    assert media["width"] > 0 and media["height"] > 0 and media["placeholder"]
    assert all(set(v) == VARIANT_KEYS for v in media["variants"])
    assert sorted((v["size"], v["format"]) for v in media["variants"]) == sorted(
        (size, fmt) for size in (150, 320, 640, 1080) for fmt in ("jpeg", "webp"))


@pytest.mark.parametrize("name", REJECTED)
def test_rejected_file_is_a_400_naming_the_problem(gateway, new_account, corpus, name):
    r = upload(gateway, new_account()["access_token"], (corpus / name).read_bytes(), content_type(name))
    body = assert_json_error(r, 400, EXPECTED[name])
    assert body["details"][0]["metadata"]["field"] == "body" and body["message"]


@pytest.mark.parametrize("name", ACCEPTED)
def test_every_variant_url_serves_its_image_without_metadata(gateway, uploaded, name):
    for v in uploaded(name)["variants"]:
        r = gateway.get(path_of(v["url"]))  # no token: the signature is the permission
        assert r.status == 200, (v["url"], r.body)
        assert r.headers["content-type"] == f"image/{v['format']}"
        assert "max-age=" in r.headers["cache-control"]
        assert b"Exif" not in r.body
        image = pyvips.Image.new_from_buffer(r.body, "")
        assert (image.width, image.height) == (v["width"], v["height"])
        assert not image.get_typeof("exif-data") and not image.get_typeof("xmp-data")


def test_one_url_template_reaches_every_variant(gateway, uploaded):
    media = uploaded("hopper.jpg")
    template = media["url_template"]
    assert media["sizes"] == sorted({v["size"] for v in media["variants"]})
    for v in media["variants"]:
        file = f"{v['size']}.{'jpg' if v['format'] == 'jpeg' else 'webp'}"
        assert template.replace("{variant}", file) == v["url"]
        assert gateway.get(path_of(v["url"])).status == 200


def test_variant_urls_are_absolute_at_the_gateway(uploaded, settings):
    for v in uploaded("hopper.jpg")["variants"]:
        assert v["url"].startswith(f"{settings.gateway_url}/v1/media/")


def test_upload_needs_a_token(gateway, corpus):
    r = upload(gateway, None, (corpus / "hopper.jpg").read_bytes())
    assert_json_error(r, 401, "TOKEN_MISSING")


def test_unknown_format_is_a_400(gateway, new_account):
    r = upload(gateway, new_account()["access_token"], b"GIF? no: plain text", "text/plain")
    assert_json_error(r, 400, "UNSUPPORTED_FORMAT")


def test_more_than_50_mb_is_a_400(gateway, new_account):
    too_big = b"\xff\xd8\xff" + bytes(50 * 1024 * 1024)
    r = upload(gateway, new_account()["access_token"], too_big)
    assert_json_error(r, 400, "IMAGE_TOO_LARGE")


def test_media_is_visible_to_its_owner_only(gateway, uploaded, owner, new_account):
    media = uploaded("flower.jpg")
    mine = gateway.get(f"/v1/media/{media['id']}", token=owner["access_token"])
    assert mine.status == 200 and mine.json["id"] == media["id"]
    assert mine.json["captured_at"] == "2003-12-14T12:01:44Z"
    other = gateway.get(f"/v1/media/{media['id']}", token=new_account()["access_token"])
    assert_json_error(other, 404, "MEDIA_NOT_FOUND")


def test_when_a_photo_was_taken_reaches_its_uploader_only_never_the_viewers_of_its_post(
        gateway, uploaded, owner, new_account):
    media = uploaded("flower.jpg")  # EXIF: taken 2003-12-14 12:01:44
    r = gateway.post("/v1/posts", {"media_ids": [media["id"]], "caption": "when?"}, token=owner["access_token"])
    assert r.status == 200, r.body
    assert "captured_at" not in r.json["media"][0]
    viewer = new_account()["access_token"]
    seen = gateway.get(f"/v1/posts/{r.json['id']}", token=viewer)
    assert seen.status == 200 and "captured_at" not in seen.json["media"][0]
    assert gateway.get(f"/v1/media/{media['id']}", token=owner["access_token"]).json["captured_at"]


# --- signed URLs ------------------------------------------------------------------


def test_tampered_signature_is_403_json(gateway, uploaded):
    url = path_of(uploaded("hopper.png")["variants"][0]["url"])
    sig_at = url.index("sig=") + 4
    tampered = url[:sig_at] + ("B" if url[sig_at] == "A" else "A") + url[sig_at + 1:]
    assert_json_error(gateway.get(tampered), 403, "URL_SIGNATURE_INVALID")


def test_signature_for_another_media_item_is_403(gateway, uploaded):
    # One signature opens every variant of its item, and nothing of any other item.
    mine, other = uploaded("hopper.png"), uploaded("hopper.jpg")
    stolen = path_of(mine["variants"][0]["url"]).replace(f"/{mine['id']}/", f"/{other['id']}/")
    assert_json_error(gateway.get(stolen), 403, "URL_SIGNATURE_INVALID")


def test_expired_url_is_403_json(gateway, uploaded, settings):
    media_id = uploaded("hopper.png")["id"]
    config = load_media_config(settings)
    signer = UrlSigner(load_or_create_key(config.url_key_file), config.url_ttl_s)
    exp = 1_700_000_000  # correctly signed, long past
    r = gateway.get(f"/v1/media/{media_id}/150.jpg?exp={exp}&sig={signer.signature(int(media_id), exp)}")
    assert_json_error(r, 403, "URL_EXPIRED")


# --- resumable ----------------------------------------------------------------------


def put_chunk(gateway, token: str, upload_id: str, offset: int, data: bytes):
    return gateway.request("PUT", f"/v1/uploads/{upload_id}?offset={offset}", raw=data, token=token,
                           headers={"content-type": "application/octet-stream"})


def test_resumable_upload_through_the_gateway(gateway, new_account, corpus):
    token = new_account()["access_token"]
    data = (corpus / "flower2.jpg").read_bytes()
    created = gateway.post("/v1/uploads", {"content_type": "image/jpeg", "size_bytes": str(len(data)),
                                           "sha256": hashlib.sha256(data).hexdigest()}, token=token)
    assert created.status == 200, created.body
    upload_id = created.json["upload_id"]
    assert created.json["received_bytes"] == "0" and created.json["chunk_size"] > 0

    half = len(data) // 2
    assert put_chunk(gateway, token, upload_id, 0, data[:half]).json["received_bytes"] == str(half)
    # The phone lost the reply and sends the same chunk again: harmless.
    assert put_chunk(gateway, token, upload_id, 0, data[:half]).json["received_bytes"] == str(half)
    # A chunk from the future: 409, telling where to resume.
    wrong = put_chunk(gateway, token, upload_id, half + 100, data[half + 100:])
    body = assert_json_error(wrong, 409, "UPLOAD_OFFSET_MISMATCH")
    assert body["details"][0]["metadata"]["received_bytes"] == str(half) and f"offset {half}" in body["message"]
    # Completing early: 409 as well.
    assert_json_error(gateway.post(f"/v1/uploads/{upload_id}:complete", {}, token=token), 409, "UPLOAD_INCOMPLETE")

    assert gateway.get(f"/v1/uploads/{upload_id}", token=token).json["received_bytes"] == str(half)
    assert put_chunk(gateway, token, upload_id, half, data[half:]).status == 200
    media = gateway.post(f"/v1/uploads/{upload_id}:complete", {}, token=token)
    assert media.status == 200, media.body
    assert (media.json["width"], media.json["height"], len(media.json["variants"])) == (300, 225, 8)


def test_upload_of_another_user_is_404(gateway, new_account, corpus):
    owner, stranger = new_account()["access_token"], new_account()["access_token"]
    data = (corpus / "hopper.jpg").read_bytes()
    created = gateway.post("/v1/uploads", {"content_type": "image/jpeg", "size_bytes": str(len(data)),
                                           "sha256": hashlib.sha256(data).hexdigest()}, token=owner)
    assert_json_error(gateway.get(f"/v1/uploads/{created.json['upload_id']}", token=stranger), 404,
                      "UPLOAD_NOT_FOUND")


def test_stream_upload_is_for_the_mesh_only(settings, new_account, corpus):
    token = new_account()["access_token"]

    def messages():
        yield pb.StreamUploadRequest(content_type="image/jpeg", data=(corpus / "hopper.jpg").read_bytes())

    with gateway_channel(settings, aio=False) as channel, \
            pytest.raises(grpc.RpcError) as refused:
        media_service_pb2_grpc.MediaServiceStub(channel).StreamUpload(
            messages(), metadata=[("authorization", f"Bearer {token}")], timeout=10)
    assert refused.value.code() != grpc.StatusCode.OK
    with service_channel(settings, "media", aio=False) as channel:  # as a tool, StreamUpload's caller
        media = media_service_pb2_grpc.MediaServiceStub(channel).StreamUpload(
            messages(), metadata=[("authorization", f"Bearer {token}")], timeout=30)
    assert media.width == 128


# --- durability ---------------------------------------------------------------------


def test_acknowledged_upload_survives_sigkill(stack, gateway, new_account, corpus):
    token = new_account()["access_token"]
    acknowledged = upload(gateway, token, (corpus / "flower.jpg").read_bytes())
    assert acknowledged.status == 200, acknowledged.body
    stack.restart_service("media", signal.SIGKILL)  # right after the reply: no chance to flush anything

    again = gateway.get(f"/v1/media/{acknowledged.json['id']}", token=token)
    assert again.status == 200, again.body
    assert [(v["size"], v["format"], v["width"], v["height"]) for v in again.json["variants"]] == [
        (v["size"], v["format"], v["width"], v["height"]) for v in acknowledged.json["variants"]]
    for v in again.json["variants"]:
        r = gateway.get(path_of(v["url"]))
        assert r.status == 200
        assert pyvips.Image.new_from_buffer(r.body, "").width == v["width"]


def new_upload(gateway, token: str, data: bytes):
    return gateway.post("/v1/uploads", {"content_type": "image/jpeg", "size_bytes": str(len(data)),
                                        "sha256": hashlib.sha256(data).hexdigest()}, token=token)


def test_a_resent_chunk_that_differs_is_409_and_changes_nothing(gateway, new_account, corpus):
    token = new_account()["access_token"]
    data = (corpus / "hopper.jpg").read_bytes()
    upload_id = new_upload(gateway, token, data).json["upload_id"]
    assert put_chunk(gateway, token, upload_id, 0, data[:3000]).status == 200
    # Below the current offset, with other bytes than those received: once, this was written past the offset.
    wrong = put_chunk(gateway, token, upload_id, 1000, b"\x00" * 1000)
    assert assert_json_error(wrong, 409, "UPLOAD_OFFSET_MISMATCH")["details"][0]["metadata"]["received_bytes"] == "3000"
    # Overlapping the end of what was received: 409 too.
    assert_json_error(put_chunk(gateway, token, upload_id, 2000, data[2000:4000]), 409, "UPLOAD_OFFSET_MISMATCH")
    assert put_chunk(gateway, token, upload_id, 3000, data[3000:]).status == 200
    media = gateway.post(f"/v1/uploads/{upload_id}:complete", {}, token=token)
    assert media.status == 200, media.body  # the sha256 matched: nothing was corrupted


def test_more_open_uploads_than_allowed_is_429_naming_the_limit(gateway, new_account, settings):
    token = new_account()["access_token"]
    limit = load_media_config(settings).max_open_uploads
    for _ in range(limit):
        assert new_upload(gateway, token, b"x" * 100).status == 200
    refused = assert_json_error(new_upload(gateway, token, b"x" * 100), 429, "TOO_MANY_OPEN_UPLOADS")
    assert "PICTOR_MEDIA_MAX_OPEN_UPLOADS" in refused["message"]


# --- decoding in a box: hostile images (the decoders' test hooks, tests/conftest.py) ------------


@pytest.mark.parametrize("marker, reason", [(b"PICTOR-TEST-HANG", "IMAGE_TOO_COMPLEX"),
                                            (b"PICTOR-TEST-BOMB", "IMAGE_TOO_COMPLEX"),
                                            (b"PICTOR-TEST-CRASH", "IMAGE_UNDECODABLE")],
                         ids=["hang", "bomb", "crash"])
def test_a_hostile_image_is_a_400_and_other_uploads_go_on(gateway, new_account, corpus, marker, reason):
    from concurrent.futures import ThreadPoolExecutor

    token = new_account()["access_token"]
    hostile = (corpus / "hopper.jpg").read_bytes() + marker
    with ThreadPoolExecutor(3) as pool:
        refused = pool.submit(upload, gateway, token, hostile)
        others = [pool.submit(upload, gateway, token, (corpus / name).read_bytes(), content_type(name))
                  for name in ("flower.jpg", "hopper.png")]
        assert_json_error(refused.result(), 400, reason)
        assert [o.result().status for o in others] == [200, 200]
    assert upload(gateway, token, (corpus / "hopper.jpg").read_bytes()).status == 200
