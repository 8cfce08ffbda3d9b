"""Settings: notification kinds, the digest and activity status persist; a change the network loses
is put back."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.conftest import PHONE, allow_console_error, cut_off, shoot


def test_notification_kinds_and_activity_status_are_saved(browser, register, gateway):
    session = register("settings")
    page = browser.page(session)
    page.goto("/#/settings")
    page.get_by_label("Likes of my posts").uncheck()
    expect(page.locator(".toast").last).to_have_text("Saved")
    page.get_by_label("Let people I follow back see when I'm active").uncheck()
    expect(page.get_by_label("Let people I follow back see when I'm active")).to_be_enabled()
    token = session["access_token"]
    settings = gateway.get("/v1/users/me/notification-settings", token=token).json
    assert settings["muted_types"] == ["LIKE"]
    assert gateway.get("/v1/users/me", token=token).json["show_activity_status"] is False
    page.reload()
    expect(page.get_by_label("Likes of my posts")).not_to_be_checked()


def test_a_change_the_network_loses_is_put_back(browser, register, gateway):
    session = register("settings")
    page = browser.page(session)
    page.goto("/#/settings")
    cut_off(page, "**/v1/users/me/notification-settings*")
    digest = page.get_by_label("Email me a digest of what I missed")
    digest.click()
    expect(page.locator(".toast.error")).to_contain_text("offline")
    expect(digest).to_be_checked()
    assert gateway.get("/v1/users/me/notification-settings", token=session["access_token"]).json["email_digest"]


def test_close_friends_are_added_by_username_and_removed(browser, register, gateway):
    session, friend = register("settings"), register("friend")
    page = browser.page(session)
    page.goto("/#/settings")
    name = friend["user"]["username"]
    page.get_by_label("Add a close friend").fill(name)
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.locator(".close-friends .person")).to_contain_text(name)
    listed = gateway.get("/v1/users/me/close-friends", token=session["access_token"]).json
    assert [u["id"] for u in listed["users"]] == [friend["user"]["id"]]
    page.get_by_role("button", name=f"Remove {name} from close friends").click()
    expect(page.locator(".close-friends .person")).to_have_count(0)
    assert gateway.get("/v1/users/me/close-friends", token=session["access_token"]).json.get("users", []) == []


def test_an_unknown_close_friend_is_named(browser, register):
    page = browser.page(register("settings"))
    allow_console_error(page, "status of 404")
    page.goto("/#/settings")
    page.get_by_label("Add a close friend").fill("nobody_has_this_name")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.locator(".inline-add .error")).to_have_text("No account named “nobody_has_this_name”.")


def test_blocked_accounts_are_listed_and_unblocked(browser, register, gateway):
    session, pest, other = register("settings"), register("pest"), register("other")
    token = session["access_token"]
    for blocked in (pest, other):
        assert gateway.post(f"/v1/users/{blocked['user']['id']}/block", {}, token=token).status == 200
    page = browser.page(session)
    page.goto("/#/settings")
    rows = page.locator(".blocked .person")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text(other["user"]["username"])  # newest block first
    shoot(page, "settings-blocked")
    page.get_by_role("button", name=f"Unblock {pest['user']['username']}").click()
    expect(rows).to_have_count(1)
    expect(page.locator(".toast").last).to_have_text(f"Unblocked {pest['user']['username']}")
    listed = gateway.get("/v1/users/me/blocked", token=token).json
    assert [u["id"] for u in listed["users"]] == [other["user"]["id"]]
    # unblocked, they see each other again
    assert gateway.get(f"/v1/users/{session['user']['id']}", token=pest["access_token"]).status == 200
    page.reload()
    expect(rows).to_have_count(1)


def test_no_blocked_accounts_says_so(browser, register):
    page = browser.page(register("settings"), viewport=PHONE)
    page.goto("/#/settings")
    expect(page.locator(".blocked + .status")).to_have_text("You block no one.")
