"""Stories through the gateway: posting, visibility, views, the tray, reactions and replies, deletes,
highlights, close friends and story mutes. (Expiry, with a short PICTOR_STORY_TTL: test_story_expiry_http.)"""

from __future__ import annotations

import time

import pytest

from tests.e2e.http import eventually, path_of
from tests.e2e.media_files import small_jpeg

pytestmark = pytest.mark.e2e

STORY_FIELDS = {"id", "author", "media", "audience", "allow_replies", "created_at", "expires_at"}


def upload(user) -> str:
    r = user.upload(small_jpeg(), "image/jpeg")
    assert r.status == 200, r.body
    return r.json["id"]


def post_story(user, media_id: str | None = None, **body) -> dict:
    r = user.post("/v1/stories", {"media_id": media_id or upload(user), **body})
    assert r.status == 200, r.body
    return r.json


def stories_of(viewer, author) -> list[dict]:
    r = viewer.get(f"/v1/users/{author.id}/stories")
    assert r.status == 200, r.body
    return r.json.get("stories", [])


def tray(user) -> list[dict]:
    r = user.get("/v1/stories/tray")
    assert r.status == 200, r.body
    return r.json.get("entries", [])


def tray_ids(user) -> list[str]:
    return [e["user"]["id"] for e in tray(user)]


def follow(a, b) -> None:
    r = a.post(f"/v1/users/{b.id}/follow")
    assert r.status == 200, r.body


def view(user, story: dict) -> None:
    r = user.post(f"/v1/stories/{story['id']}:view", {})
    assert r.status == 200, r.body


def viewers(author, story: dict, query: str = "") -> dict:
    r = author.get(f"/v1/stories/{story['id']}/viewers{query}")
    assert r.status == 200, r.body
    return r.json


def add_close_friend(owner, friend):
    return owner.gateway.request("PUT", f"/v1/users/me/close-friends/{friend.id}", {}, token=owner.token)


def reason(r) -> str:
    return r.json["details"][0]["reason"]


# --- posting ---------------------------------------------------------------------------


def test_a_story_has_its_shape_and_its_author_sees_the_view_count(new_user):
    author = new_user()
    story = post_story(author)
    assert STORY_FIELDS <= set(story)
    assert (story["author"]["id"], story["audience"], story["allow_replies"]) == (author.id, "EVERYONE", True)
    assert story["media"]["url_template"] and story["media"]["id"]
    assert story["view_count"] == "0"


def test_a_story_expires_24_hours_after_it_is_posted_by_default(new_user):
    from datetime import datetime
    story = post_story(new_user())
    created = datetime.fromisoformat(story["created_at"])
    expires = datetime.fromisoformat(story["expires_at"])
    assert (expires - created).total_seconds() == 86_400


def test_a_story_of_media_not_mine_is_refused_naming_media_id(new_user):
    owner, other = new_user(), new_user()
    r = other.post("/v1/stories", {"media_id": upload(owner)})
    assert r.status == 400 and reason(r) == "MEDIA_NOT_FOUND"
    assert r.json["details"][0]["metadata"]["field"] == "media_id"


def test_an_unknown_audience_is_refused(new_user):
    user = new_user()
    r = user.post("/v1/stories", {"media_id": upload(user), "audience": "FRIENDS_OF_FRIENDS"})
    assert r.status == 400, r.body


def test_at_most_100_active_stories(new_user):
    user = new_user()
    media_id = upload(user)
    for _ in range(100):
        post_story(user, media_id)
    r = user.post("/v1/stories", {"media_id": media_id})
    assert r.status == 429 and reason(r) == "TOO_MANY_STORIES"


# --- the full-screen (9:16) variant ----------------------------------------------------


def served_size(user, url: str) -> tuple[int, int]:
    """The pixel size of the image behind a signed URL, fetched through Envoy."""
    import pyvips
    r = user.gateway.get(path_of(url))
    assert r.status == 200, r.body
    image = pyvips.Image.new_from_buffer(r.body, "")
    return image.width, image.height


def landscape_jpeg() -> bytes:
    return small_jpeg(640, 360)


def full_screen_of(user, media_id: str) -> list[dict]:
    """The photo's full-screen rendition once media has made it (after the story is answered)."""
    def formats() -> list[str]:
        r = user.get(f"/v1/media/{media_id}")
        assert r.status == 200, r.body
        return sorted(v["format"] for v in r.json.get("full_screen", []))

    eventually(formats, ["jpeg", "webp"], timeout_s=30)
    return user.get(f"/v1/media/{media_id}").json["full_screen"]


def test_a_story_is_answered_before_its_full_screen_rendition_is_made_and_then_shows_it(new_user):
    author = new_user()
    story = post_story(author)
    assert story["media"].get("full_screen", []) == [], "rendered inside the call"
    full_screen_of(author, story["media"]["id"])
    (shown,) = stories_of(author, author)
    assert sorted(v["format"] for v in shown["media"]["full_screen"]) == ["jpeg", "webp"]


@pytest.mark.parametrize("make", [small_jpeg, landscape_jpeg], ids=["tiny", "landscape"])
def test_a_storys_photo_gets_a_1080_by_1920_full_screen_variant_in_jpeg_and_webp(new_user, make):
    author = new_user()
    r = author.upload(make(), "image/jpeg")
    assert r.status == 200, r.body
    post_story(author, r.json["id"])
    full_screen = full_screen_of(author, r.json["id"])
    assert sorted(v["format"] for v in full_screen) == ["jpeg", "webp"]
    for v in full_screen:
        assert (v["width"], v["height"]) == (1080, 1920)
        assert served_size(author, v["url"]) == (1080, 1920)


def test_a_viewer_gets_the_full_screen_variant_with_the_story(new_user):
    author, viewer = new_user(), new_user()
    full_screen_of(author, post_story(author)["media"]["id"])
    (shown,) = stories_of(viewer, author)
    jpeg = next(v for v in shown["media"]["full_screen"] if v["format"] == "jpeg")
    assert served_size(viewer, jpeg["url"]) == (1080, 1920)


def test_media_not_in_a_story_has_no_full_screen_variant_and_the_sizes_stay(new_user):
    author = new_user()
    media_id = upload(author)
    before = author.get(f"/v1/media/{media_id}").json
    assert before.get("full_screen", []) == []
    post_story(author, media_id)
    full_screen_of(author, media_id)
    after = author.get(f"/v1/media/{media_id}").json
    assert after["sizes"] == before["sizes"] == [150, 320, 640, 1080]
    assert {v["size"] for v in after["variants"]} == {150, 320, 640, 1080}


# --- visibility ------------------------------------------------------------------------


def test_a_public_accounts_stories_are_seen_by_anyone_signed_in_oldest_first(new_user):
    author, stranger = new_user(), new_user()
    first, second = post_story(author), post_story(author)
    assert [s["id"] for s in stories_of(stranger, author)] == [first["id"], second["id"]]


def test_stories_need_a_signed_in_user(new_user, gateway):
    author = new_user()
    post_story(author)
    assert gateway.get(f"/v1/users/{author.id}/stories").status == 401


def test_a_private_accounts_stories_are_for_approved_followers_only(new_user):
    author, follower, stranger = new_user(private=True), new_user(), new_user()
    story = post_story(author)
    follow(follower, author)
    assert author.post(f"/v1/follow-requests/{follower.id}:approve").status == 200
    assert [s["id"] for s in stories_of(follower, author)] == [story["id"]]
    assert stranger.get(f"/v1/users/{author.id}/stories").status == 404
    assert stranger.post(f"/v1/stories/{story['id']}:view", {}).status == 404


def test_a_block_hides_stories_both_ways(new_user):
    author, viewer = new_user(), new_user()
    story = post_story(author)
    follow(viewer, author)
    assert author.post(f"/v1/users/{viewer.id}/block").status == 200
    assert viewer.get(f"/v1/users/{author.id}/stories").status == 404
    assert viewer.post(f"/v1/stories/{story['id']}:view", {}).status == 404
    assert author.id not in tray_ids(viewer)
    post_story(viewer)
    assert author.get(f"/v1/users/{viewer.id}/stories").status == 404


def test_unfollowing_a_private_account_hides_its_stories(new_user):
    author, follower = new_user(private=True), new_user()
    follow(follower, author)
    author.post(f"/v1/follow-requests/{follower.id}:approve")
    story = post_story(author)
    assert author.id in tray_ids(follower)
    assert follower.delete(f"/v1/users/{author.id}/follow").status == 200
    assert follower.get(f"/v1/users/{author.id}/stories").status == 404
    assert follower.post(f"/v1/stories/{story['id']}:view", {}).status == 404
    assert author.id not in tray_ids(follower)


def test_switching_to_private_hides_stories_from_non_followers(new_user):
    author, follower, stranger = new_user(), new_user(), new_user()
    follow(follower, author)
    story = post_story(author)
    assert stranger.post(f"/v1/stories/{story['id']}:view", {}).status == 200
    assert author.patch("/v1/users/me", {"is_private": True}).status == 200
    assert stranger.get(f"/v1/users/{author.id}/stories").status == 404
    assert [s["id"] for s in stories_of(follower, author)] == [story["id"]]


def test_close_friends_stories_are_for_the_authors_list_only(new_user):
    author, friend, follower = new_user(), new_user(), new_user()
    follow(friend, author)
    follow(follower, author)
    assert add_close_friend(author, friend).status == 200
    public = post_story(author)
    secret = post_story(author, audience="CLOSE_FRIENDS")
    assert [s["id"] for s in stories_of(friend, author)] == [public["id"], secret["id"]]
    assert [s["id"] for s in stories_of(follower, author)] == [public["id"]]
    assert follower.post(f"/v1/stories/{secret['id']}:view", {}).status == 404
    counts = {e["user"]["id"]: e["story_count"] for e in tray(friend)}, \
        {e["user"]["id"]: e["story_count"] for e in tray(follower)}
    assert (counts[0][author.id], counts[1][author.id]) == ("2", "1")


def test_the_close_friends_list_is_mine_to_edit_and_read(new_user):
    me, a, b = new_user(), new_user(), new_user()
    for friend in (a, b):
        assert add_close_friend(me, friend).status == 200
    r = me.get("/v1/users/me/close-friends?page_size=1")
    assert r.status == 200 and [u["id"] for u in r.json["users"]] == [b.id]
    r = me.get(f"/v1/users/me/close-friends?page_size=1&page_token={r.json['next_page_token']}")
    assert [u["id"] for u in r.json["users"]] == [a.id]
    assert me.delete(f"/v1/users/me/close-friends/{a.id}").status == 200
    assert [u["id"] for u in me.get("/v1/users/me/close-friends").json["users"]] == [b.id]


def test_close_friends_refuse_myself_and_unknown_users(new_user):
    me = new_user()
    assert add_close_friend(me, me).status == 400
    assert me.gateway.request("PUT", "/v1/users/me/close-friends/999999999999", {}, token=me.token).status == 404


# --- views -----------------------------------------------------------------------------


def test_a_view_is_idempotent_and_the_authors_own_views_do_not_count(new_user):
    author, a, b = new_user(), new_user(), new_user()
    story = post_story(author)
    for user in (a, a, b, author):
        view(user, story)
    listed = viewers(author, story)
    assert listed["view_count"] == "2"
    assert [v["user"]["id"] for v in listed["viewers"]] == [b.id, a.id]


def test_seen_by_me_follows_my_views(new_user):
    author, viewer = new_user(), new_user()
    first, second = post_story(author), post_story(author)
    view(viewer, first)
    assert [(s["id"], s["seen_by_me"]) for s in stories_of(viewer, author)] == [(first["id"], True),
                                                                                (second["id"], False)]


def test_the_view_count_is_the_authors_alone(new_user):
    author, viewer = new_user(), new_user()
    story = post_story(author)
    view(viewer, story)
    assert (stories_of(author, author)[0]["view_count"], stories_of(viewer, author)[0]["view_count"]) == ("1", "0")


def test_viewers_are_the_authors_alone(new_user):
    author, viewer = new_user(), new_user()
    story = post_story(author)
    view(viewer, story)
    r = viewer.get(f"/v1/stories/{story['id']}/viewers")
    assert r.status == 404, r.body


def test_viewers_come_in_pages_newest_first(new_user):
    author = new_user()
    story = post_story(author)
    fans = [new_user() for _ in range(3)]
    for fan in fans:
        view(fan, story)
    first = viewers(author, story, "?page_size=2")
    rest = viewers(author, story, f"?page_size=2&page_token={first['next_page_token']}")
    assert [v["user"]["id"] for v in first["viewers"] + rest["viewers"]] == [f.id for f in reversed(fans)]
    assert rest["next_page_token"] == ""


# --- the tray --------------------------------------------------------------------------


def test_the_tray_puts_me_first_then_unseen_before_seen_newest_first(new_user):
    me, old, new, seen = new_user(), new_user(), new_user(), new_user()
    for author in (old, new, seen):
        follow(me, author)
    seen_story = post_story(seen)
    post_story(old)
    post_story(new)
    post_story(me)
    view(me, seen_story)
    entries = tray(me)
    assert [e["user"]["id"] for e in entries] == [me.id, new.id, old.id, seen.id]
    assert [e["has_unseen"] for e in entries][1:] == [True, True, False]


def test_the_tray_leaves_out_accounts_i_do_not_follow_and_those_without_stories(new_user):
    me, followed, quiet, stranger = new_user(), new_user(), new_user(), new_user()
    follow(me, followed)
    follow(me, quiet)
    post_story(followed)
    post_story(stranger)
    assert tray_ids(me) == [followed.id]


def test_muting_stories_takes_an_account_out_of_my_tray_without_unfollowing(new_user):
    me, author = new_user(), new_user()
    follow(me, author)
    post_story(author)
    assert me.post(f"/v1/users/{author.id}/mute-stories").status == 200
    assert tray_ids(me) == []
    assert len(stories_of(me, author)) == 1
    assert me.delete(f"/v1/users/{author.id}/mute-stories").status == 200
    assert tray_ids(me) == [author.id]


def test_the_tray_counts_stories_and_says_when_the_newest_was_posted(new_user):
    me, author = new_user(), new_user()
    follow(me, author)
    post_story(author)
    newest = post_story(author)
    [entry] = tray(me)
    assert entry["story_count"] == "2"
    assert entry["latest_at"][:19] == newest["created_at"][:19]


# --- reactions and replies -------------------------------------------------------------


def test_a_reaction_shows_in_the_viewers_and_notifies_the_author(new_user, settle_notifications):
    author, fan = new_user(), new_user()
    story = post_story(author)
    assert fan.post(f"/v1/stories/{story['id']}/reactions", {"emoji": "🔥"}).status == 200
    listed = viewers(author, story)
    assert (listed["view_count"], listed["viewers"][0]["reaction"]) == ("1", "🔥")
    settle_notifications()
    groups = author.get("/v1/notifications").json["groups"]
    assert [(g["type"], g["actors"][0]["id"]) for g in groups] == [("STORY_REACTION", fan.id)]


def conversations(user, folder: str) -> list[dict]:
    r = user.get(f"/v1/conversations?folder={folder}")
    assert r.status == 200, r.body
    return r.json.get("conversations", [])


def test_a_reply_arrives_as_a_direct_message_in_the_authors_requests(new_user, settle_notifications):
    author, fan = new_user(), new_user()
    story = post_story(author)
    assert fan.post(f"/v1/stories/{story['id']}/replies", {"text": "where is this?"}).status == 200
    eventually(lambda: len(conversations(author, "REQUESTS")), 1, timeout_s=15)
    (conversation,) = conversations(author, "REQUESTS")
    (message,) = author.get(f"/v1/conversations/{conversation['id']}/messages").json["messages"]
    assert (message["kind"], message["sender_id"], message["text"]) == ("MESSAGE_KIND_STORY", fan.id,
                                                                       "where is this?")
    assert message["story"]["story_id"] == story["id"] and message["story"]["story"]["author"]["id"] == author.id
    settle_notifications()
    assert [g["type"] for g in author.get("/v1/notifications").json["groups"]] == ["MESSAGE_REQUEST"]


def test_replies_of_someone_the_author_follows_go_to_one_conversation_in_the_inbox(new_user):
    author, friend = new_user(), new_user()
    assert author.post(f"/v1/users/{friend.id}/follow", {}).status == 200
    first, second = post_story(author), post_story(author)
    for story, text in ((first, "one"), (second, "two")):
        assert friend.post(f"/v1/stories/{story['id']}/replies", {"text": text}).status == 200

    def texts() -> list[str]:
        inbox = conversations(author, "INBOX")
        assert len(inbox) <= 1, inbox
        r = author.get(f"/v1/conversations/{inbox[0]['id']}/messages") if inbox else None
        return sorted(m["text"] for m in r.json.get("messages", [])) if r else []

    eventually(texts, ["one", "two"], timeout_s=15)
    assert conversations(author, "REQUESTS") == []


def test_reactions_and_replies_are_refused_when_the_author_turned_them_off(new_user):
    author, fan = new_user(), new_user()
    story = post_story(author, allow_replies=False)
    r = fan.post(f"/v1/stories/{story['id']}/reactions", {"emoji": "🔥"})
    assert r.status == 403 and reason(r) == "STORY_REPLIES_OFF"
    r = fan.post(f"/v1/stories/{story['id']}/replies", {"text": "hi"})
    assert r.status == 403 and reason(r) == "STORY_REPLIES_OFF"


def test_a_reaction_must_be_an_emoji_and_a_reply_must_have_text(new_user):
    author, fan = new_user(), new_user()
    story = post_story(author)
    assert fan.post(f"/v1/stories/{story['id']}/reactions", {"emoji": "lol"}).status == 400
    assert fan.post(f"/v1/stories/{story['id']}/replies", {"text": "   "}).status == 400


# --- deletes ---------------------------------------------------------------------------


def test_a_deleted_story_is_gone_at_once_from_tray_stories_viewers_and_highlights(new_user):
    author, fan = new_user(), new_user()
    follow(fan, author)
    kept, doomed = post_story(author), post_story(author)
    view(fan, doomed)
    h = author.post("/v1/highlights", {"title": "trip", "story_ids": [kept["id"], doomed["id"]]}).json
    assert author.delete(f"/v1/stories/{doomed['id']}").status == 200
    assert [s["id"] for s in stories_of(fan, author)] == [kept["id"]]
    assert tray(fan)[0]["story_count"] == "1"
    assert author.get(f"/v1/stories/{doomed['id']}/viewers").status == 404
    assert fan.post(f"/v1/stories/{doomed['id']}:view", {}).status == 404
    assert [s["id"] for s in fan.get(f"/v1/highlights/{h['id']}").json["stories"]] == [kept["id"]]
    assert author.delete(f"/v1/stories/{doomed['id']}").status == 200  # again: harmless


def test_only_the_author_deletes_a_story(new_user):
    author, other = new_user(), new_user()
    story = post_story(author)
    assert other.delete(f"/v1/stories/{story['id']}").status == 404
    assert len(stories_of(other, author)) == 1


def test_a_deleted_storys_media_is_cleaned_up(new_user):
    author = new_user()
    media_id = upload(author)
    story = post_story(author, media_id)
    assert author.delete(f"/v1/stories/{story['id']}").status == 200
    deadline = time.monotonic() + 20
    while author.get(f"/v1/media/{media_id}").status != 404:
        assert time.monotonic() < deadline, "the story's media was not released"
        time.sleep(0.1)


# --- highlights ------------------------------------------------------------------------


def test_highlights_are_created_listed_read_edited_and_deleted(new_user):
    author, fan = new_user(), new_user()
    a, b, c = post_story(author), post_story(author), post_story(author)
    r = author.post("/v1/highlights", {"title": "summer", "story_ids": [a["id"], b["id"]], "cover_story_id": b["id"]})
    assert r.status == 200, r.body
    h = r.json
    assert (h["title"], h["cover"]["id"], [s["id"] for s in h["stories"]]) == ("summer", b["id"], [a["id"], b["id"]])
    [listed] = fan.get(f"/v1/users/{author.id}/highlights").json["highlights"]
    assert (listed["id"], listed["story_count"], listed.get("stories", [])) == (h["id"], "2", [])
    r = author.patch(f"/v1/highlights/{h['id']}", {"title": "summer '26", "add_story_ids": [c["id"]],
                                                    "remove_story_ids": [a["id"]]})
    assert r.status == 200, r.body
    assert (r.json["title"], [s["id"] for s in r.json["stories"]]) == ("summer '26", [b["id"], c["id"]])
    assert fan.patch(f"/v1/highlights/{h['id']}", {"title": "mine"}).status == 404
    assert author.delete(f"/v1/highlights/{h['id']}").status == 200
    assert fan.get(f"/v1/highlights/{h['id']}").status == 404


def test_a_highlight_holds_only_my_own_stories(new_user):
    author, other = new_user(), new_user()
    theirs = post_story(other)
    r = author.post("/v1/highlights", {"title": "x", "story_ids": [theirs["id"]]})
    assert r.status == 400 and reason(r) == "STORY_NOT_FOUND"
    assert author.post("/v1/highlights", {"title": "", "story_ids": [post_story(author)["id"]]}).status == 400


def test_close_friends_stories_stay_close_friends_only_inside_highlights(new_user):
    author, friend, follower = new_user(), new_user(), new_user()
    add_close_friend(author, friend)
    public, secret = post_story(author), post_story(author, audience="CLOSE_FRIENDS")
    only_secret = author.post("/v1/highlights", {"title": "cf", "story_ids": [secret["id"]]}).json
    both = author.post("/v1/highlights", {"title": "all", "story_ids": [public["id"], secret["id"]]}).json
    assert [s["id"] for s in friend.get(f"/v1/highlights/{both['id']}").json["stories"]] == [public["id"], secret["id"]]
    assert [s["id"] for s in follower.get(f"/v1/highlights/{both['id']}").json["stories"]] == [public["id"]]
    assert follower.get(f"/v1/highlights/{only_secret['id']}").status == 404
    assert [h["id"] for h in follower.get(f"/v1/users/{author.id}/highlights").json["highlights"]] == [both["id"]]


def test_a_private_accounts_highlights_are_for_its_followers(new_user):
    author, stranger = new_user(private=True), new_user()
    h = author.post("/v1/highlights", {"title": "x", "story_ids": [post_story(author)["id"]]}).json
    assert stranger.get(f"/v1/highlights/{h['id']}").status == 404
    assert stranger.get(f"/v1/users/{author.id}/highlights").status == 404
