"""Video uploads through the gateway, for the e2e and browser tests."""

from __future__ import annotations

import hashlib
import time

from tests.e2e.http import UserClient


def put_all(user: UserClient, data: bytes, content_type: str = "video/mp4"):
    """A resumable upload of `data`, chunk by chunk; the :complete reply."""
    created = user.post("/v1/uploads", {"content_type": content_type, "size_bytes": str(len(data)),
                                        "sha256": hashlib.sha256(data).hexdigest()})
    assert created.status == 200, created.body
    upload_id, chunk = created.json["upload_id"], created.json["chunk_size"]
    for offset in range(0, len(data), chunk):
        r = user.gateway.request("PUT", f"/v1/uploads/{upload_id}?offset={offset}", raw=data[offset:offset + chunk],
                                 token=user.token, headers={"content-type": "application/octet-stream"})
        assert r.status == 200, r.body
    return user.post(f"/v1/uploads/{upload_id}:complete", {})


def settled(user: UserClient, media_id: str, timeout_s: float = 180.0) -> dict:
    """The media item once it is no longer PROCESSING (the transcoder is a worker of its own)."""
    deadline = time.monotonic() + timeout_s
    while True:
        r = user.get(f"/v1/media/{media_id}")
        assert r.status == 200, r.body
        if r.json["state"] != "PROCESSING":
            return r.json
        assert time.monotonic() < deadline, f"video {media_id} still PROCESSING after {timeout_s:g} s"
        time.sleep(0.2)
