"""The home feed: pages on scroll, photos as blurhash then srcset, carousels, likes (optimistic,
put back when the request fails), saves, comments with replies, and a feed that fails to load."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.conftest import allow_console_error, cut_off
from tests.browser.helpers import follow, post_photos, wait_for_feed


def test_the_feed_loads_the_next_page_when_scrolled_to_its_end(browser, register, gateway):
    viewer, author = register("reader"), register("author")
    follow(gateway, viewer, author)
    for i in range(12):
        post_photos(gateway, author, caption=f"post number {i}")
    wait_for_feed(gateway, viewer, 12)
    page = browser.page(viewer)
    page.goto("/#/")
    page.get_by_role("radio", name="Latest").check()
    posts = page.locator("article.post")
    expect(posts).to_have_count(10)  # one page
    posts.last.scroll_into_view_if_needed()
    page.mouse.wheel(0, 20000)
    expect(posts).to_have_count(12)
    expect(page.locator(".status")).to_have_text("You're all caught up.")
    expect(posts.first).to_contain_text("post number 11")


def test_a_carousel_shows_a_placeholder_then_the_right_size_and_moves_photo_by_photo(browser, register, gateway):
    viewer, author = register("reader"), register("author")
    follow(gateway, viewer, author)
    post_photos(gateway, author, caption="three", photos=3)
    wait_for_feed(gateway, viewer, 1)
    page = browser.page(viewer)
    page.goto("/#/")
    post = page.locator("article.post").first
    first = post.locator(".photo").first
    expect(first.locator("canvas.placeholder")).to_have_count(1)
    srcset = first.locator("img").get_attribute("srcset")
    # 96×64 px photos: every variant is the original size (never upscaled), named by its long edge.
    assert "320.webp" in srcset and srcset.endswith(" 96w")
    expect(first).to_have_class("photo loaded")  # the image has arrived over the placeholder
    expect(post.locator(".nav-prev")).to_be_hidden()  # nothing before the first photo
    post.get_by_role("button", name="Next photo").click()
    expect(post.locator(".carousel [aria-live]")).to_have_text("Photo 2 of 3")
    post.locator(".slides").press("ArrowRight")
    expect(post.locator(".carousel [aria-live]")).to_have_text("Photo 3 of 3")
    expect(post.locator(".nav-next")).to_be_hidden()


def test_like_counts_at_once_and_a_failed_like_is_put_back(browser, register, gateway):
    viewer, author = register("reader"), register("author")
    follow(gateway, viewer, author)
    created = post_photos(gateway, author, caption="like me")
    wait_for_feed(gateway, viewer, 1)
    page = browser.page(viewer)
    allow_console_error(page, "ERR_FAILED")
    page.goto("/#/")
    post = page.locator("article.post").first
    like = post.get_by_role("button", name="Like")
    with page.expect_response(lambda r: r.url.endswith("/like")):
        like.click()
        expect(like).to_have_attribute("aria-pressed", "true")
        expect(post.locator(".like-count")).to_have_text("1")
    # The network fails the unlike: the heart and the count come back.
    page.route("**/like", lambda route: route.abort("failed"))
    like.click()
    expect(page.locator(".toast.error")).to_contain_text("offline")
    expect(like).to_have_attribute("aria-pressed", "true")
    expect(post.locator(".like-count")).to_have_text("1")
    r = gateway.get(f"/v1/posts/{created['id']}", token=viewer["access_token"])
    assert r.json["liked_by_me"] is True


def test_save_and_comments_with_replies(browser, register, gateway):
    viewer, author = register("reader"), register("author")
    follow(gateway, viewer, author)
    created = post_photos(gateway, author, caption="talk to me")
    r = gateway.post(f"/v1/posts/{created['id']}/comments", {"text": "first!"}, token=author["access_token"])
    assert r.status == 200, r.body
    wait_for_feed(gateway, viewer, 1)
    page = browser.page(viewer)
    page.goto("/#/")
    post = page.locator("article.post").first
    post.get_by_role("button", name="Save").click()
    expect(post.get_by_role("button", name="Save")).to_have_attribute("aria-pressed", "true")
    post.get_by_role("button", name="View comments (1)").click()
    comment = post.locator(".comment", has_text="first!")
    comment.get_by_role("button", name="Reply").click()
    expect(post.locator(".replying")).to_contain_text(f"Replying to {author['user']['username']}")
    post.get_by_role("textbox", name="Comment").fill("a reply")
    post.get_by_role("button", name="Post", exact=True).click()
    expect(comment.locator(".replies")).to_contain_text("a reply")
    saved = gateway.get("/v1/users/me/saved", token=viewer["access_token"]).json["posts"]
    assert [p["id"] for p in saved] == [created["id"]]
    replies = gateway.get(f"/v1/comments/{r.json['id']}/replies", token=author["access_token"]).json["comments"]
    assert [c["text"] for c in replies] == ["a reply"]


def test_a_feed_that_cannot_load_says_so_and_tries_again(browser, register):
    page = browser.page(register("reader"))
    cut_off(page, "**/v1/feed*")
    page.goto("/#/")
    expect(page.get_by_role("alert")).to_contain_text("offline")
    page.unroute("**/v1/feed*")
    page.get_by_role("button", name="Try again").click()
    expect(page.locator(".status")).to_contain_text("Nothing here yet")
