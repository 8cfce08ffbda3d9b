"""Data for the browser tests, made through the API (fast), and the waits that go with it."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.e2e.media_files import unique_jpeg

SIGNED_IN = """(() => {
  if (localStorage.getItem("pictor.session")) return;
  const s = SESSION;
  s.expires_at = Date.now() + s.expires_in * 1000;
  localStorage.setItem("pictor.session", JSON.stringify(s));
})();"""


def signed_in_script(session: dict) -> str:
    """A script for a new browser context: the session as the client keeps it after signing in
    (web/js/api.js), unless the page has since signed out or in again."""
    stored = {k: session[k] for k in ("user", "access_token", "refresh_token")}
    stored["expires_in"] = int(session.get("expires_in", 900))
    return SIGNED_IN.replace("SESSION", json.dumps(stored))


def post_photos(gateway, session, caption: str = "", photos: int = 1, files: list[Path] = ()) -> dict:
    """A post of `photos` new 96×64 JPEGs, or of `files` (JPEGs) when given."""
    token = session["access_token"]
    media_ids = []
    for data in [f.read_bytes() for f in files] or [unique_jpeg(96, 64) for _ in range(photos)]:
        r = gateway.request("POST", "/v1/media", raw=data, token=token, headers={"content-type": "image/jpeg"})
        assert r.status == 200, r.body
        media_ids.append(r.json["id"])
    r = gateway.post("/v1/posts", {"media_ids": media_ids, "caption": caption}, token=token)
    assert r.status == 200, r.body
    return r.json


def follow(gateway, follower, author) -> None:
    r = gateway.post(f"/v1/users/{author['user']['id']}/follow", {}, token=follower["access_token"])
    assert r.status == 200, r.body


def wait_for_feed(gateway, session, count: int, timeout_s: float = 30.0) -> None:
    """Until the viewer's feed holds `count` posts (the fan-out is a worker's, a moment later)."""
    deadline = time.monotonic() + timeout_s
    while True:
        seen, token = 0, ""
        while True:
            r = gateway.get(f"/v1/feed?mode=CHRONOLOGICAL&page_size=50&page_token={token}",
                            token=session["access_token"])
            assert r.status == 200, r.body
            seen += len(r.json["posts"])
            token = r.json["next_page_token"]
            if not token:
                break
        if seen >= count:
            return
        assert time.monotonic() < deadline, f"the feed holds {seen} posts, not {count}"
        time.sleep(0.1)


def post_story(gateway, session, audience: str = "EVERYONE", allow_replies: bool = True) -> dict:
    """A story of a new 96×64 JPEG."""
    token = session["access_token"]
    r = gateway.request("POST", "/v1/media", raw=unique_jpeg(96, 64), token=token, headers={"content-type": "image/jpeg"})
    assert r.status == 200, r.body
    r = gateway.post("/v1/stories", {"media_id": r.json["id"], "audience": audience, "allow_replies": allow_replies},
                     token=token)
    assert r.status == 200, r.body
    return r.json
