"""Media URLs expire (PICTOR_MEDIA_URL_TTL, 4 minutes by default; 3 + 1 s on this module's own
stack): a photo the page asks for after its URL died gets a 403, and the client reads the owning
object again (post, story, highlight) and shows the photo from the fresh URL, once per failure.

The photos' first requests are held (page.route) until their URLs have expired, as happens to a
page left open: the lazy images further down, the viewer opened minutes after the tray loaded.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

from services.mesh.launcher import Stack
from tests.browser.conftest import DESKTOP, PHONE, allow_console_error
from tests.browser.helpers import follow, post_photos, post_story, wait_for_feed
from tests.conftest import private_stack
from tests.e2e.http import Gateway, path_of

TTL_S, BUCKET_S = 3, 1


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """This module's own stack, whose media URLs live 3 to 4 seconds (the session's live 4 minutes)."""
    with private_stack(tmp_path_factory.mktemp("short-urls"), PICTOR_MEDIA_URL_TTL=str(TTL_S),
                       PICTOR_MEDIA_URL_BUCKET=str(BUCKET_S)) as running:
        yield running


@pytest.fixture(scope="module")
def gateway(stack):
    return Gateway(stack.settings.gateway_port)


def expiry(url: str) -> int:
    return int(parse_qs(urlsplit(url).query)["exp"][0])


class HeldPhotos:
    """Holds every media file request until release(); later ones pass at once."""

    def __init__(self, page) -> None:
        self.page = page
        self.held = []
        self.released = False
        allow_console_error(page, "status of 403")  # the browser logs each expired URL it was refused
        page.route("**/v1/media/**", self._route)

    def _route(self, route) -> None:
        if self.released:
            route.continue_()
        else:
            self.held.append(route)

    def release_when_expired(self, gateway) -> list[str]:
        """Once some requests are held, wait until every held URL has expired (the gateway says
        403 to it), then let them all go. Returns the expired URLs."""
        deadline = time.monotonic() + 20
        while not self.held:
            assert time.monotonic() < deadline, "the page asked for no photo"
            self.page.wait_for_timeout(100)
        urls = [r.request.url for r in self.held]
        self.page.wait_for_timeout(max(0, max(map(expiry, urls)) - time.time() + 0.5) * 1000)
        for url in urls:
            assert gateway.get(path_of(url)).status == 403, "the URL still opens: the test would prove nothing"
        self.released = True
        for route in self.held:
            route.continue_()
        return urls


def shows_a_fresh_photo(img, stale: list[str]) -> None:
    img.page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=img.element_handle())
    assert img.evaluate("img => img.currentSrc") not in stale


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_a_feed_photo_whose_url_expired_is_shown_from_a_fresh_url(browser, register, gateway, viewport):
    viewer, author = register("reader"), register("author")
    follow(gateway, viewer, author)
    post_photos(gateway, author, caption="left open", photos=2)
    wait_for_feed(gateway, viewer, 1)
    page = browser.page(viewer, viewport=viewport)
    held = HeldPhotos(page)
    page.goto("/#/")
    first = page.locator("article.post .photo img").first
    expect(first).to_be_attached()
    stale = held.release_when_expired(gateway)
    shows_a_fresh_photo(first, stale)
    expect(page.locator("article.post .photo").first).to_have_class("photo loaded")
    # The second photo of the carousel renews from the same read of the post.
    page.get_by_role("button", name="Next photo").click()
    shows_a_fresh_photo(page.locator("article.post .photo img").nth(1), stale)


def test_a_profile_grid_tile_whose_url_expired_is_shown_from_a_fresh_url(browser, register, gateway):
    viewer, author = register("reader"), register("author")
    post_photos(gateway, author, caption="tile")
    page = browser.page(viewer, viewport=DESKTOP)
    held = HeldPhotos(page)
    page.goto(f"/#/u/{author['user']['username']}")
    tile = page.locator("a.tile img").first
    expect(tile).to_be_attached()
    shows_a_fresh_photo(tile, held.release_when_expired(gateway))


def test_a_story_opened_after_its_url_expired_is_shown_from_a_fresh_url(browser, register, gateway):
    viewer, author = register("reader"), register("author")
    follow(gateway, viewer, author)
    post_story(gateway, author)
    page = browser.page(viewer, viewport=PHONE)
    held = HeldPhotos(page)
    page.goto("/#/")
    page.get_by_role("button", name=f"Story of {author['user']['username']}, new").click()
    image = page.locator(".viewer img.story-image")
    expect(image).to_be_attached()
    shows_a_fresh_photo(image, held.release_when_expired(gateway))


def test_a_photo_that_fails_again_after_renewal_is_left_alone(browser, register, gateway):
    """One renewal per failure: a URL refused again (the post became invisible) is not asked for in a loop."""
    viewer, author = register("reader"), register("author")
    follow(gateway, viewer, author)
    created = post_photos(gateway, author, caption="soon gone")
    wait_for_feed(gateway, viewer, 1)
    page = browser.page(viewer, viewport=PHONE)
    allow_console_error(page, "status of 40[34]")
    reads = []
    page.on("request", lambda r: f"/v1/posts/{created['id']}" in r.url and reads.append(r.url))
    held = HeldPhotos(page)
    page.goto("/#/")
    img = page.locator("article.post .photo img").first
    expect(img).to_be_attached()
    r = gateway.delete(f"/v1/posts/{created['id']}", token=author["access_token"])
    assert r.status == 200, r.body
    held.release_when_expired(gateway)
    page.wait_for_function("img => img.complete", arg=img.element_handle())
    page.wait_for_timeout(1500)
    assert img.evaluate("img => img.naturalWidth") == 0
    assert len(reads) == 1, reads
