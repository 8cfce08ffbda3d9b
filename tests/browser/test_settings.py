"""Settings: notification kinds, the digest and activity status persist; a change the network loses
is put back."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.conftest import cut_off


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
