"""Extra images from PICTOR_MEDIA_CORPUS (optional): each upload is a media item or a clear 4xx, never a 5xx.

The built-in corpus (tests/media-corpus) is tested file by file elsewhere
(tests/e2e/test_media_http.py); this folder may hold anything, so the only
promise checked is the platform's: bad input is a 4xx JSON error naming the
problem, never a 500, and an accepted file gives a processed media item.
"""

from __future__ import annotations

import mimetypes
import os

import pytest

from tests.unit.media.conftest import extra_corpus_files

pytestmark = pytest.mark.e2e

FILES = extra_corpus_files() if os.environ.get("PICTOR_MEDIA_CORPUS") else []


@pytest.fixture(scope="module")
def uploader(gateway):
    name = f"corpus{os.getpid()}"
    r = gateway.post("/v1/accounts", {"username": name, "email": f"{name}@example.com", "password": "correct horse"})
    assert r.status == 200, r.body
    return r.json["access_token"]


@pytest.mark.skipif(not FILES, reason="PICTOR_MEDIA_CORPUS is not set: no extra corpus to try")
@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_an_extra_corpus_file_is_a_media_item_or_a_4xx(gateway, uploader, path):
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    r = gateway.post("/v1/media", raw=path.read_bytes(), headers={"content-type": mime}, token=uploader)
    assert r.status == 200 or 400 <= r.status < 500, (r.status, r.body[:300])
    assert r.headers["content-type"].startswith("application/json")
    body = r.json
    if r.status == 200:
        assert body["id"] and body["variants"], body
    else:
        assert body["message"] and body["details"][0]["reason"], body
