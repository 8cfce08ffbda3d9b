"""A video in the feed: Chromium plays the 720p MP4 behind the poster (it plays no HLS itself)."""

from __future__ import annotations

from playwright.sync_api import expect

from services.media import testclips
from tests.browser.helpers import follow, wait_for_feed
from tests.e2e.http import UserClient
from tests.e2e.videos import put_all, settled


def test_a_posted_video_plays_in_the_feed(browser, register, gateway, tmp_path):
    viewer, author = register("reader"), register("author")
    follow(gateway, viewer, author)
    uploader = UserClient(gateway, author)
    clip = testclips.clip(tmp_path / "bars.mp4", seconds=2, width=640, height=360)
    media = settled(uploader, put_all(uploader, clip.read_bytes()).json["id"])
    assert media["state"] == "READY", media
    assert uploader.post("/v1/posts", {"media_ids": [media["id"]], "caption": "a video"}).status == 200
    wait_for_feed(gateway, viewer, 1)
    page = browser.page(viewer)
    page.goto("/#/")
    video = page.locator("article.post video")
    expect(video).to_have_count(1)
    assert "640.jpg" in video.get_attribute("poster") and "720.mp4" in video.get_attribute("src")
    video.evaluate("v => { v.muted = true; return v.play(); }")
    page.wait_for_function("() => { const v = document.querySelector('article.post video');"
                           " return v.readyState >= 2 && v.currentTime > 0; }")
    assert video.evaluate("v => [v.videoWidth, v.videoHeight]") == [640, 360]
