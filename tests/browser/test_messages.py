"""Direct messages: a conversation kept live from the stream (messages, typing, read receipts), a
message request accepted, a post shared into a conversation; a message the network loses and an
unknown username."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.conftest import PHONE, allow_console_error, cut_off, shoot
from tests.browser.helpers import follow, post_photos


def conversation(gateway, a, b) -> str:
    r = gateway.post("/v1/conversations", {"member_ids": [b["user"]["id"]]}, token=a["access_token"])
    assert r.status == 200, r.body
    return r.json["id"]


def mutuals(register, gateway):
    a, b = register("ann"), register("ben")
    follow(gateway, a, b)
    follow(gateway, b, a)
    return a, b


def test_messages_typing_and_read_receipts_arrive_live(browser, register, gateway):
    a, b = mutuals(register, gateway)
    ben = browser.page(b, viewport=PHONE)
    ben.goto("/#/direct")
    expect(ben.locator(".status")).to_contain_text("No conversations yet")
    ann = browser.page(a)
    ann.goto(f"/#/u/{b['user']['username']}")
    ann.get_by_role("button", name="Message").click()
    expect(ann.get_by_role("heading", name=b["user"]["username"])).to_be_visible()
    ann.get_by_role("textbox", name="Message").fill("Hello Ben")
    ann.get_by_role("button", name="Send").click()
    expect(ann.locator(".message.mine")).to_contain_text("Hello Ben")

    # Ben's inbox moves from the stream; opening the conversation reads it, and Ann sees the receipt.
    ben.get_by_role("link", name=a["user"]["username"]).click()
    expect(ben.locator(".message.theirs")).to_contain_text("Hello Ben")
    expect(ann.locator(".seen")).to_have_text("Seen")

    ben.get_by_role("textbox", name="Message").press_sequentially("Hi")
    expect(ann.locator(".typing")).to_have_text(f"{b['user']['username']} is typing…")
    ben.get_by_role("textbox", name="Message").press_sequentially(" Ann")
    ben.get_by_role("textbox", name="Message").press("Enter")
    expect(ann.locator(".message.theirs")).to_contain_text("Hi Ann")
    expect(ann.locator(".typing")).to_have_text("")
    expect(ben.locator(".seen")).to_have_text("Seen")
    shoot(ben, "conversation")
    shoot(ann, "conversation")


def test_a_message_request_is_accepted_and_moves_to_the_inbox(browser, register, gateway):
    stranger, me = register("stranger"), register("me")
    cid = conversation(gateway, stranger, me)
    r = gateway.post(f"/v1/conversations/{cid}/messages", {"client_message_id": "one", "text": "Hi there"},
                     token=stranger["access_token"])
    assert r.status == 200, r.body
    page = browser.page(me)
    page.goto("/#/direct")
    expect(page.locator(".status")).to_contain_text("No conversations yet")
    page.get_by_role("link", name="Requests").click()
    page.get_by_role("link", name=stranger["user"]["username"]).click()
    expect(page.locator(".message.theirs")).to_contain_text("Hi there")
    shoot(page, "message-request")
    page.get_by_role("button", name="Accept").click()
    expect(page.locator(".request-banner")).to_have_count(0)
    page.get_by_role("link", name="Back to messages").click()
    expect(page.locator(".conversation")).to_contain_text(stranger["user"]["username"])
    shoot(page, "inbox")


def test_a_post_is_shared_into_a_conversation(browser, register, gateway):
    a, b = mutuals(register, gateway)
    post_photos(gateway, b, caption="Look at this")
    conversation(gateway, a, b)
    page = browser.page(a)
    page.goto(f"/#/u/{b['user']['username']}")
    page.locator(".grid .tile").first.click()
    page.get_by_role("button", name="Share").click()
    sheet = page.get_by_role("dialog", name="Share post")
    sheet.get_by_role("button", name=f"Send to {b['user']['username']}").click()
    expect(page.locator(".toast").last).to_have_text(f"Sent to {b['user']['username']}")
    expect(sheet).to_have_count(0)
    ben = browser.page(b)
    ben.goto("/#/direct")
    ben.get_by_role("link", name=a["user"]["username"]).click()
    shared = ben.locator(".message.theirs .shared-post")
    expect(shared).to_contain_text("Look at this")
    shared.click()
    expect(ben.locator("article.post")).to_contain_text("Look at this")


def test_a_message_the_network_loses_says_so_and_keeps_the_text(browser, register, gateway):
    a, b = mutuals(register, gateway)
    cid = conversation(gateway, a, b)
    page = browser.page(a)
    page.goto(f"/#/direct/t/{cid}")
    cut_off(page, "**/v1/conversations/*/messages")
    box = page.get_by_role("textbox", name="Message")
    box.fill("Are you there?")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("alert")).to_contain_text("offline")
    expect(box).to_have_value("Are you there?")


def test_a_message_to_an_unknown_username_is_refused(browser, register):
    page = browser.page(register("lonely"))
    allow_console_error(page, "status of 404")
    page.goto("/#/direct")
    page.get_by_label("New message to").fill("nobody_has_this_name")
    page.get_by_role("button", name="Start").click()
    expect(page.get_by_role("alert")).to_have_text("No account named “nobody_has_this_name”.")


def send(gateway, sender, cid: str, text: str) -> dict:
    r = gateway.post(f"/v1/conversations/{cid}/messages", {"client_message_id": text, "text": text},
                     token=sender["access_token"])
    assert r.status == 200, r.body
    return r.json


def test_a_reaction_appears_and_goes_live_on_the_other_members_screen(browser, register, gateway):
    a, b = mutuals(register, gateway)
    cid = conversation(gateway, a, b)
    sent = send(gateway, a, cid, "Lunch at noon?")
    ann, ben = browser.page(a), browser.page(b, viewport=PHONE)
    for page in (ann, ben):
        page.goto(f"/#/direct/t/{cid}")
        expect(page.locator(f'.message[data-id="{sent["id"]}"]')).to_contain_text("Lunch at noon?")
    message = ben.locator(".message.theirs")
    message.get_by_role("button", name=f"Actions for the message from {a['user']['username']}").click()
    message.get_by_role("button", name="React ❤️").click()
    expect(message.get_by_role("button", name="React ❤️")).to_have_attribute("aria-pressed", "true")
    expect(ann.locator(".message.mine .reactions-line")).to_have_text("❤️")  # live, from the stream
    shoot(ben, "conversation-actions")
    # Another emoji replaces mine; the same one again takes it back.
    message.get_by_role("button", name="React 😂").click()
    expect(ann.locator(".message.mine .reactions-line")).to_have_text("😂")
    message.get_by_role("button", name="React 😂").click()
    expect(ann.locator(".message.mine .reactions-line")).to_have_text("")
    expect(message.locator(".reactions-line")).to_have_text("")
    listed = gateway.get(f"/v1/conversations/{cid}/messages", token=a["access_token"]).json["messages"]
    assert not listed[0].get("reactions"), listed[0]


def test_an_unsent_message_disappears_live_from_the_other_members_screen(browser, register, gateway):
    a, b = mutuals(register, gateway)
    cid = conversation(gateway, a, b)
    send(gateway, b, cid, "Keep this one")
    oops = send(gateway, a, cid, "Wrong chat, sorry")
    ann, ben = browser.page(a, viewport=PHONE), browser.page(b)
    for page in (ann, ben):
        page.goto(f"/#/direct/t/{cid}")
        expect(page.locator(".message")).to_have_count(2)
    expect(ben.get_by_role("button", name="Actions for your message")).to_have_count(1)  # Ben's own only
    ben.locator(".message.theirs .more").click()
    expect(ben.locator(".message.theirs").get_by_role("button", name="Unsend")).to_have_count(0)  # not his to unsend
    mine = ann.locator(f'.message[data-id="{oops["id"]}"]')
    mine.get_by_role("button", name="Actions for your message").click()
    mine.get_by_role("button", name="Unsend").click()
    expect(ann.locator(".message")).to_have_count(1)
    expect(ben.locator(".message")).to_have_count(1)  # live, from the stream
    expect(ben.locator(".message")).to_contain_text("Keep this one")
    listed = gateway.get(f"/v1/conversations/{cid}/messages", token=b["access_token"]).json["messages"]
    assert [m["text"] for m in listed] == ["Keep this one"]


def test_the_messages_badge_counts_unread_conversations_live(browser, register, gateway):
    me, ben, cat = register("me"), register("ben"), register("cat")
    for other in (ben, cat):
        follow(gateway, me, other)
        follow(gateway, other, me)
    page = browser.page(me, viewport=PHONE)
    page.goto("/#/")
    badge = page.locator("[data-nav=direct] .badge")
    expect(page.locator(".feed")).to_be_attached()
    expect(badge).to_be_hidden()
    with_ben = conversation(gateway, ben, me)
    send(gateway, ben, with_ben, "one")
    send(gateway, ben, with_ben, "two")
    expect(badge).to_have_text("1")  # one conversation, however many messages
    with_cat = conversation(gateway, cat, me)
    hey = send(gateway, cat, with_cat, "hey")
    expect(badge).to_have_text("2")
    expect(badge).to_have_attribute("aria-label", "2 conversations with unread messages")
    shoot(page, "badges")
    page.goto(f"/#/direct/t/{with_ben}")  # opening it reads it
    expect(page.locator(".message.theirs")).to_have_count(2)
    expect(badge).to_have_text("1")
    send(gateway, ben, with_ben, "three")  # read at once on the open screen
    expect(page.locator(".message.theirs")).to_have_count(3)
    expect(badge).to_have_text("1")
    # Read elsewhere (another device): the badge follows the receipt.
    r = gateway.post(f"/v1/conversations/{with_cat}:markRead", {"message_id": hey["id"]}, token=me["access_token"])
    assert r.status == 200, r.body
    expect(badge).to_be_hidden()
