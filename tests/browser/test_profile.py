"""Profiles: counts and grid, a request to a private account approved from the requests screen,
the followers list, mute and block; a username nobody has."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from services.common.config import REPO_ROOT
from tests.browser.conftest import allow_console_error, shoot
from tests.browser.helpers import follow, post_photos

CORPUS = REPO_ROOT / "tests" / "media-corpus"


def test_a_request_to_a_private_account_is_approved_and_opens_its_grid(browser, register, gateway):
    owner, fan = register("owner", private=True), register("fan")
    post_photos(gateway, owner, caption="for friends")
    fan_page = browser.page(fan)
    fan_page.goto(f"/#/u/{owner['user']['username']}")
    expect(fan_page.locator(".posts .status")).to_have_text("This account is private. Follow it to see its photos.")
    fan_page.get_by_role("button", name="Follow").click()
    expect(fan_page.get_by_role("button", name="Requested")).to_be_visible()

    owner_page = browser.page(owner)
    owner_page.goto(f"/#/u/{owner['user']['username']}")
    expect(owner_page.locator(".counts")).to_contain_text("1 posts")
    owner_page.get_by_role("link", name="Follow requests").click()
    row = owner_page.locator(".person", has_text=fan["user"]["username"])
    row.get_by_role("button", name="Approve").click()
    expect(owner_page.locator(".person.done")).to_contain_text("approved")

    fan_page.reload()
    expect(fan_page.get_by_role("button", name="Following")).to_be_visible()
    expect(fan_page.locator(".grid .tile")).to_have_count(1)
    fan_page.get_by_role("link", name="followers").click()
    expect(fan_page.locator(".people")).to_contain_text(fan["user"]["username"])


def test_mute_and_block_from_a_profile(browser, register, gateway):
    me, other = register("me"), register("other")
    follow(gateway, me, other)
    page = browser.page(me)
    page.goto(f"/#/u/{other['user']['username']}")
    page.get_by_role("button", name="Mute").click()
    expect(page.get_by_role("button", name="Unmute")).to_have_attribute("aria-pressed", "true")
    page.reload()
    expect(page.get_by_role("button", name="Unmute")).to_be_visible()  # the profile says I muted them
    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Block").click()
    expect(page.get_by_role("heading", name="Home")).to_be_visible()
    r = gateway.get(f"/v1/users/{me['user']['id']}", token=other["access_token"])
    assert r.status == 404


def test_a_username_nobody_has_says_so(browser, register):
    page = browser.page(register("me"))
    allow_console_error(page, "status of 404")
    page.goto("/#/")
    page.get_by_placeholder("Go to @username").fill("nobody.by.this.name")
    page.get_by_placeholder("Go to @username").press("Enter")
    expect(page.get_by_role("heading", name="Nobody here")).to_be_visible()


def test_a_profile_photo_is_set_shown_to_others_and_removed(browser, register, gateway):
    owner, visitor = register("avatar"), register("visitor")
    page = browser.page(owner)
    page.goto("/#/edit")
    page.locator("#avatar-file").set_input_files(str(CORPUS / "hopper.jpg"))
    expect(page.get_by_role("status").filter(has_text="Profile photo changed")).to_be_visible()
    picture = page.locator(".avatar-edit .avatar img")
    expect(picture).to_have_attribute("src", re.compile(r"/v1/avatars/\d+/150\.webp$"))
    page.wait_for_function("() => document.querySelector('.avatar-edit .avatar img').naturalWidth > 0")
    shoot(page, "edit-profile-photo")

    other = browser.page(visitor)
    other.goto(f"/#/u/{owner['user']['username']}")
    header = other.locator("header.profile .avatar img")
    expect(header).to_have_attribute("src", re.compile(r"/v1/avatars/\d+/150\.webp$"))
    other.wait_for_function("() => document.querySelector('header.profile .avatar img').naturalWidth > 0")

    page.get_by_role("button", name="Remove photo").click()
    expect(page.get_by_role("status").filter(has_text="Profile photo removed")).to_be_visible()
    expect(page.locator(".avatar-edit .avatar img")).to_have_count(0)
    expect(page.locator(".avatar-edit .avatar")).to_have_text(owner["user"]["display_name"][0].upper())
    r = gateway.get(f"/v1/users/{owner['user']['id']}", token=visitor["access_token"])
    assert r.json.get("avatar_url", "") == ""
