"""Envoy compresses JSON replies for clients that accept gzip or brotli, and only those.

The reply compared is a post's comments with one long comment: large enough to be
compressed, and the same from one request to the next (no signed URLs in it).
"""

from __future__ import annotations

import gzip

import brotli
import pytest

from services.mesh.envoy_config import COMPRESS_MIN_BYTES
from tests.e2e.media_files import small_jpeg

pytestmark = pytest.mark.e2e


@pytest.fixture
def comments_path(new_user) -> tuple[str, object]:
    user = new_user()
    media_id = user.upload(small_jpeg(), "image/jpeg").json["id"]
    post = user.post("/v1/posts", {"media_ids": [media_id], "caption": "compress me"})
    assert post.status == 200, post.body
    path = f"/v1/posts/{post.json['id']}/comments"
    r = user.post(path, {"text": "a long comment about the light on the river " * 40})
    assert r.status == 200, r.body
    return path, user


def identity_body(comments_path) -> bytes:
    path, user = comments_path
    r = user.get(path)
    assert r.status == 200, r.body
    assert len(r.body) > COMPRESS_MIN_BYTES
    return r.body


def test_reply_without_accept_encoding_is_identity(comments_path):
    path, user = comments_path
    r = user.get(path)
    assert r.status == 200, r.body
    assert "content-encoding" not in r.headers
    assert r.json["comments"]


@pytest.mark.parametrize(("encoding", "decompress"), [("gzip", gzip.decompress), ("br", brotli.decompress)],
                         ids=["gzip", "br"])
def test_accepted_encoding_reply_decodes_to_the_same_json(comments_path, encoding, decompress):
    path, user = comments_path
    r = user.get(path, headers={"accept-encoding": encoding})
    assert r.status == 200, r.body
    assert r.headers.get("content-encoding") == encoding
    assert len(r.body) < len(identity_body(comments_path))
    assert decompress(r.body) == identity_body(comments_path)


def test_small_reply_is_sent_as_it_is(comments_path):
    _, user = comments_path
    r = user.get("/v1/users/me", headers={"accept-encoding": "gzip, br"})
    assert r.status == 200, r.body
    assert len(r.body) < COMPRESS_MIN_BYTES
    assert "content-encoding" not in r.headers
