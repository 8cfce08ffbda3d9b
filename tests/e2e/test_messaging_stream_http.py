"""Messages on the members' live streams (GET /v1/stream through Envoy): new, unsent and reacted
messages, read receipts and typing; nothing for someone who left or was removed."""

from __future__ import annotations

import pytest

from tests.e2e.sse import SseStream
from tests.e2e.test_messaging_http import follow, send, start
from tests.e2e.test_posts_http import create_post

pytestmark = pytest.mark.e2e

MESSAGING = ("message", "message_unsent", "message_reaction", "read_receipt", "typing")
NOT_MESSAGING = ("heartbeat", "notification", "unread_count", "presence")


def open_stream(gateway, user) -> SseStream:
    s = SseStream(gateway.port, token=user.token, timeout_s=20)
    assert s.status == 200, s.body()
    s.wait_for_heartbeat(timeout_s=15)
    return s


def next_messaging(stream: SseStream, timeout_s: float = 15):
    return stream.events_until(1, skip=NOT_MESSAGING, timeout_s=timeout_s)[0]


def test_a_new_message_reaches_the_other_members_stream(gateway, new_user):
    alice, bob = new_user(), new_user()
    direct = start(alice, bob)
    with open_stream(gateway, bob) as stream:
        sent = send(alice, direct["id"], text="live hello")
        event = next_messaging(stream)
    assert event.event == "message" and event.id
    assert event.json["conversation_id"] == direct["id"]
    assert event.json["data"]["id"] == sent["id"] and event.json["data"]["text"] == "live hello"
    assert event.json["data"]["sender_id"] == alice.id


def test_unsend_reaction_receipt_and_typing_reach_the_stream(gateway, new_user):
    alice, bob = new_user(), new_user()
    follow(bob, alice)
    direct = start(alice, bob)
    with open_stream(gateway, bob) as stream:
        # Bob's own message comes back to his stream (his other devices); it is taken here, so
        # that it cannot arrive late, after the stream opened, in place of what follows.
        message = send(bob, direct["id"], text="react to me")
        echo = next_messaging(stream)
        assert echo.event == "message" and echo.json["data"]["id"] == message["id"]
        assert alice.post(f"/v1/conversations/{direct['id']}:typing", {}).status == 200
        typing = next_messaging(stream)
        assert typing.event == "typing" and typing.json["data"] == {"user_id": alice.id}
        assert alice.post(f"/v1/messages/{message['id']}/reactions", {"emoji": "🔥"}).status == 200
        reaction = next_messaging(stream)
        assert reaction.event == "message_reaction"
        assert reaction.json["data"]["reactions"] == [{"user_id": alice.id, "emoji": "🔥"}]
        assert alice.post(f"/v1/conversations/{direct['id']}:markRead", {"message_id": message["id"]}).status == 200
        receipt = next_messaging(stream)
        assert receipt.event == "read_receipt"
        assert receipt.json["data"] == {"user_id": alice.id, "message_id": message["id"]}
        mine = send(alice, direct["id"], text="regret")
        assert next_messaging(stream).event == "message"
        assert alice.delete(f"/v1/messages/{mine['id']}").status == 200
        unsent = next_messaging(stream)
        assert unsent.event == "message_unsent" and unsent.json["data"] == {"message_id": mine["id"]}


def test_a_shared_post_the_recipient_may_not_see_is_unavailable_on_the_stream(gateway, new_user):
    alice, bob, carol = new_user(), new_user(), new_user(private=True)
    follow(alice, carol)
    assert carol.post(f"/v1/follow-requests/{alice.id}:approve", {}).status == 200
    hidden = create_post(carol, "followers only")
    direct = start(alice, bob)
    with open_stream(gateway, bob) as stream:
        send(alice, direct["id"], post_id=hidden["id"])
        event = next_messaging(stream)
    assert event.json["data"]["post"]["unavailable"] is True
    assert hidden["id"] not in event.data


def test_a_removed_member_and_one_who_left_get_nothing_more(gateway, new_user):
    alice, bob, carol, dave = new_user(), new_user(), new_user(), new_user()
    group = start(alice, bob, carol, dave, title="Trip")
    with open_stream(gateway, carol) as carol_stream, open_stream(gateway, dave) as dave_stream:
        send(alice, group["id"], text="everyone")
        assert next_messaging(carol_stream).json["data"]["text"] == "everyone"
        assert next_messaging(dave_stream).json["data"]["text"] == "everyone"
        assert alice.delete(f"/v1/conversations/{group['id']}/members/{carol.id}").status == 200
        assert dave.post(f"/v1/conversations/{group['id']}:leave", {}).status == 200
        send(alice, group["id"], text="without carol and dave")
        # The next messages they get are the ones sent to them afterwards, elsewhere.
        send(alice, start(alice, carol)["id"], text="just carol")
        send(alice, start(alice, dave)["id"], text="just dave")
        assert next_messaging(carol_stream).json["data"]["text"] == "just carol"
        assert next_messaging(dave_stream).json["data"]["text"] == "just dave"
