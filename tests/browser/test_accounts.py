"""Signing up, in and out, and editing a profile, with their error states."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.conftest import allow_console_error


def test_a_wrong_password_is_refused_and_the_right_one_signs_in_and_out(browser, register, gateway):
    session = register("signin")
    page = browser.page()
    allow_console_error(page, "status of 401")
    page.goto("/")
    form = page.locator("form.auth")
    form.get_by_label("Username or email").fill(session["user"]["username"])
    form.get_by_label("Password").fill("not the password")
    form.get_by_role("button", name="Sign in").click()
    expect(form.get_by_role("alert")).not_to_be_empty()
    form.get_by_label("Password").fill("correct horse")
    form.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Home")).to_be_visible()
    stored = page.locator("body").evaluate("() => JSON.parse(localStorage.getItem('pictor.session'))")
    assert stored["user"]["username"] == session["user"]["username"]

    page.get_by_role("link", name="Settings").click()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    # Signing out revoked that refresh token on the server.
    assert gateway.post("/v1/sessions:refresh", {"refresh_token": stored["refresh_token"]}).status == 401


def test_a_taken_username_is_named_on_sign_up(browser, register):
    taken = register("taken")
    page = browser.page()
    allow_console_error(page, "status of 409")
    page.goto("/#/signup")
    form = page.locator("form.auth")
    form.get_by_label("Username", exact=True).fill(taken["user"]["username"])
    form.get_by_label("Email", exact=True).fill("someone.else@example.com")
    form.get_by_label("Password", exact=True).fill("correct horse")
    form.get_by_role("button", name="Sign up").click()
    expect(form.get_by_role("alert")).to_contain_text("taken")


def test_editing_the_profile_changes_name_bio_and_privacy(browser, register, gateway):
    session = register("editor")
    page = browser.page(session)
    page.goto("/#/edit")
    form = page.locator("main form")
    form.get_by_label("Name").fill("Grace Hopper")
    form.get_by_label("Bio").fill("Compilers & nanoseconds")
    form.get_by_label("Private account").check()
    form.get_by_role("button", name="Save").click()
    expect(page.locator(".profile .bio")).to_have_text("Compilers & nanoseconds")
    expect(page.locator(".profile .lock")).to_be_visible()
    me = gateway.get("/v1/users/me", token=session["access_token"]).json
    assert (me["display_name"], me["is_private"]) == ("Grace Hopper", True)


def test_a_bio_over_the_limit_is_refused_naming_the_field(browser, register):
    page = browser.page(register("editor"))
    allow_console_error(page, "status of 400")
    page.goto("/#/edit")
    # The form's maxlength keeps typing short; a pasted value set by script is still checked by the server.
    page.get_by_label("Bio").evaluate("(el) => { el.removeAttribute('maxlength'); el.value = 'x'.repeat(151); }")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert")).to_contain_text("bio")
    expect(page.get_by_label("Bio")).to_be_focused()
