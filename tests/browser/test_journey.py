"""Two people in two browsers: A signs up and posts a photo with a filter; B finds A by a misspelt
name, follows, sees the post, likes it and comments; A's notifications arrive live, without a
reload; they exchange messages live; B views A's story and A sees B among its viewers."""

from __future__ import annotations

import time

from playwright.sync_api import expect

from services.common.config import REPO_ROOT
from tests.browser.conftest import PHONE, shoot, word

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


def misspelt(word: str) -> str:
    """The word with its second and third letters swapped ("jhon" for "john")."""
    return word[0] + word[2] + word[1] + word[3:]


def test_a_posts_b_follows_likes_and_comments_and_a_is_notified_live(browser, indexed):
    stamp = str(time.time_ns())[-9:]
    a_name, b_name = f"ada{stamp}", f"bob{stamp}"
    surname = word().title()  # made up, so that only A answers to it
    a = browser.page()
    b = browser.page(viewport=PHONE)

    sign_up(a, a_name, f"Ada {surname}")
    a.get_by_role("link", name="New post").click()
    a.locator("#photos").set_input_files(str(PHOTO))
    a.get_by_role("button", name="Edit flower2.jpg").click()
    a.get_by_role("dialog").get_by_text("Clarendon").click()
    a.get_by_role("dialog").get_by_role("button", name="Done").click()
    expect(a.get_by_role("button", name="Edit flower2.jpg")).to_have_text("Edited")
    a.get_by_label("Caption").fill("Heather in bloom #flowers")
    a.get_by_role("button", name="Share").click()
    expect(a.get_by_role("heading", name=a_name)).to_be_visible()
    expect(a.locator(".grid .tile")).to_have_count(1)

    sign_up(b, b_name, "Bob")
    # B finds A by her name, misspelt, in search's suggestions.
    indexed()
    b.get_by_role("link", name="Search").click()
    b.get_by_role("combobox").press_sequentially(misspelt(surname.lower()))
    b.get_by_role("option", name=a_name).click()
    expect(b.get_by_role("heading", name=a_name)).to_be_visible()
    b.get_by_role("button", name="Follow").click()
    expect(b.get_by_role("button", name="Following")).to_be_visible()

    b.get_by_role("link", name="Home").click()
    post = b.locator("article.post").first
    expect(post).to_contain_text("Heather in bloom")
    expect(post.locator(".photo img")).to_have_attribute("alt", f"Photo by Ada {surname}: Heather in bloom #flowers")
    post.locator(".carousel").dblclick()
    expect(post.get_by_role("button", name="Like")).to_have_attribute("aria-pressed", "true")
    expect(post.locator(".like-count")).to_have_text("1")
    post.get_by_role("button", name="Comments").click()
    post.get_by_role("textbox", name="Comment").fill("Lovely colours")
    post.get_by_role("button", name="Post", exact=True).click()
    expect(post.locator(".comments")).to_contain_text("Lovely colours")

    # A never reloads: the badge and the open notifications screen move from the stream alone.
    badge = a.locator("[data-nav=notifications] .badge")
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

    b.get_by_role("button", name="Follow").click()
    expect(b.get_by_role("button", name="Following")).to_be_visible()

    # Messages, live both ways: B writes first (a request for A, who does not follow B).
    a.get_by_role("link", name="Messages").click()
    a.get_by_role("link", name="Requests").click()
    expect(a.locator(".status")).to_have_text("No message requests.")
    b.get_by_role("button", name="Message").click()
    b.get_by_role("textbox", name="Message").fill("Where was the heather?")
    b.get_by_role("button", name="Send").click()
    a.get_by_role("link", name=b_name).click()
    expect(a.locator(".message.theirs")).to_contain_text("Where was the heather?")
    a.get_by_role("button", name="Accept").click()
    expect(a.locator(".request-banner")).to_have_count(0)
    a.get_by_role("textbox", name="Message").fill("On the moor above the village")
    a.get_by_role("textbox", name="Message").press("Enter")
    expect(b.locator(".message.theirs")).to_contain_text("On the moor above the village")
    expect(a.locator(".seen")).to_have_text("Seen")
    shoot(b, "journey-messages")

    # A's story: B views it, A finds B among the viewers.
    for page in (a, b):
        page.emulate_media(reduced_motion="reduce")
    a.get_by_role("link", name="Home").click()
    a.get_by_role("link", name="Your story: add one").click()
    a.locator("#story-photo").set_input_files(str(PHOTO))
    a.get_by_role("button", name="Share to your story").click()
    expect(a.get_by_role("button", name="Your story", exact=True)).to_be_visible()
    b.get_by_role("link", name="Home").click()
    b.get_by_role("button", name=f"Story of {a_name}, new").click()
    expect(b.get_by_role("dialog", name=f"Stories of {a_name}").locator(".story-image")).to_be_visible()
    shoot(b, "journey-story")
    b.keyboard.press("Escape")
    expect(b.get_by_role("button", name=f"Story of {a_name}", exact=True)).to_be_visible()  # seen now
    a.get_by_role("button", name="Your story", exact=True).click()
    a.get_by_role("button", name="Viewers (1)").click()
    expect(a.locator(".story-panel .person")).to_contain_text(b_name)
    shoot(a, "journey-story-viewers")
