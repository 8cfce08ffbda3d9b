"""The notification centre: likes of one post on one line, the badge, marking read; a list that
cannot load."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.conftest import allow_console_error, cut_off
from tests.browser.helpers import post_photos


def test_likes_of_one_post_share_a_line_and_opening_the_screen_reads_them(browser, register, gateway):
    author, fan1, fan2 = register("author"), register("fan"), register("fan")
    created = post_photos(gateway, author, caption="popular")
    page = browser.page(author)
    page.goto("/#/")
    for fan in (fan1, fan2):
        assert gateway.post(f"/v1/posts/{created['id']}/like", {}, token=fan["access_token"]).status == 200
    expect(page.locator("[data-nav=notifications] .badge")).to_have_text("1")
    page.get_by_role("link", name="Notifications").click()
    line = page.locator(".notification")
    expect(line).to_have_count(1)
    expect(line).to_contain_text(f"{fan2['user']['username']} and {fan1['user']['username']} liked your post")
    expect(line.get_by_role("img", name="Your post")).to_be_visible()
    expect(page.locator("[data-nav=notifications] .badge")).to_be_hidden()
    assert gateway.get("/v1/notifications:unreadCount", token=author["access_token"]).json["count"] == "0"


def test_a_list_that_cannot_load_says_why(browser, register):
    page = browser.page(register("author"))
    cut_off(page, "**/v1/notifications?*")
    page.goto("/#/notifications")
    expect(page.locator(".card .status")).to_contain_text("offline")


def test_a_notification_that_comes_while_the_stream_is_down_arrives_when_it_is_back(browser, register, gateway):
    author, fan = register("author"), register("fan")
    created = post_photos(gateway, author, caption="while away")
    page = browser.page(author)
    allow_console_error(page, "ERR_INTERNET_DISCONNECTED")
    streams = []
    page.on("request", lambda r: streams.append(r.url) if "/v1/stream?" in r.url else None)
    with page.expect_request(lambda r: "/v1/stream?" in r.url):
        page.goto("/#/")
    expect(page.get_by_role("heading", name="Home")).to_be_visible()
    page.wait_for_timeout(1000)  # its first heartbeat (the position to resume from) is in
    page.context.set_offline(True)
    assert gateway.post(f"/v1/posts/{created['id']}/like", {}, token=fan["access_token"]).status == 200
    page.wait_for_timeout(1500)
    expect(page.locator("[data-nav=notifications] .badge")).to_be_hidden()  # nothing can come: offline
    page.context.set_offline(False)
    expect(page.locator("[data-nav=notifications] .badge")).to_have_text("1", timeout=30_000)
    # It came on a new stream that resumed where the old one was, not on a reload.
    assert len(streams) >= 2 and "since=" in streams[-1], streams
