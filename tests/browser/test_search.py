"""Search and discovery: autocomplete by keyboard, results by type, a hashtag's page and a place's
page, people to follow and the explore grid; an unknown hashtag and a search that cannot load."""

from __future__ import annotations

import asyncio
import threading

from playwright.sync_api import expect

from tests.browser.conftest import PHONE, allow_console_error, cut_off, shoot, word
from tests.browser.helpers import follow, post_photos
from tests.e2e.media_files import unique_jpeg


def test_autocomplete_is_driven_by_the_keyboard_and_opens_a_profile(browser, register, indexed):
    name = word()
    found = register("found", display_name=f"Zelda {name.title()}")
    indexed()
    page = browser.page(register("seeker"), viewport=PHONE)
    page.goto("/#/search")
    box = page.get_by_role("combobox")
    expect(box).to_be_focused()
    box.press_sequentially(name[:6])
    option = page.get_by_role("option", name=found["user"]["username"])
    expect(option).to_be_visible()
    shoot(page, "search-autocomplete")
    box.press("ArrowDown")
    expect(page.get_by_role("option", selected=True)).to_have_count(1)
    while page.get_by_role("option", selected=True).get_attribute("id") != option.get_attribute("id"):
        box.press("ArrowDown")
    box.press("Enter")
    expect(page.get_by_role("heading", name=found["user"]["username"])).to_be_visible()


def test_escape_closes_the_suggestions_and_enter_searches_every_type(browser, register, gateway, indexed):
    tag = word()
    author = register("author")
    post_photos(gateway, author, caption=f"Morning #{tag}")
    indexed()
    page = browser.page(register("seeker"))
    page.goto("/#/search")
    box = page.get_by_role("combobox")
    box.fill(tag)
    expect(page.get_by_role("option", name=f"#{tag}")).to_be_visible()
    box.press("Escape")
    expect(page.get_by_role("listbox")).to_be_hidden()
    box.press("Enter")
    results = page.locator(".results")
    expect(results.get_by_role("link", name=f"#{tag}", exact=True)).to_be_visible()
    expect(results.locator(".grid .tile")).to_have_count(1)
    shoot(page, "search-results")
    results.get_by_role("link", name=f"#{tag}", exact=True).click()
    expect(page.get_by_role("heading", name=f"#{tag}")).to_be_visible()
    expect(page.locator(".tag-head .meta").first).to_have_text("1 post")
    expect(page.locator(".grid .tile")).to_have_count(1)
    page.get_by_label("Recent").check()
    expect(page.locator(".grid .tile")).to_have_count(1)
    shoot(page, "hashtag")


def test_a_place_has_its_page_with_its_posts(browser, register, gateway, indexed):
    name = word()
    author = register("author")
    token = author["access_token"]
    r = gateway.request("POST", "/v1/media", raw=unique_jpeg(96, 64),
                        token=token, headers={"content-type": "image/jpeg"})
    r = gateway.post("/v1/posts", {"media_ids": [r.json["id"]], "caption": "coffee",
                                   "location": {"name": f"Cafe {name.title()}", "lat": 48.8541, "lng": 2.3331}}, token=token)
    assert r.status == 200, r.body
    indexed()
    page = browser.page(register("seeker"))
    page.goto("/#/search")
    page.get_by_role("combobox").fill(f"cafe {name}")
    page.get_by_role("option", name=f"Cafe {name.title()}").click()
    expect(page.get_by_role("heading", name=f"Cafe {name.title()}")).to_be_visible()
    expect(page.locator(".grid .tile")).to_have_count(1)
    shoot(page, "place")


def test_people_to_follow_and_the_explore_grid(browser, register, gateway, indexed, stack):
    me, friend, theirs, stranger = register("me"), register("friend"), register("theirs"), register("stranger")
    follow(gateway, me, friend)
    follow(gateway, friend, theirs)
    post_photos(gateway, stranger, caption="for everyone")
    indexed()
    refresh_explore(stack)
    page = browser.page(me)
    page.goto("/#/search")
    people = page.get_by_role("region", name="Suggested for you")
    expect(people.locator(".person")).to_contain_text(theirs["user"]["username"])
    expect(people).to_contain_text("Followed by 1 person you follow")
    expect(page.get_by_role("region", name="Explore").locator(".tile").first).to_be_visible()
    shoot(page, "search")


def refresh_explore(stack) -> None:
    """Recompute explore's model now (the worker does it hourly); in a thread of its own, away from
    Playwright's event loop."""
    from services.common.db import Database
    from services.search.model_worker import refresh
    from services.search.repository import PostgresSearchIndex

    async def run() -> None:
        db = Database(stack.settings, max_size=2)
        await db.open()
        try:
            await refresh(PostgresSearchIndex(db))
        finally:
            await db.close()

    thread = threading.Thread(target=lambda: asyncio.run(run()))
    thread.start()
    thread.join()


def test_an_unknown_hashtag_says_so(browser, register):
    page = browser.page(register("seeker"))
    allow_console_error(page, "status of 404")
    page.goto("/#/tags/nosuchtagatall")
    expect(page.get_by_role("heading", name="#nosuchtagatall")).to_be_visible()
    expect(page.locator(".empty")).to_contain_text("No posts tagged #nosuchtagatall yet.")


def test_a_search_that_cannot_load_says_why(browser, register):
    page = browser.page(register("seeker"))
    page.goto("/#/search")
    cut_off(page, "**/v1/search?*")
    page.get_by_role("combobox").fill("anything")
    page.get_by_role("combobox").press("Enter")
    expect(page.locator(".results").get_by_role("alert")).to_contain_text("offline")
