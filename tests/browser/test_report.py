"""Reporting from the client: a post, a comment, a story, a message and an account each have a Report action
that asks for a reason, says the report was received, and puts the target in the moderators' queue
(GET /v1/moderation/reports, as a moderator granted with the admin command)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import DESKTOP, PHONE, allow_console_error, shoot
from tests.browser.helpers import follow, post_photos, post_story, wait_for_feed
from tests.e2e.http import UserClient
from tests.e2e.test_moderation_http import admin, queue


@pytest.fixture(scope="module")
def moderator(gateway) -> UserClient:
    n = f"mod{id(gateway) % 10**6}"
    r = gateway.post("/v1/accounts", {"username": n, "email": f"{n}@example.com", "password": "correct horse"})
    assert r.status == 200, r.body
    done = admin("grant", n)
    assert done.returncode == 0, done.stderr
    return UserClient(gateway, r.json)


def queued(moderator: UserClient, target_type: str, target_id: str) -> dict | None:
    return next((t for t in queue(moderator) if t["target_type"] == f"TARGET_TYPE_{target_type}"
                 and t["target_id"] == target_id), None)


def send_report(page, button_name: str, reason: str, what: str, screenshot: str = "") -> None:
    page.get_by_role("button", name=button_name).click()
    sheet = page.get_by_role("dialog", name=f"Report {what}")
    expect(sheet).to_be_visible()
    sheet.get_by_role("button", name="Report").click()  # no reason picked: the form says so
    expect(sheet).to_be_visible()
    sheet.get_by_label(reason).check()
    if screenshot:
        shoot(page, screenshot)
    sheet.get_by_role("button", name="Report").click()
    done = page.get_by_role("dialog", name="Thanks for letting us know")
    expect(done).to_contain_text(f"Your report of this {what} was sent to the moderators")
    done.get_by_role("button", name="Done").click()
    expect(done).to_have_count(0)


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_a_reported_post_reaches_the_moderators_queue(browser, register, gateway, moderator, viewport):
    reporter, author = register("reporter"), register("author")
    follow(gateway, reporter, author)
    created = post_photos(gateway, author, caption="spammy")
    wait_for_feed(gateway, reporter, 1)
    page = browser.page(reporter, viewport=viewport)
    page.goto("/#/")
    send_report(page, f"Report post by {author['user']['username']}", "Spam", "post", screenshot="report")
    target = queued(moderator, "POST", created["id"])
    assert target is not None and target["reasons"] == {"REASON_SPAM": 1}, target
    # My own post has nothing to report.
    mine = browser.page(author, viewport=viewport)
    mine.goto(f"/#/p/{created['id']}")
    expect(mine.locator("article.post header")).to_be_visible()
    expect(mine.get_by_role("button", name=f"Report post by {author['user']['username']}")).to_have_count(0)


def test_a_reported_comment_reaches_the_moderators_queue(browser, register, gateway, moderator):
    reporter, author, troll = register("reporter"), register("author"), register("troll")
    created = post_photos(gateway, author, caption="nice")
    r = gateway.post(f"/v1/posts/{created['id']}/comments", {"text": "you are awful"}, token=troll["access_token"])
    assert r.status == 200, r.body
    page = browser.page(reporter, viewport=PHONE)
    page.goto(f"/#/p/{created['id']}")
    send_report(page, f"Report comment by {troll['user']['username']}", "Bullying or harassment", "comment")
    target = queued(moderator, "COMMENT", r.json["id"])
    assert target is not None and target["reasons"] == {"REASON_HARASSMENT": 1}, target


def test_a_reported_story_reaches_the_queue_and_the_viewer_waits(browser, register, gateway, moderator):
    reporter, author = register("reporter"), register("author")
    follow(gateway, reporter, author)
    story = post_story(gateway, author)
    page = browser.page(reporter, viewport=PHONE)
    page.goto("/#/")
    page.get_by_role("button", name=f"Story of {author['user']['username']}, new").click()
    viewer = page.locator(".viewer")
    expect(viewer).to_have_attribute("data-story-id", story["id"])
    send_report(page, f"Report story by {author['user']['username']}", "Hate speech or symbols", "story")
    expect(viewer).to_be_visible()  # Escape or Done in the sheet leaves the viewer open
    target = queued(moderator, "STORY", story["id"])
    assert target is not None and target["reasons"] == {"REASON_HATE": 1}, target


def test_a_reported_account_reaches_the_queue_and_a_failed_report_says_why(browser, register, gateway, moderator):
    reporter, impostor = register("reporter"), register("impostor")
    page = browser.page(reporter, viewport=DESKTOP)
    page.goto(f"/#/u/{impostor['user']['username']}")
    name = f"Report {impostor['user']['username']}"
    # First with the moderation service answering 429: the sheet stays, with the reason.
    allow_console_error(page, "status of 429")
    page.route("**/v1/reports", lambda route: route.fulfill(
        status=429, content_type="application/json",
        body='{"code": 8, "message": "too many reports: try again in a minute", "details": []}'))
    page.get_by_role("button", name=name).click()
    sheet = page.get_by_role("dialog", name="Report account")
    sheet.get_by_label("Pretending to be someone else").check()
    sheet.get_by_role("button", name="Report").click()
    expect(sheet.get_by_role("alert")).to_have_text("Slow down: too many reports: try again in a minute")
    assert queued(moderator, "ACCOUNT", impostor["user"]["id"]) is None
    sheet.get_by_role("button", name="Cancel").click()
    page.unroute("**/v1/reports")
    send_report(page, name, "Pretending to be someone else", "account")
    target = queued(moderator, "ACCOUNT", impostor["user"]["id"])
    assert target is not None and target["reasons"] == {"REASON_IMPERSONATION": 1}, target


def test_a_reported_message_reaches_the_moderators_queue(browser, register, gateway, moderator):
    reporter, sender = register("reporter"), register("sender")
    r = gateway.post("/v1/conversations", {"member_ids": [reporter["user"]["id"]]}, token=sender["access_token"])
    assert r.status == 200, r.body
    cid = r.json["id"]
    r = gateway.post(f"/v1/conversations/{cid}/messages", {"client_message_id": "scam", "text": "Send me money"},
                     token=sender["access_token"])
    assert r.status == 200, r.body
    page = browser.page(reporter, viewport=PHONE)
    page.goto(f"/#/direct/t/{cid}")
    page.get_by_role("button", name=f"Actions for the message from {sender['user']['username']}").click()
    send_report(page, f"Report message from {sender['user']['username']}", "Spam", "message")
    target = queued(moderator, "MESSAGE", r.json["id"])
    assert target is not None and target["reasons"] == {"REASON_SPAM": 1}, target
