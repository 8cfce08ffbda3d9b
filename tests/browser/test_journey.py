"""Two people in two browsers: A signs up and posts a photo; B finds A, follows, sees the post,
likes it and comments; A's notifications arrive live, without a reload."""

from __future__ import annotations

import time

from playwright.sync_api import expect

from services.common.config import REPO_ROOT
from tests.browser.conftest import PHONE, shoot

PHOTO = REPO_ROOT / "tests" / "media-corpus" / "flower2.jpg"


def sign_up(page, username: str, name: str) -> None:
    page.goto("/")
    page.get_by_role("link", name="Create an account").click()
    form = page.locator("form.auth")
    form.get_by_label("Username", exact=True).fill(username)
    form.get_by_label("Email", exact=True).fill(f"{username}@example.com")
    form.get_by_label("Name", exact=True).fill(name)
    form.get_by_label("Password", exact=True).fill("correct horse")
    form.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("heading", name="Home")).to_be_visible()


def test_a_posts_b_follows_likes_and_comments_and_a_is_notified_live(browser):
    stamp = str(time.time_ns())[-9:]
    a_name, b_name = f"ada{stamp}", f"bob{stamp}"
    a = browser.page()
    b = browser.page(viewport=PHONE)

    sign_up(a, a_name, "Ada Lovelace")
    a.get_by_role("link", name="New post").click()
    a.locator("#photos").set_input_files(str(PHOTO))
    a.get_by_label("Caption").fill("Heather in bloom #flowers")
    a.get_by_role("button", name="Share").click()
    expect(a.get_by_role("heading", name=a_name)).to_be_visible()
    expect(a.locator(".grid .tile")).to_have_count(1)

    sign_up(b, b_name, "Bob")
    b.get_by_placeholder("Go to @username").fill(a_name)
    b.get_by_placeholder("Go to @username").press("Enter")
    expect(b.get_by_role("heading", name=a_name)).to_be_visible()
    b.get_by_role("button", name="Follow").click()
    expect(b.get_by_role("button", name="Following")).to_be_visible()

    b.get_by_role("link", name="Home").click()
    post = b.locator("article.post").first
    expect(post).to_contain_text("Heather in bloom")
    expect(post.locator(".photo img")).to_have_attribute("alt", "Photo by Ada Lovelace: Heather in bloom #flowers")
    post.locator(".carousel").dblclick()
    expect(post.get_by_role("button", name="Like")).to_have_attribute("aria-pressed", "true")
    expect(post.locator(".like-count")).to_have_text("1")
    post.get_by_role("button", name="Comments").click()
    post.get_by_role("textbox", name="Comment").fill("Lovely colours")
    post.get_by_role("button", name="Post").click()
    expect(post.locator(".comments")).to_contain_text("Lovely colours")

    # A never reloads: the badge and the open notifications screen move from the stream alone.
    badge = a.locator(".nav .badge")
    expect(badge).to_have_text("3")  # the follow, the like and the comment
    a.get_by_role("link", name="Notifications").click()
    expect(a.locator(".notification")).to_have_count(3)
    expect(a.locator(".notifications")).to_contain_text(f"{b_name} liked your post")
    expect(badge).to_be_hidden()
    shoot(a, "journey-notifications")
    b.get_by_placeholder("Go to @username").fill(a_name)
    b.get_by_placeholder("Go to @username").press("Enter")
    b.get_by_role("button", name="Following").click()  # unfollow: takes the follow notification back
    expect(a.locator(".notification")).to_have_count(2)
