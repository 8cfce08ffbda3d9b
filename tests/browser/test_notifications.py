"""The notification centre: likes of one post on one line, the badge, marking read; a list that
cannot load."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.conftest import cut_off
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
