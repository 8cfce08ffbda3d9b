"""A video in the feed: Chromium plays the 720p MP4 behind the poster (it plays no HLS itself). A video still
processing, on its author's screen: how far it is, then the video or why it failed, live from the stream."""

from __future__ import annotations

import os

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


def opened_while_processing(browser, stack, uploader: UserClient, author: dict, data: bytes):
    """The author's page of a new post whose video is PROCESSING, open (its live stream too) before the
    transcoder starts on it; the note the post shows for the video."""
    transcoder = stack.child("video_transcoder-1")
    transcoder.stop()  # the video stays PROCESSING until the page is open
    try:
        media_id = put_all(uploader, data).json["id"]
        created = uploader.post("/v1/posts", {"media_ids": [media_id], "caption": "a video, soon"})
        assert created.status == 200, created.body
        page = browser.page(author)
        with page.expect_request(lambda r: "/v1/stream?" in r.url):
            page.goto(f"/#/p/{created.json['id']}")
        note = page.locator("article.post .pending-note")
        expect(note).to_have_text("Processing the video…")
        page.evaluate("() => { window.percents = []; document.addEventListener('pictor:media_progress',"
                      " (e) => window.percents.push(Number(e.detail.percent || 0))); }")
        page.wait_for_timeout(1000)  # the stream's first heartbeat is in
        return page, note
    finally:
        if not transcoder.running:
            transcoder.spawn()


def test_the_author_watches_a_processing_video_become_the_video_without_a_reload(browser, register, gateway, stack,
                                                                                  tmp_path):
    author = register("author")
    clip = testclips.clip(tmp_path / "long.mp4", seconds=8, width=960, height=540, fps=30)
    page, note = opened_while_processing(browser, stack, UserClient(gateway, author), author, clip.read_bytes())
    video = page.locator("article.post video")
    expect(video).to_have_count(1, timeout=180_000)
    assert "720.mp4" in video.get_attribute("src") and "640.jpg" in video.get_attribute("poster")
    expect(note).to_have_count(0)
    percents = page.evaluate("window.percents")
    # It said how far it was as it went, on the same page (a reload would have lost `percents`).
    assert percents and percents == sorted(percents), percents


def test_the_author_sees_why_a_processing_video_failed_without_a_reload(browser, register, gateway, stack):
    author = register("author")
    garbage = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + os.urandom(40_000)
    page, note = opened_while_processing(browser, stack, UserClient(gateway, author), author, garbage)
    expect(note).to_contain_text("This video could not be processed: CORRUPT_VIDEO", timeout=180_000)
    assert page.evaluate("window.percents") is not None  # the same page
