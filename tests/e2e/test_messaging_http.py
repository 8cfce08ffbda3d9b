"""Direct messages through the gateway: conversations, requests, blocks, messages, reactions, receipts."""

from __future__ import annotations

import uuid

import pytest

from services.media import testclips
from tests.e2e.http import path_of
from tests.e2e.test_posts_http import create_post, upload
from tests.e2e.test_stories_http import post_story
from tests.e2e.videos import put_all, settled

pytestmark = pytest.mark.e2e


def follow(a, b) -> None:
    r = a.post(f"/v1/users/{b.id}/follow", {})
    assert r.status == 200, r.body


def start(a, *others, **body) -> dict:
    r = a.post("/v1/conversations", {"member_ids": [o.id for o in others], **body})
    assert r.status == 200, r.body
    return r.json


def send(user, conversation_id: str, **body) -> dict:
    body.setdefault("client_message_id", uuid.uuid4().hex)
    r = user.post(f"/v1/conversations/{conversation_id}/messages", body)
    assert r.status == 200, r.body
    return r.json


def listed(user, folder: str = "INBOX", **params) -> list[dict]:
    query = "&".join([f"folder={folder}", *(f"{k}={v}" for k, v in params.items())])
    r = user.get(f"/v1/conversations?{query}")
    assert r.status == 200, r.body
    return r.json.get("conversations", [])


def reason(r) -> str:
    return r.json["details"][0]["reason"]


# --- conversations ---------------------------------------------------------------


def test_a_one_to_one_conversation_is_unique_per_pair(new_user):
    alice, bob = new_user(), new_user()
    first = start(alice, bob)
    assert start(alice, bob)["id"] == first["id"]
    assert start(bob, alice)["id"] == first["id"]
    assert first["is_group"] is False
    assert [m["user"]["id"] for m in first["members"]] == [alice.id, bob.id]


def test_a_group_needs_a_title_and_at_most_32_members(new_user):
    alice, bob, carol = new_user(), new_user(), new_user()
    r = alice.post("/v1/conversations", {"member_ids": [bob.id, carol.id]})
    assert r.status == 400 and reason(r) == "INVALID_TITLE"
    group = start(alice, bob, carol, title="Trip")
    assert group["is_group"] is True and group["title"] == "Trip" and len(group["members"]) == 3
    r = alice.post("/v1/conversations", {"member_ids": [str(i) for i in range(1, 33)], "title": "Crowd"})
    assert r.status == 400 and reason(r) == "TOO_MANY_MEMBERS"


def test_an_unknown_member_is_not_found(new_user):
    alice = new_user()
    r = alice.post("/v1/conversations", {"member_ids": ["12345"]})
    assert r.status == 404 and reason(r) == "USER_NOT_FOUND"


def test_the_creator_adds_and_removes_members_and_others_may_not(new_user):
    alice, bob, carol, dave = new_user(), new_user(), new_user(), new_user()
    group = start(alice, bob, carol, title="Trip")
    r = bob.post(f"/v1/conversations/{group['id']}/members", {"user_ids": [dave.id]})
    assert r.status == 403 and reason(r) == "NOT_CREATOR"
    r = alice.post(f"/v1/conversations/{group['id']}/members", {"user_ids": [dave.id]})
    assert r.status == 200 and dave.id in [m["user"]["id"] for m in r.json["members"]]
    r = alice.delete(f"/v1/conversations/{group['id']}/members/{carol.id}")
    assert r.status == 200, r.body
    assert carol.get(f"/v1/conversations/{group['id']}").status == 404
    assert carol.id not in [m["user"]["id"] for m in alice.get(f"/v1/conversations/{group['id']}").json["members"]]


def test_a_member_added_later_reads_only_from_then_on(new_user):
    alice, bob, carol, dave = new_user(), new_user(), new_user(), new_user()
    group = start(alice, bob, carol, title="Trip")
    send(alice, group["id"], text="before dave")
    assert alice.post(f"/v1/conversations/{group['id']}/members", {"user_ids": [dave.id]}).status == 200
    send(alice, group["id"], text="after dave")
    texts = [m["text"] for m in dave.get(f"/v1/conversations/{group['id']}/messages").json["messages"]]
    assert texts == ["after dave"]


def test_list_is_newest_activity_first_with_preview_unread_and_members(new_user):
    alice, bob, carol = new_user(), new_user(), new_user()
    follow(alice, bob)
    follow(alice, carol)
    with_bob, with_carol = start(bob, alice), start(carol, alice)
    send(bob, with_bob["id"], text="hi from bob")
    send(carol, with_carol["id"], text="hi from carol")
    send(bob, with_bob["id"], text="bob again")
    inbox = listed(alice)
    assert [c["id"] for c in inbox] == [with_bob["id"], with_carol["id"]]
    assert inbox[0]["last_message"]["text"] == "bob again"
    assert inbox[0]["unread_count"] == "2" and inbox[1]["unread_count"] == "1"
    assert inbox[0]["muted"] is False
    assert {m["user"]["username"] for m in inbox[0]["members"]} == {alice.username, bob.username}


def test_list_pages_with_a_token(new_user):
    alice = new_user()
    others = [new_user() for _ in range(3)]
    ids = [start(alice, o)["id"] for o in others]
    r = alice.get("/v1/conversations?page_size=2")
    assert r.status == 200 and len(r.json["conversations"]) == 2 and r.json["next_page_token"]
    rest = alice.get(f"/v1/conversations?page_size=2&page_token={r.json['next_page_token']}").json
    seen = [c["id"] for c in r.json["conversations"] + rest["conversations"]]
    assert seen == list(reversed(ids)) and not rest.get("next_page_token")
    assert alice.get("/v1/conversations?page_token=junk").status == 400
    r = alice.get("/v1/conversations?folder=ARCHIVE")
    assert r.status == 400


def test_patch_mutes_and_retitles(new_user):
    alice, bob, carol = new_user(), new_user(), new_user()
    group = start(alice, bob, carol, title="Trip")
    r = bob.patch(f"/v1/conversations/{group['id']}", {"muted": True})
    assert r.status == 200 and r.json["muted"] is True
    r = alice.patch(f"/v1/conversations/{group['id']}", {"title": "Holiday"})
    assert r.status == 200 and r.json["title"] == "Holiday" and r.json.get("muted", False) is False
    assert bob.get(f"/v1/conversations/{group['id']}").json["title"] == "Holiday"


def test_leaving_a_group_hides_it_and_one_to_one_cannot_be_left(new_user):
    alice, bob, carol = new_user(), new_user(), new_user()
    group = start(alice, bob, carol, title="Trip")
    assert bob.post(f"/v1/conversations/{group['id']}:leave", {}).status == 200
    assert bob.get(f"/v1/conversations/{group['id']}").status == 404
    r = bob.post(f"/v1/conversations/{group['id']}/messages", {"client_message_id": "x", "text": "hi"})
    assert r.status == 404
    direct = start(alice, bob)
    r = alice.post(f"/v1/conversations/{direct['id']}:leave", {})
    assert r.status == 400 and reason(r) == "NOT_A_GROUP"


def test_someone_else_cannot_see_a_conversation(new_user):
    alice, bob, eve = new_user(), new_user(), new_user()
    direct = start(alice, bob)
    for r in (eve.get(f"/v1/conversations/{direct['id']}"), eve.get(f"/v1/conversations/{direct['id']}/messages")):
        assert r.status == 404 and reason(r) == "CONVERSATION_NOT_FOUND"


# --- requests -----------------------------------------------------------------


def test_a_first_message_from_someone_not_followed_is_a_request(new_user):
    alice, bob = new_user(), new_user()
    direct = start(bob, alice)
    send(bob, direct["id"], text="hello stranger")
    assert [c["id"] for c in listed(alice, "REQUESTS")] == [direct["id"]]
    assert listed(alice) == []
    # The sender sees no difference.
    assert [c["id"] for c in listed(bob)] == [direct["id"]]
    r = alice.post(f"/v1/conversations/{direct['id']}:accept", {})
    assert r.status == 200 and r.json["folder"] == "INBOX"
    assert [c["id"] for c in listed(alice)] == [direct["id"]]
    assert listed(alice, "REQUESTS") == []


def test_a_message_from_someone_followed_goes_to_the_inbox(new_user):
    alice, bob = new_user(), new_user()
    follow(alice, bob)
    direct = start(bob, alice)
    send(bob, direct["id"], text="hello friend")
    assert [c["id"] for c in listed(alice)] == [direct["id"]]


def test_declining_removes_the_request_for_the_recipient_only(new_user):
    alice, bob = new_user(), new_user()
    direct = start(bob, alice)
    send(bob, direct["id"], text="buy my stuff")
    assert alice.post(f"/v1/conversations/{direct['id']}:decline", {}).status == 200
    assert listed(alice, "REQUESTS") == [] and alice.get(f"/v1/conversations/{direct['id']}").status == 404
    send(bob, direct["id"], text="hello?")
    assert listed(alice, "REQUESTS") == []
    assert [m["user"]["id"] for m in bob.get(f"/v1/conversations/{direct['id']}").json["members"]] == [bob.id,
                                                                                                        alice.id]


# --- blocks -------------------------------------------------------------------


def test_blocked_users_cannot_message_each_other(new_user):
    alice, bob = new_user(), new_user()
    direct = start(alice, bob)
    assert alice.post(f"/v1/users/{bob.id}/block", {}).status == 200
    r = bob.post(f"/v1/conversations/{direct['id']}/messages", {"client_message_id": "x", "text": "hi"})
    assert r.status == 404
    r = bob.post("/v1/conversations", {"member_ids": [alice.id]})
    assert r.status == 404 and reason(r) == "USER_NOT_FOUND"


def test_a_one_to_one_with_a_blocked_user_disappears_for_the_blocker(new_user):
    alice, bob = new_user(), new_user()
    direct = start(alice, bob)
    send(alice, direct["id"], text="hi")
    assert [c["id"] for c in listed(alice)] == [direct["id"]]
    assert alice.post(f"/v1/users/{bob.id}/block", {}).status == 200
    assert listed(alice) == []
    assert alice.get(f"/v1/conversations/{direct['id']}").status == 404


# --- messages -------------------------------------------------------------------


def test_sending_is_idempotent_on_client_message_id(new_user):
    alice, bob = new_user(), new_user()
    direct = start(alice, bob)
    first = send(alice, direct["id"], client_message_id="m-1", text="once")
    again = send(alice, direct["id"], client_message_id="m-1", text="once")
    assert again["id"] == first["id"]
    assert len(alice.get(f"/v1/conversations/{direct['id']}/messages").json["messages"]) == 1


@pytest.mark.parametrize(("body", "field", "why"), [
    ({"text": ""}, "text", "INVALID_MESSAGE_CONTENT"),
    ({"text": "x" * 2001}, "text", "INVALID_TEXT"),
    ({"text": "   "}, "text", "INVALID_TEXT"),
    ({"text": "hi", "post_id": "5"}, "post_id", "INVALID_MESSAGE_CONTENT"),
    ({"client_message_id": "", "text": "hi"}, "client_message_id", "INVALID_CLIENT_MESSAGE_ID"),
    ({"client_message_id": "c" * 65, "text": "hi"}, "client_message_id", "INVALID_CLIENT_MESSAGE_ID"),
])
def test_bad_messages_are_400_naming_the_field(new_user, body, field, why):
    alice, bob = new_user(), new_user()
    direct = start(alice, bob)
    r = alice.post(f"/v1/conversations/{direct['id']}/messages", {"client_message_id": "c", **body})
    assert r.status == 400, r.body
    assert reason(r) == why and r.json["details"][0]["metadata"]["field"] == field


def test_a_2000_character_text_is_accepted(new_user):
    alice, bob = new_user(), new_user()
    direct = start(alice, bob)
    assert send(alice, direct["id"], text="é" * 2000)["text"] == "é" * 2000


def test_messages_page_newest_first_with_a_stable_cursor(new_user):
    alice, bob = new_user(), new_user()
    direct = start(alice, bob)
    for i in range(5):
        send(alice, direct["id"], text=f"m{i}")
    first = alice.get(f"/v1/conversations/{direct['id']}/messages?page_size=2").json
    assert [m["text"] for m in first["messages"]] == ["m4", "m3"]
    send(bob, direct["id"], text="newer")  # does not shift the next page
    second = alice.get(f"/v1/conversations/{direct['id']}/messages?page_size=2"
                       f"&page_token={first['next_page_token']}").json
    assert [m["text"] for m in second["messages"]] == ["m2", "m1"]


def test_a_photo_of_mine_is_sent_and_someone_elses_is_refused(new_user):
    alice, bob = new_user(), new_user()
    direct = start(alice, bob)
    message = send(alice, direct["id"], media_id=upload(alice))
    assert message["kind"] == "MESSAGE_KIND_MEDIA" and message["media"]["variants"]
    shown = bob.get(f"/v1/conversations/{direct['id']}/messages").json["messages"][0]
    assert shown["media"]["id"] == message["media"]["id"]
    r = bob.post(f"/v1/conversations/{direct['id']}/messages",
                 {"client_message_id": "x", "media_id": message["media"]["id"]})
    assert r.status == 400 and reason(r) == "MEDIA_NOT_FOUND"


def test_a_shared_post_the_recipient_may_not_see_is_unavailable(new_user):
    alice, bob, carol = new_user(), new_user(), new_user(private=True)
    follow(alice, carol)
    assert carol.post(f"/v1/follow-requests/{alice.id}:approve", {}).status == 200
    secret_post = create_post(carol, "followers only")
    public_post = create_post(alice, "for all")
    direct = start(alice, bob)
    send(alice, direct["id"], post_id=secret_post["id"])
    send(alice, direct["id"], post_id=public_post["id"])
    newest, oldest = bob.get(f"/v1/conversations/{direct['id']}/messages").json["messages"]
    assert newest["post"]["post_id"] == public_post["id"] and newest["post"]["post"]["caption"] == "for all"
    assert oldest["post"]["unavailable"] is True and oldest["post"].get("post_id", "0") == "0"
    assert "post" not in oldest["post"]
    assert secret_post["id"] not in str(oldest)
    mine = alice.get(f"/v1/conversations/{direct['id']}/messages").json["messages"][1]
    assert mine["post"]["post_id"] == secret_post["id"]


def test_a_shared_story_shows_while_the_reader_may_see_it_and_then_reads_unavailable(new_user):
    alice, bob, carol = new_user(), new_user(), new_user()
    story = post_story(carol)
    direct = start(alice, bob)
    message = send(alice, direct["id"], story_id=story["id"], text="look at this")
    assert message["kind"] == "MESSAGE_KIND_STORY" and message["text"] == "look at this"
    shown = bob.get(f"/v1/conversations/{direct['id']}/messages").json["messages"][0]["story"]
    assert shown["story_id"] == story["id"] and shown["story"]["author"]["id"] == carol.id
    assert carol.delete(f"/v1/stories/{story['id']}").status == 200
    gone = bob.get(f"/v1/conversations/{direct['id']}/messages").json["messages"][0]
    assert gone["story"]["unavailable"] is True and gone["story"].get("story_id", "0") == "0"
    assert "story" not in gone["story"] and gone["text"] == "look at this"


def test_a_story_the_sender_may_not_see_cannot_be_shared(new_user):
    alice, bob, hidden = new_user(), new_user(), new_user()
    story = post_story(hidden, audience="CLOSE_FRIENDS")
    direct = start(alice, bob)
    for story_id in (story["id"], "123"):
        r = alice.post(f"/v1/conversations/{direct['id']}/messages", {"client_message_id": story_id,
                                                                       "story_id": story_id})
        assert r.status == 404 and reason(r) == "STORY_NOT_FOUND", r.body


def test_unsend_removes_a_message_for_everyone_and_only_the_sender_may(new_user):
    alice, bob = new_user(), new_user()
    direct = start(alice, bob)
    message = send(alice, direct["id"], text="oops")
    r = bob.delete(f"/v1/messages/{message['id']}")
    assert r.status == 403 and reason(r) == "NOT_YOUR_MESSAGE"
    assert alice.delete(f"/v1/messages/{message['id']}").status == 200
    assert alice.delete(f"/v1/messages/{message['id']}").status == 200
    assert bob.get(f"/v1/conversations/{direct['id']}/messages").json.get("messages", []) == []
    assert "last_message" not in listed(alice)[0]


def test_reactions_one_per_member_and_taken_back(new_user):
    alice, bob = new_user(), new_user()
    direct = start(alice, bob)
    message = send(alice, direct["id"], text="hi")
    assert bob.post(f"/v1/messages/{message['id']}/reactions", {"emoji": "👍"}).status == 200
    r = bob.post(f"/v1/messages/{message['id']}/reactions", {"emoji": "❤️"})
    assert r.json["reactions"] == [{"user_id": bob.id, "emoji": "❤️"}]
    r = bob.gateway.request("DELETE", f"/v1/messages/{message['id']}/reactions", {"emoji": "❤️"}, token=bob.token)
    assert r.status == 200 and r.json.get("reactions", []) == []
    r = bob.post(f"/v1/messages/{message['id']}/reactions", {"emoji": ""})
    assert r.status == 400 and reason(r) == "INVALID_EMOJI"


def test_mark_read_is_a_receipt_the_others_see_and_clears_unread(new_user):
    alice, bob = new_user(), new_user()
    follow(bob, alice)
    direct = start(alice, bob)
    message = send(alice, direct["id"], text="hi")
    assert listed(bob)[0]["unread_count"] == "1"
    r = bob.post(f"/v1/conversations/{direct['id']}:markRead", {"message_id": message["id"]})
    assert r.status == 200, r.body
    assert listed(bob)[0]["unread_count"] == "0"
    members = {m["user"]["id"]: m for m in alice.get(f"/v1/conversations/{direct['id']}").json["members"]}
    assert members[bob.id]["last_read_message_id"] == message["id"]
    r = bob.post(f"/v1/conversations/{direct['id']}:markRead", {"message_id": "999"})
    assert r.status == 404 and reason(r) == "MESSAGE_NOT_FOUND"


def test_typing_answers_empty(new_user):
    alice, bob = new_user(), new_user()
    direct = start(alice, bob)
    assert alice.post(f"/v1/conversations/{direct['id']}:typing", {}).status == 200


def test_a_video_of_mine_is_sent_once_transcoded_and_plays_for_the_other_member(new_user, tmp_path):
    alice, bob = new_user(), new_user()
    direct = start(alice, bob)
    clip = testclips.clip(tmp_path / "hello.mp4", seconds=1, width=160, height=120, fps=10)
    done = put_all(alice, clip.read_bytes())
    assert done.status == 200, done.body
    assert settled(alice, done.json["id"])["state"] == "READY"
    message = send(alice, direct["id"], media_id=done.json["id"])
    assert message["kind"] == "MESSAGE_KIND_MEDIA"
    shown = bob.get(f"/v1/conversations/{direct['id']}/messages").json["messages"][0]
    media = shown["media"]
    assert (media["id"], media["kind"], media["state"]) == (done.json["id"], "VIDEO", "READY")
    assert media["video"]["renditions"] and media["has_audio"] is True
    playable = bob.gateway.get(path_of(media["video"]["renditions"][0]["url"]))
    assert playable.status == 200 and playable.headers["content-type"] == "video/mp4"


def test_messages_live_in_their_conversations_shard_with_time_ordered_ids(new_user, settings):
    import psycopg

    from hotpath.ids import decode
    from services.common.db import shard_schema
    from services.common.ids import shard_of

    alice, bob = new_user(), new_user()
    direct = start(alice, bob)
    sent = [send(alice, direct["id"], text=f"number {n}") for n in range(3)]
    shard = shard_of(int(direct["id"]))
    ids = [int(m["id"]) for m in sent]
    assert {shard_of(i) for i in ids} == {shard}  # a conversation's messages never spread across shards
    assert ids == sorted(ids) and [decode(i)[0] for i in ids] == sorted(decode(i)[0] for i in ids)
    with psycopg.connect(settings.database_for_shard(shard), autocommit=True) as conn:
        stored = conn.execute(f"SELECT id FROM {shard_schema(shard)}.messages WHERE conversation_id = %s "
                              "ORDER BY id", (int(direct["id"]),)).fetchall()
    assert [row[0] for row in stored] == ids
