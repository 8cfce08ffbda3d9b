"""The composer: photos and videos in the order chosen, through the resumable upload API, photos
edited (filter, aspect, adjustments, alt text) before posting, # and @ suggestions in the caption; a
file the server rejects, a connection cut mid-upload, an edit the network loses, and the
open-upload limit (429) each end as the person sees."""

from __future__ import annotations

import hashlib
import re

import pytest
from playwright.sync_api import expect

from services.common.config import REPO_ROOT
from services.media import testclips
from tests.browser.conftest import allow_console_error, cut_off, shoot, word
from tests.e2e.http import UserClient
from tests.e2e.media_files import small_jpeg

CORPUS = REPO_ROOT / "tests" / "media-corpus"


def open_composer(browser, session):
    page = browser.page(session)
    page.goto("/#/new")
    expect(page.get_by_role("heading", name="New post")).to_be_visible()
    return page


def latest_post(gateway, session) -> dict:
    r = gateway.get(f"/v1/users/{session['user']['id']}/posts", token=session["access_token"])
    assert r.status == 200, r.body
    return r.json["posts"][0] if r.json["posts"] else {}


def test_photos_are_posted_in_the_order_chosen_with_caption_and_place(browser, register, gateway):
    session = register("composer")
    page = open_composer(browser, session)
    page.locator("#photos").set_input_files([str(CORPUS / "hopper.jpg"), str(CORPUS / "flower.jpg")])
    expect(page.locator(".picked li")).to_have_count(2)
    page.get_by_role("button", name="Move flower.jpg earlier").click()
    expect(page.locator(".picked li").first).to_contain_text("flower.jpg")
    page.get_by_label("Caption").fill("Two of them")
    page.get_by_label("Place").fill("Kew Gardens")
    page.get_by_label("Latitude").fill("51.4787")
    page.get_by_label("Longitude").fill("-0.2956")
    page.get_by_role("button", name="Share").click()
    expect(page.locator(".grid .tile")).to_have_count(1)
    post = latest_post(gateway, session)
    assert [(m["width"], m["height"]) for m in post["media"]] == [(480, 360), (128, 128)]
    assert (post["caption"], post["location"]["name"]) == ("Two of them", "Kew Gardens")


def test_a_file_the_server_rejects_is_named_with_its_reason_and_nothing_is_posted(browser, register, gateway):
    session = register("composer")
    page = open_composer(browser, session)
    allow_console_error(page, "status of 400")
    page.locator("#photos").set_input_files(str(CORPUS / "broken.png"))
    page.get_by_role("button", name="Share").click()
    expect(page.get_by_role("alert")).to_contain_text("broken.png: ")
    expect(page.locator(".picked li .note")).not_to_be_empty()
    assert latest_post(gateway, session) == {}


def test_an_upload_cut_mid_way_resumes_from_what_the_server_holds(browser, register, gateway):
    session = register("composer")
    page = open_composer(browser, session)
    allow_console_error(page, "ERR_CONNECTION_RESET|ERR_FAILED")
    offsets = []
    cut = []

    def lose_the_answer(route):
        # The chunk reaches the server; its answer never reaches the page (the connection drops).
        if not cut:
            route.fetch()
            cut.append(route.request.url)
            route.abort("connectionreset")
        else:
            route.continue_()

    page.on("request", lambda r: r.method == "PUT" and offsets.append(int(r.url.rsplit("offset=", 1)[1])))
    page.route("**/v1/uploads/*?offset=0", lose_the_answer)
    photo = CORPUS / "icc_profile_big.jpg"
    page.locator("#photos").set_input_files(str(photo))
    page.get_by_role("button", name="Share").click()
    expect(page.locator(".grid .tile")).to_have_count(1)
    # One chunk of 256 KiB was lost on the way back; the next request starts after it (no resend).
    assert cut and offsets == [0, 256 * 1024]
    assert len(latest_post(gateway, session)["media"]) == 1


def test_too_many_open_uploads_is_a_429_the_person_is_told_about(browser, register, gateway):
    session = register("composer")
    data = b"x" * 10
    for _ in range(20):  # PICTOR_MEDIA_MAX_OPEN_UPLOADS
        r = gateway.post("/v1/uploads", {"content_type": "image/jpeg", "size_bytes": len(data),
                                         "sha256": hashlib.sha256(data).hexdigest()}, token=session["access_token"])
        assert r.status == 200, r.body
    page = open_composer(browser, session)
    allow_console_error(page, "status of 429")
    page.locator("#photos").set_input_files(str(CORPUS / "hopper.jpg"))
    page.get_by_role("button", name="Share").click()
    expect(page.get_by_role("alert")).to_contain_text("hopper.jpg: Slow down: you have 20 uploads open")
    assert latest_post(gateway, session) == {}


@pytest.mark.parametrize("key", ["Enter", "Space"])
def test_the_picker_opens_from_the_keyboard(browser, register, key):
    page = open_composer(browser, register("composer"))
    # Playwright asks Chromium to intercept file choosers when the first listener is added, and that
    # request can arrive after the key: a chooser opened before it goes to no one (puppeteer#6040).
    # A listener from the start, and the focus checks' round trips, put the interception first.
    page.on("filechooser", lambda _chooser: None)
    page.locator("#photos").focus()
    expect(page.locator("#photos")).to_be_focused()  # the key goes to the picker, not to what had focus
    with page.expect_file_chooser() as chooser:
        page.keyboard.press(key)
    chooser.value.set_files(str(CORPUS / "hopper.jpg"))
    expect(page.locator(".picked li")).to_have_count(1)
    expect(page.get_by_role("img", name="Photo 1: hopper.jpg")).to_be_visible()


def test_an_edit_with_filter_aspect_adjustment_and_alt_text_is_applied_before_posting(browser, register, gateway):
    session = register("composer")
    page = open_composer(browser, session)
    page.locator("#photos").set_input_files(str(CORPUS / "hopper.jpg"))
    page.get_by_role("button", name="Edit hopper.jpg").click()
    sheet = page.get_by_role("dialog", name="Edit hopper.jpg")
    expect(sheet).to_be_visible()
    filters = sheet.get_by_role("radiogroup", name="Filter")
    expect(filters.get_by_role("radio", name="Normal")).to_be_checked()
    expect(filters.locator("img").first).to_have_attribute("src", re.compile(r"filter-normal\.jpg"))
    filters.get_by_text("Clarendon").click()
    expect(filters.get_by_role("radio", name="Clarendon")).to_be_checked()
    sheet.get_by_label("Aspect").select_option("SQUARE")
    sheet.get_by_label("Brightness").fill("20")
    sheet.get_by_label("Alt text").fill("Grace Hopper in uniform")
    shoot(page, "composer-edit")
    sheet.get_by_role("button", name="Done").click()
    expect(page.get_by_role("button", name="Edit hopper.jpg")).to_have_text("Edited")
    page.get_by_role("button", name="Share").click()
    expect(page.locator(".grid .tile")).to_have_count(1)
    posted = latest_post(gateway, session)["media"][0]
    assert posted["alt_text"] == "Grace Hopper in uniform"
    assert posted["width"] == posted["height"]
    media = gateway.get(f"/v1/media/{posted['id']}", token=session["access_token"]).json
    assert media["edit"]["filter"] == "clarendon" and media["edit"]["adjustments"]["brightness"] == 20


def test_an_edit_the_network_loses_is_named_and_nothing_is_posted(browser, register, gateway):
    session = register("composer")
    page = open_composer(browser, session)
    page.locator("#photos").set_input_files(str(CORPUS / "hopper.jpg"))
    page.get_by_role("button", name="Edit hopper.jpg").click()
    sheet = page.get_by_role("dialog", name="Edit hopper.jpg")
    sheet.get_by_label("Aspect").select_option("PORTRAIT")
    sheet.get_by_role("button", name="Done").click()
    cut_off(page, "**/v1/media/*:edit")
    page.get_by_role("button", name="Share").click()
    expect(page.get_by_role("alert")).to_contain_text("hopper.jpg: You seem to be offline")
    assert latest_post(gateway, session) == {}


def test_a_caption_gets_tag_and_mention_suggestions_taken_with_the_keyboard(browser, register, gateway, indexed):
    name = word()
    friend = register(name)  # username f"{name}<n>"
    author = register("composer")
    tagger = UserClient(gateway, friend)
    media = tagger.upload(small_jpeg(), "image/jpeg").json["id"]
    assert tagger.post("/v1/posts", {"media_ids": [media], "caption": f"#{name}trip"}).status == 200
    indexed()
    page = open_composer(browser, author)
    page.locator("#photos").set_input_files(str(CORPUS / "hopper.jpg"))
    caption = page.get_by_label("Caption")
    caption.press_sequentially(f"With @{name[:5]}")
    options = page.get_by_role("listbox", name="Tags and accounts").get_by_role("option")
    expect(options.first).to_contain_text(f"@{friend['user']['username']}")
    shoot(page, "composer-mention")
    caption.press("Enter")
    expect(caption).to_have_value(f"With @{friend['user']['username']} ")
    caption.press_sequentially(f"on #{name[:6]}")
    expect(options).to_have_text([re.compile(rf"^#{name}trip")])
    caption.press("Tab")
    expect(caption).to_have_value(f"With @{friend['user']['username']} on #{name}trip ")
    # Escape closes the list and the word stays as typed.
    caption.press_sequentially("#zzz")
    caption.press("Escape")
    expect(page.get_by_role("listbox", name="Tags and accounts")).to_be_hidden()
    page.get_by_role("button", name="Share").click()
    expect(page.locator(".grid .tile")).to_have_count(1)
    assert latest_post(gateway, author)["caption"] == f"With @{friend['user']['username']} on #{name}trip #zzz"


def test_a_video_and_a_photo_are_posted_together(browser, register, gateway, tmp_path):
    session = register("composer")
    clip = testclips.clip(tmp_path / "clip.mp4", seconds=1, width=320, height=240)
    page = open_composer(browser, session)
    page.locator("#photos").set_input_files([str(clip), str(CORPUS / "hopper.jpg")])
    expect(page.locator(".picked li")).to_have_count(2)
    expect(page.locator(".picked li").first.locator("video")).to_have_count(1)
    expect(page.get_by_role("button", name="Edit clip.mp4")).to_have_count(0)  # photos are edited, videos not
    expect(page.get_by_role("button", name="Edit hopper.jpg")).to_be_visible()
    shoot(page, "composer-video")
    page.get_by_label("Caption").fill("moving and still")
    page.get_by_role("button", name="Share").click()
    expect(page.locator(".toast").last).to_contain_text("once the video is processed")
    post = latest_post(gateway, session)
    assert [m.get("kind", "PHOTO") for m in post["media"]] == ["VIDEO", "PHOTO"], post["media"]
    assert post["caption"] == "moving and still"
