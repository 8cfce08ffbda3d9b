"""The notification centre through the gateway: what notifies whom, grouping, take-backs, reading."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

from services.common.dependencies import sync_redis
from services.common.events import decode
from tests.e2e.test_engagement_http import comment, create_post

pytestmark = pytest.mark.e2e

GROUP_FIELDS = {"group_key", "type", "post", "comment", "actors", "actor_count", "notification_count", "latest_at",
                "unread"}


@pytest.fixture
def bus(stack):
    client = sync_redis(stack.settings.redis_url)
    yield client
    client.close()


def groups(user, query: str = "") -> list[dict]:
    r = user.get(f"/v1/notifications{query}")
    assert r.status == 200, r.body
    return r.json["groups"]


def kinds(user) -> list[str]:
    return [g["type"] for g in groups(user)]


def unread(user) -> int:
    r = user.get("/v1/notifications:unreadCount")
    assert r.status == 200, r.body
    return int(r.json["count"])


def actor_ids(group: dict) -> list[str]:
    return [a["id"] for a in group["actors"]]


# --- what notifies ----------------------------------------------------------------------


def test_a_like_notifies_the_author_with_the_group_shape(new_user, settle_notifications):
    author, fan = new_user(), new_user()
    post = create_post(author)
    fan.post(f"/v1/posts/{post}/like")
    settle_notifications()
    [group] = groups(author)
    assert set(group) == GROUP_FIELDS - {"comment"}  # post? and comment? appear when they apply
    assert (group["type"], group["post"]["id"], group["actor_count"], group["notification_count"], group["unread"]) \
        == ("LIKE", post, "1", "1", True)
    assert group["actors"] == [{"id": fan.id, "username": fan.username, "display_name": fan.session["user"]
                                ["display_name"], "avatar_url": ""}]
    assert "/v1/media/" in group["post"]["thumbnail_url"] and "sig=" in group["post"]["thumbnail_url"]


def test_likes_of_one_post_make_one_group_with_the_three_newest_actors(new_user, settle_notifications):
    author, fans = new_user(), [new_user() for _ in range(4)]
    post = create_post(author)
    for fan in fans:
        fan.post(f"/v1/posts/{post}/like")
        settle_notifications()
    [group] = groups(author)
    assert (group["actor_count"], group["notification_count"]) == ("4", "4")
    assert actor_ids(group) == [fans[3].id, fans[2].id, fans[1].id]


def test_likes_of_two_posts_make_two_groups(new_user, settle_notifications):
    author, fan = new_user(), new_user()
    first, second = create_post(author), create_post(author)
    fan.post(f"/v1/posts/{first}/like")
    fan.post(f"/v1/posts/{second}/like")
    settle_notifications()
    assert [g["post"]["id"] for g in groups(author)] == [second, first]


def test_nobody_is_notified_of_their_own_like_or_comment(new_user, settle_notifications):
    author = new_user()
    post = create_post(author)
    author.post(f"/v1/posts/{post}/like")
    comment(author, post, "mine")
    settle_notifications()
    assert groups(author) == []


def test_comments_stand_alone(new_user, settle_notifications):
    author, fan = new_user(), new_user()
    post = create_post(author)
    first, second = comment(fan, post, "one"), comment(fan, post, "two")
    settle_notifications()
    found = groups(author)
    assert [(g["type"], g["comment"]["id"]) for g in found] == [("COMMENT", second["id"]), ("COMMENT", first["id"])]


def test_a_reply_notifies_the_parent_comments_author_and_the_posts(new_user, settle_notifications):
    author, commenter, replier = new_user(), new_user(), new_user()
    post = create_post(author)
    parent = comment(commenter, post, "first")
    reply = comment(replier, post, "answer", parent=parent["id"])
    settle_notifications()
    [to_commenter] = groups(commenter)
    assert (to_commenter["type"], to_commenter["comment"]) == ("REPLY", {"id": reply["id"],
                                                                          "parent_comment_id": parent["id"]})
    assert kinds(author) == ["COMMENT", "COMMENT"]


def test_a_mention_in_a_comment_notifies_the_one_mentioned(new_user, settle_notifications):
    author, fan, friend = new_user(), new_user(), new_user()
    post = create_post(author)
    said = comment(fan, post, f"look @{friend.username}")
    settle_notifications()
    [group] = groups(friend)
    assert (group["type"], group["comment"]["id"], actor_ids(group)) == ("MENTION", said["id"], [fan.id])


def test_a_mention_in_a_caption_notifies_and_editing_it_out_takes_it_back(new_user, settle_notifications):
    author, friend = new_user(), new_user()
    post = create_post(author, f"with @{friend.username}")
    settle_notifications()
    assert [(g["type"], g["post"]["id"]) for g in groups(friend)] == [("MENTION", post)]
    assert author.patch(f"/v1/posts/{post}", {"caption": "alone"}).status == 200
    settle_notifications()
    assert groups(friend) == []


def test_a_mention_in_a_private_post_does_not_notify_who_cannot_see_it(new_user, settle_notifications):
    author, stranger = new_user(private=True), new_user()
    create_post(author, f"hi @{stranger.username}")
    settle_notifications()
    assert groups(stranger) == []


def test_follows_group_and_an_unfollow_takes_its_follow_back(new_user, settle_notifications):
    star, first, second = new_user(), new_user(), new_user()
    first.post(f"/v1/users/{star.id}/follow")
    second.post(f"/v1/users/{star.id}/follow")
    settle_notifications()
    [group] = groups(star)
    assert (group["type"], actor_ids(group), "post" in group) == ("FOLLOW", [second.id, first.id], False)
    second.delete(f"/v1/users/{star.id}/follow")
    settle_notifications()
    [group] = groups(star)
    assert (actor_ids(group), group["notification_count"]) == ([first.id], "1")


def test_a_follow_request_notifies_the_private_owner_only(new_user, settle_notifications):
    owner, fan = new_user(private=True), new_user()
    assert fan.post(f"/v1/users/{owner.id}/follow").json == {"state": "REQUESTED"}
    settle_notifications()
    assert [(g["type"], actor_ids(g)) for g in groups(owner)] == [("FOLLOW_REQUEST", [fan.id])]
    assert groups(fan) == []


def test_withdrawing_a_follow_request_takes_it_back(new_user, settle_notifications):
    owner, fan = new_user(private=True), new_user()
    fan.post(f"/v1/users/{owner.id}/follow")
    settle_notifications()
    fan.delete(f"/v1/users/{owner.id}/follow")
    settle_notifications()
    assert groups(owner) == []


def test_an_approved_request_tells_the_requester_and_becomes_a_follow(new_user, settle_notifications):
    owner, fan = new_user(private=True), new_user()
    fan.post(f"/v1/users/{owner.id}/follow")
    settle_notifications()
    assert owner.post(f"/v1/follow-requests/{fan.id}:approve").status == 200
    settle_notifications()
    assert [(g["type"], actor_ids(g)) for g in groups(fan)] == [("FOLLOW_ACCEPTED", [owner.id])]
    assert kinds(owner) == ["FOLLOW"]


# --- take-backs --------------------------------------------------------------------------


def test_an_unlike_takes_the_like_back(new_user, settle_notifications):
    author, fan, other = new_user(), new_user(), new_user()
    post = create_post(author)
    fan.post(f"/v1/posts/{post}/like")
    other.post(f"/v1/posts/{post}/like")
    settle_notifications()
    other.delete(f"/v1/posts/{post}/like")
    settle_notifications()
    [group] = groups(author)
    assert (actor_ids(group), group["actor_count"]) == ([fan.id], "1")
    fan.delete(f"/v1/posts/{post}/like")
    settle_notifications()
    assert groups(author) == [] and unread(author) == 0


def test_deleting_a_comment_takes_back_it_and_its_replies(new_user, settle_notifications):
    author, commenter, replier = new_user(), new_user(), new_user()
    post = create_post(author)
    parent = comment(commenter, post, "first")
    comment(replier, post, "answer", parent=parent["id"])
    settle_notifications()
    assert commenter.delete(f"/v1/comments/{parent['id']}").status == 200
    settle_notifications()
    assert groups(author) == [] and groups(commenter) == []


def test_deleting_a_post_takes_back_everything_it_caused(new_user, settle_notifications):
    author, fan, friend = new_user(), new_user(), new_user()
    post = create_post(author, f"hey @{friend.username}")
    fan.post(f"/v1/posts/{post}/like")
    comment(fan, post, "wow")
    settle_notifications()
    assert len(groups(author)) == 2 and len(groups(friend)) == 1
    assert author.delete(f"/v1/posts/{post}").status == 200
    settle_notifications()
    assert groups(author) == [] and groups(friend) == [] and unread(author) == 0


# --- blocks and mutes --------------------------------------------------------------------


def test_a_block_takes_back_what_either_side_caused(new_user, settle_notifications):
    alice, bob = new_user(), new_user()
    alices, bobs = create_post(alice), create_post(bob)
    bob.post(f"/v1/posts/{alices}/like")
    alice.post(f"/v1/posts/{bobs}/like")
    settle_notifications()
    assert len(groups(alice)) == 1 and len(groups(bob)) == 1
    alice.post(f"/v1/users/{bob.id}/block")
    settle_notifications()
    assert groups(alice) == [] and groups(bob) == []


def test_nothing_crosses_a_block_in_either_direction(new_user, settle_notifications):
    alice, bob, host = new_user(), new_user(), new_user()
    post = create_post(host)
    alice.post(f"/v1/users/{bob.id}/block")
    comment(bob, post, f"hi @{alice.username}")
    comment(alice, post, f"hi @{bob.username}")
    settle_notifications()
    assert groups(alice) == [] and groups(bob) == []


def test_a_muted_account_does_not_notify(new_user, settle_notifications):
    author, pest, fan = new_user(), new_user(), new_user()
    post = create_post(author)
    author.post(f"/v1/users/{pest.id}/mute")
    pest.post(f"/v1/posts/{post}/like")
    fan.post(f"/v1/posts/{post}/like")
    settle_notifications()
    [group] = groups(author)
    assert actor_ids(group) == [fan.id]


# --- exactly once ------------------------------------------------------------------------


def _events_of(bus, topic: str, type: str, **match: int) -> list:
    found = []
    for message_id, raw in bus.xrange(f"events:{topic}"):
        event = decode(topic, message_id, raw)
        if event.type == type and all(event.data.get(k) == v for k, v in match.items()):
            found.append(raw)
    return found


def test_a_redelivered_event_never_makes_a_second_notification(new_user, settle_notifications, bus):
    author, fan = new_user(), new_user()
    post = create_post(author)
    fan.post(f"/v1/posts/{post}/like")
    settle_notifications()
    fan.delete(f"/v1/posts/{post}/like")
    settle_notifications()
    # The like's own event again, after its unlike: it must not bring the notification back.
    [like] = _events_of(bus, "engagement", "like", post_id=int(post))
    bus.xadd("events:engagement", like)
    settle_notifications()
    assert groups(author) == []


def test_a_redelivered_comment_is_one_notification(new_user, settle_notifications, bus):
    author, fan = new_user(), new_user()
    post = create_post(author)
    comment(fan, post)
    settle_notifications()
    [event] = _events_of(bus, "engagement", "comment", post_id=int(post))
    bus.xadd("events:engagement", event)
    settle_notifications()
    assert len(groups(author)) == 1 and unread(author) == 1


# --- reading -----------------------------------------------------------------------------


def test_unread_count_and_mark_read_up_to_a_time(new_user, settle_notifications):
    author, first, second = new_user(), new_user(), new_user()
    post = create_post(author)
    comment(first, post)
    settle_notifications()
    middle = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    time.sleep(0.05)
    comment(second, post)
    settle_notifications()
    assert unread(author) == 2
    r = author.post("/v1/notifications:markRead", {"before": middle})
    assert (r.status, r.json) == (200, {"unread_count": "1"})
    assert [g["unread"] for g in groups(author)] == [True, False]
    assert author.post("/v1/notifications:markRead", {}).json == {"unread_count": "0"}
    assert unread(author) == 0


def test_a_new_act_makes_a_read_group_unread_again(new_user, settle_notifications):
    author, first, second = new_user(), new_user(), new_user()
    post = create_post(author)
    first.post(f"/v1/posts/{post}/like")
    settle_notifications()
    author.post("/v1/notifications:markRead", {})
    second.post(f"/v1/posts/{post}/like")
    settle_notifications()
    [group] = groups(author)
    assert (group["unread"], group["notification_count"], unread(author)) == (True, "2", 1)


def test_pages_are_newest_first_without_repeats(new_user, settle_notifications):
    author, fan = new_user(), new_user()
    post = create_post(author)
    made = [comment(fan, post, f"c{i}")["id"] for i in range(5)]
    settle_notifications()
    seen, token = [], ""
    while True:
        r = author.get(f"/v1/notifications?page_size=2&page_token={token}")
        assert r.status == 200, r.body
        seen += [g["comment"]["id"] for g in r.json["groups"]]
        token = r.json["next_page_token"]
        if not token:
            break
    assert seen == made[::-1]


def test_types_keeps_only_those_kinds(new_user, settle_notifications):
    author, fan = new_user(), new_user()
    post = create_post(author)
    fan.post(f"/v1/posts/{post}/like")
    fan.post(f"/v1/users/{author.id}/follow")
    comment(fan, post)
    settle_notifications()
    assert [g["type"] for g in groups(author, "?types=LIKE&types=FOLLOW")] == ["FOLLOW", "LIKE"]


# --- settings ----------------------------------------------------------------------------


def test_settings_default_to_nothing_muted_and_digests_on(new_user):
    r = new_user().get("/v1/users/me/notification-settings")
    assert (r.status, r.json) == (200, {"muted_types": [], "email_digest": True})


def test_a_muted_type_does_not_notify(new_user, settle_notifications):
    author, fan = new_user(), new_user()
    r = author.patch("/v1/users/me/notification-settings", {"muted_types": ["LIKE"]})
    assert (r.status, r.json) == (200, {"muted_types": ["LIKE"], "email_digest": True})
    post = create_post(author)
    fan.post(f"/v1/posts/{post}/like")
    comment(fan, post)
    settle_notifications()
    assert kinds(author) == ["COMMENT"]


def test_patching_one_setting_keeps_the_other(new_user):
    user = new_user()
    user.patch("/v1/users/me/notification-settings", {"muted_types": ["FOLLOW", "LIKE"]})
    r = user.patch("/v1/users/me/notification-settings", {"email_digest": False})
    assert r.json == {"muted_types": ["LIKE", "FOLLOW"], "email_digest": False}
    r = user.patch("/v1/users/me/notification-settings?update_mask=muted_types", {})
    assert r.json == {"muted_types": [], "email_digest": False}


# --- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "body", "field"), [
    ("GET", "/v1/notifications?page_size=-1", None, "page_size"),
    ("GET", "/v1/notifications?page_token=junk", None, "page_token"),
    ("GET", "/v1/notifications?types=NOTIFICATION_TYPE_UNSPECIFIED", None, "types"),
    ("PATCH", "/v1/users/me/notification-settings", {"muted_types": ["NOTIFICATION_TYPE_UNSPECIFIED"]},
     "muted_types"),
    ("PATCH", "/v1/users/me/notification-settings?update_mask=color", {}, "update_mask"),
])
def test_bad_input_is_a_400_naming_the_field(new_user, method, path, body, field):
    user = new_user()
    r = user.gateway.request(method, path, body, token=user.token)
    assert r.status == 400, r.body
    assert r.json["details"][0]["metadata"]["field"] == field


@pytest.mark.parametrize(("method", "path", "body", "field"), [
    ("GET", "/v1/notifications?types=BOGUS", None, "types"),
    ("POST", "/v1/notifications:markRead", {"before": "yesterday"}, "before"),
    ("PATCH", "/v1/users/me/notification-settings", {"email_digest": "sometimes"}, "email_digest"),
])
def test_what_the_gateway_cannot_read_is_its_own_400_naming_the_field(new_user, method, path, body, field):
    user = new_user()
    r = user.gateway.request(method, path, body, token=user.token)
    assert r.status == 400, r.body
    assert field in r.json["message"]


@pytest.mark.parametrize("path", ["/v1/notifications", "/v1/notifications:unreadCount",
                                  "/v1/users/me/notification-settings"])
def test_notifications_need_a_signed_in_caller(gateway, path):
    assert gateway.get(path).status == 401


# --- the event it publishes --------------------------------------------------------------


def test_each_change_publishes_notification_changed_with_the_group_and_count(new_user, settle_notifications, bus):
    author, fan = new_user(), new_user()
    post = create_post(author)
    fan.post(f"/v1/posts/{post}/like")
    settle_notifications()
    [shown] = groups(author)
    fan.delete(f"/v1/posts/{post}/like")
    settle_notifications()

    def changes() -> list:
        return [decode("notifications", i, raw).envelope.notification_changed
                for i, raw in bus.xrange("events:notifications")
                if decode("notifications", i, raw).data.get("user_id") == int(author.id)]

    deadline = time.monotonic() + 5
    while len(changes()) < 2:
        assert time.monotonic() < deadline, "notification.changed did not reach the stream"
        time.sleep(0.05)
    added, gone = changes()
    published = json.loads(added.group_json)
    published["post"].pop("thumbnail_url")
    shown["post"].pop("thumbnail_url")
    assert (added.group_key, published, added.unread_count) == (shown["group_key"], shown, 1)
    assert (gone.group_key, gone.group_json, gone.unread_count) == (shown["group_key"], "", 0)
