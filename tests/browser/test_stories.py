"""Stories: creating one from a photo, the tray, the full-screen viewer (tap, arrow keys, Escape,
auto-advance), reactions and replies, my story's viewers, highlights; a rejected photo and a reply the
network loses."""

from __future__ import annotations

import re
import time

from playwright.sync_api import expect

from services.common.config import REPO_ROOT
from tests.browser.conftest import PHONE, allow_console_error, cut_off, shoot
from tests.browser.helpers import follow, post_story

CORPUS = REPO_ROOT / "tests" / "media-corpus"


def viewers_of(gateway, session, story) -> list[dict]:
    r = gateway.get(f"/v1/stories/{story['id']}/viewers", token=session["access_token"])
    assert r.status == 200, r.body
    return r.json.get("viewers", [])


def still(page):
    """Stories move only when the person moves them (what a person who asked for reduced motion gets)."""
    page.emulate_media(reduced_motion="reduce")
    return page


def test_a_story_is_made_from_a_photo_and_opens_from_the_tray(browser, register, gateway):
    session = register("storyteller")
    page = still(browser.page(session, viewport=PHONE))
    page.goto("/#/")
    page.get_by_role("link", name="Your story: add one").click()
    expect(page.get_by_role("heading", name="New story")).to_be_visible()
    page.locator("#story-photo").set_input_files(str(CORPUS / "hopper.jpg"))
    expect(page.get_by_role("img", name="Your story photo: hopper.jpg")).to_be_visible()
    shoot(page, "story-new")
    page.get_by_role("button", name="Share to your story").click()
    expect(page.get_by_role("heading", name="Home")).to_be_visible()
    page.get_by_role("button", name="Your story", exact=True).click()
    viewer = page.get_by_role("dialog", name=f"Stories of {session['user']['username']}")
    expect(viewer).to_be_visible()
    expect(viewer.locator(".story-image")).to_have_attribute("alt", re.compile("^Story by "))
    expect(viewer.get_by_role("button", name="Viewers (0)")).to_be_visible()
    shoot(page, "story-viewer")
    page.keyboard.press("Escape")
    expect(viewer).to_have_count(0)
    r = gateway.get(f"/v1/users/{session['user']['id']}/stories", token=session["access_token"])
    assert len(r.json["stories"]) == 1


def test_the_viewer_moves_by_tap_and_arrow_keys_closes_on_escape_and_counts_the_views(browser, register, gateway):
    author, fan = register("author"), register("fan")
    first, second = post_story(gateway, author), post_story(gateway, author)
    follow(gateway, fan, author)
    page = still(browser.page(fan))
    page.goto("/#/")
    page.get_by_role("button", name=f"Story of {author['user']['username']}, new").click()
    viewer = page.get_by_role("dialog")
    position = viewer.locator("[aria-live=polite]").first
    expect(position).to_have_text("Story 1 of 2")
    expect(viewer).to_have_attribute("data-story-id", first["id"])
    page.keyboard.press("ArrowRight")
    expect(position).to_have_text("Story 2 of 2")
    page.keyboard.press("ArrowLeft")
    expect(position).to_have_text("Story 1 of 2")
    viewer.get_by_role("button", name="Next story").click()
    expect(viewer).to_have_attribute("data-story-id", second["id"])
    shoot(page, "story-viewer")
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)
    # Both were seen: the ring says so, and each story counts the view.
    expect(page.get_by_role("button", name=f"Story of {author['user']['username']}", exact=True)).to_be_visible()
    for story in (first, second):
        assert [v["user"]["id"] for v in viewers_of(gateway, author, story)] == [fan["user"]["id"]]


def test_stories_advance_by_themselves_and_close_after_the_last(browser, register, gateway):
    author, fan = register("author"), register("fan")
    post_story(gateway, author)
    second = post_story(gateway, author)
    follow(gateway, fan, author)
    page = browser.page(fan)
    page.goto("/#/")
    page.get_by_role("button", name=f"Story of {author['user']['username']}, new").click()
    expect(page.get_by_role("dialog")).to_have_attribute("data-story-id", second["id"])
    expect(page.get_by_role("dialog")).to_have_count(0)


def test_a_reaction_and_a_reply_reach_the_author_among_the_viewers_and_in_messages(browser, register, gateway):
    author, fan = register("author"), register("fan")
    story = post_story(gateway, author)
    follow(gateway, fan, author)
    page = still(browser.page(fan))
    page.goto("/#/")
    page.get_by_role("button", name=f"Story of {author['user']['username']}, new").click()
    page.get_by_role("button", name="React 🔥").click()
    expect(page.locator(".toast").last).to_have_text("Sent 🔥")
    page.get_by_role("textbox", name=f"Reply to {author['user']['username']}").fill("Where is that?")
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".toast").last).to_have_text("Reply sent")
    assert viewers_of(gateway, author, story)[0]["reaction"] == "🔥"

    mine = still(browser.page(author, viewport=PHONE))
    mine.goto("/#/")
    mine.get_by_role("button", name="Your story", exact=True).click()
    mine.get_by_role("button", name="Viewers (1)").click()
    panel = mine.locator(".story-panel")
    expect(panel).to_contain_text("1 viewer")
    expect(panel.locator(".person")).to_contain_text(fan["user"]["username"])
    expect(panel.get_by_label("reacted 🔥")).to_be_visible()
    shoot(mine, "story-viewers")
    # The reply is a direct message: a request, since the author does not follow the fan.
    mine.keyboard.press("Escape")
    mine.keyboard.press("Escape")
    mine.get_by_role("link", name="Messages").click()
    mine.get_by_role("link", name="Requests").click()
    mine.get_by_role("link", name=fan["user"]["username"]).click()
    reply = mine.locator(".message.theirs .story-reply")
    expect(reply).to_contain_text("Where is that?")
    expect(reply.get_by_role("img", name=re.compile("^Story by "))).to_be_visible()


def test_a_story_added_to_a_highlight_shows_on_the_profile(browser, register, gateway):
    author, visitor = register("author"), register("visitor")
    post_story(gateway, author)
    page = still(browser.page(author))
    page.goto("/#/")
    page.get_by_role("button", name="Your story", exact=True).click()
    page.get_by_role("button", name="Add to highlight").click()
    page.get_by_label("New highlight").fill("Trips")
    page.get_by_role("button", name="Create").click()
    expect(page.locator(".toast").last).to_have_text("Added to “Trips”")
    page.keyboard.press("Escape")
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)

    other = still(browser.page(visitor))
    other.goto(f"/#/u/{author['user']['username']}")
    other.get_by_role("button", name="Highlight Trips").click()
    expect(other.get_by_role("dialog", name="Highlight Trips")).to_be_visible()
    expect(other.locator(".story-image")).to_be_visible()
    shoot(other, "highlight")


def test_a_photo_the_server_rejects_is_named_and_no_story_is_made(browser, register, gateway):
    session = register("storyteller")
    page = browser.page(session)
    allow_console_error(page, "status of 400")
    page.goto("/#/stories/new")
    page.locator("#story-photo").set_input_files(str(CORPUS / "broken.png"))
    page.get_by_role("button", name="Share to your story").click()
    expect(page.get_by_role("alert")).to_contain_text("broken.png: ")
    r = gateway.get(f"/v1/users/{session['user']['id']}/stories", token=session["access_token"])
    assert r.json.get("stories", []) == []


def test_a_reply_the_network_loses_says_so_and_keeps_the_text(browser, register, gateway):
    author, fan = register("author"), register("fan")
    post_story(gateway, author)
    follow(gateway, fan, author)
    page = still(browser.page(fan))
    page.goto("/#/")
    page.get_by_role("button", name=f"Story of {author['user']['username']}, new").click()
    cut_off(page, "**/v1/stories/*/replies")
    reply = page.get_by_role("textbox", name=f"Reply to {author['user']['username']}")
    reply.fill("Hello?")
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".toast.error")).to_contain_text("offline")
    expect(reply).to_have_value("Hello?")


def test_the_viewer_shows_a_storys_9_by_16_rendition_once_media_has_made_it(browser, register, gateway):
    author, fan = register("author"), register("fan")
    story = post_story(gateway, author)
    follow(gateway, fan, author)
    deadline = time.monotonic() + 30
    while not gateway.get(f"/v1/media/{story['media']['id']}", token=author["access_token"]).json.get("full_screen"):
        assert time.monotonic() < deadline, "the full-screen rendition was not made within 30 s"
        time.sleep(0.2)
    page = still(browser.page(fan, viewport=PHONE))
    page.goto("/#/")
    page.get_by_role("button", name=f"Story of {author['user']['username']}, new").click()
    expect(page.locator(".viewer img.story-image")).to_have_attribute("src", re.compile(r"/1920\.webp\?"))
