"""Every screen at a phone's size (390×844) and a desktop's (1440×900): nothing wider than the
window, and a screenshot of each in build/screenshots/ (a few are in docs/screenshots/ for README)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from services.common.config import REPO_ROOT
from services.search.indexer import GROUP, TOPICS
from tests.browser.conftest import DESKTOP, PHONE, shoot
from tests.browser.helpers import follow, post_photos, wait_for_feed
from tests.e2e.conftest import waiter

CORPUS = REPO_ROOT / "tests" / "media-corpus"


@pytest.fixture(scope="module")
def people(stack):
    """A with posts, followers and a pending request; B who follows A."""
    import os

    from tests.e2e.http import Gateway

    gateway = Gateway(stack.settings.gateway_port)
    made = {}
    for who in ("ada", "bob", "cyd"):
        n = f"{who}{os.getpid()}"
        r = gateway.post("/v1/accounts", {"username": n, "email": f"{n}@example.com", "password": "correct horse",
                                          "display_name": who.title()})
        assert r.status == 200, r.body
        made[who] = r.json
    ada, bob, cyd = made["ada"], made["bob"], made["cyd"]
    gateway.patch("/v1/users/me", {"bio": "Poet of numbers", "is_private": True}, token=ada["access_token"])
    follow(gateway, bob, ada)
    r = gateway.post(f"/v1/follow-requests/{bob['user']['id']}:approve", {}, token=ada["access_token"])
    assert r.status == 200, r.body
    follow(gateway, cyd, ada)  # stays a request
    follow(gateway, ada, bob)
    for caption, files in (("Sunday light", ["flower.jpg", "flower2.jpg", "hopper.jpg"]),
                           ("Two friends", ["hopper.jpg", "flower.jpg"]), ("A quiet street", ["icc_profile_big.jpg"])):
        created = post_photos(gateway, ada, caption=caption, files=[CORPUS / f for f in files])
    media = gateway.request("POST", "/v1/media", raw=(CORPUS / "flower2.jpg").read_bytes(), token=bob["access_token"],
                            headers={"content-type": "image/jpeg"}).json["id"]
    r = gateway.post("/v1/posts", {"media_ids": [media], "caption": "Hello from Bob #lisbon",
                                   "location": {"name": "Alfama", "lat": 38.7115, "lng": -9.13}},
                     token=bob["access_token"])
    assert r.status == 200, r.body
    gateway.post(f"/v1/posts/{created['id']}/like", {}, token=bob["access_token"])
    c = gateway.post(f"/v1/posts/{created['id']}/comments", {"text": "Where is this?"}, token=bob["access_token"])
    gateway.post(f"/v1/posts/{created['id']}/comments", {"text": "Lisbon!", "parent_comment_id": c.json["id"]},
                 token=ada["access_token"])
    r = gateway.post("/v1/conversations", {"member_ids": [ada["user"]["id"]]}, token=bob["access_token"])
    assert r.status == 200, r.body
    conversation = r.json["id"]
    for who, text in ((bob, "Is that Lisbon?"), (ada, "It is: the Alfama at noon")):
        r = gateway.post(f"/v1/conversations/{conversation}/messages", {"client_message_id": text, "text": text},
                         token=who["access_token"])
        assert r.status == 200, r.body
    wait_for_feed(gateway, bob, 4)
    client, indexed = waiter(stack, GROUP, TOPICS, "search indexer")
    indexed(60)
    client.close()
    r = gateway.get("/v1/search?q=Alfama&type=PLACES", token=bob["access_token"])
    assert r.status == 200 and r.json["places"], r.body
    return {**made, "post": created, "conversation": conversation, "place": r.json["places"][0]["id"]}


SCREENS = [
    ("signin", None, "/#/signin", "Sign in"),
    ("signup", None, "/#/signup", "Create an account"),
    ("feed", "bob", "/#/", "Home"),
    ("post", "bob", "/#/p/{post}", None),
    ("composer", "ada", "/#/new", "New post"),
    ("profile", "bob", "/#/u/{ada}", "{ada}"),
    ("followers", "bob", "/#/u/{ada}/followers", "Followers of {ada}"),
    ("requests", "ada", "/#/requests", "Follow requests"),
    ("edit-profile", "ada", "/#/edit", "Edit profile"),
    ("notifications", "ada", "/#/notifications", "Notifications"),
    ("settings", "ada", "/#/settings", "Notifications"),
    ("search", "bob", "/#/search", "Search"),
    ("messages", "bob", "/#/direct", "Messages"),
    ("conversation", "bob", "/#/direct/t/{conversation}", "{ada}"),
    ("new-story", "ada", "/#/stories/new", "New story"),
    ("following", "bob", "/#/u/{ada}/following", "Followed by {ada}"),
    ("search-results", "bob", "/#/search?q=lisbon", "Search"),
    ("hashtag", "bob", "/#/tags/lisbon", "#lisbon"),
    ("place", "bob", "/#/places/{place}", "Alfama"),
    ("message-requests", "ada", "/#/direct/requests", "Messages"),
]


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
@pytest.mark.parametrize(("name", "who", "path", "heading"), SCREENS, ids=[s[0] for s in SCREENS])
def test_screen_fits_the_window(browser, people, viewport, name, who, path, heading):
    names = {"ada": people["ada"]["user"]["username"], "post": people["post"]["id"],
             "conversation": people["conversation"], "place": people["place"]}
    page = browser.page(people[who] if who else None, viewport=viewport)
    page.goto(path.format(**names))
    if heading:
        expect(page.get_by_role("heading", name=heading.format(**names), exact=True)).to_be_visible()
    else:
        expect(page.locator("article.post .comment")).to_have_count(1)
    if name == "composer":
        page.locator("#photos").set_input_files([str(CORPUS / "flower.jpg"), str(CORPUS / "hopper.jpg")])
    # Photos as they end up (the blurhash is what a slow network shows first).
    if page.locator(".photo").count():
        expect(page.locator(".photo").first).to_have_class(re.compile(r"\bloaded\b"))
    page.locator("body").evaluate("(body) => document.activeElement.blur()")
    overflow = page.locator("body").evaluate("(body) => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{name} is {overflow}px wider than a {viewport['width']}px window"
    shoot(page, name)
