"""Presence through Envoy: who may see it (people who follow each other or share an accepted
conversation, both showing their activity status), its states, and its changes on the streams of those allowed to see them.

The test stack makes a stream IDLE after 4 s without activity (PICTOR_REALTIME_IDLE_MS; 5 minutes by
default).
"""

from __future__ import annotations

import time

import pytest

from tests.e2e.http import eventually
from tests.e2e.sse import SseStream
from tests.e2e.test_realtime_http import bus, like_group, open_stream, publish_notification  # noqa: F401

pytestmark = pytest.mark.e2e

ONLINE, IDLE, OFFLINE = "PRESENCE_STATE_ONLINE", "PRESENCE_STATE_IDLE", "PRESENCE_STATE_OFFLINE"


def mutual(a, b) -> None:
    assert a.post(f"/v1/users/{b.id}/follow").status == 200
    assert b.post(f"/v1/users/{a.id}/follow").status == 200


def state(viewer, user) -> str | int:
    r = viewer.get(f"/v1/users/{user.id}/presence")
    return r.json["state"] if r.status == 200 else r.status


def test_presence_is_online_while_a_stream_is_open_then_offline_with_the_last_active_time(gateway, new_user):
    alice, bob = new_user(), new_user()
    mutual(alice, bob)
    assert state(alice, bob) == OFFLINE
    with open_stream(gateway, bob):
        r = alice.get(f"/v1/users/{bob.id}/presence")
        assert r.status == 200 and r.json["state"] == ONLINE
        assert r.json["user_id"] == bob.id
        opened_at = r.json["last_active_at"]
    eventually(lambda: state(alice, bob), OFFLINE)
    assert alice.get(f"/v1/users/{bob.id}/presence").json["last_active_at"] == opened_at


def test_a_stream_without_activity_goes_idle_and_activity_brings_it_back(gateway, new_user):
    alice, bob = new_user(), new_user()
    mutual(alice, bob)
    with open_stream(gateway, bob):
        assert state(alice, bob) == ONLINE
        eventually(lambda: state(alice, bob), IDLE, timeout_s=8)
        assert bob.post("/v1/users/me/presence:touch", {}).status == 200
        assert state(alice, bob) == ONLINE


def test_presence_is_404_unless_both_follow_each_other(gateway, new_user):
    alice, bob, carol = new_user(), new_user(), new_user()
    assert alice.post(f"/v1/users/{bob.id}/follow").status == 200
    assert state(alice, bob) == 404
    assert state(bob, alice) == 404
    assert state(carol, bob) == 404
    r = alice.get("/v1/users/999999999999/presence")
    assert r.status == 404 and r.json["details"][0]["reason"] == "USER_NOT_FOUND"


def test_presence_is_404_when_either_hides_their_activity_status(gateway, new_user):
    alice, bob = new_user(), new_user()
    mutual(alice, bob)
    assert state(alice, bob) == OFFLINE
    assert bob.patch("/v1/users/me", {"show_activity_status": False}).status == 200
    assert state(alice, bob) == 404
    assert state(bob, alice) == 404
    assert bob.patch("/v1/users/me", {"show_activity_status": True}).status == 200
    assert state(bob, alice) == OFFLINE


def test_presence_needs_a_signed_in_caller(gateway, new_user):
    bob = new_user()
    assert gateway.get(f"/v1/users/{bob.id}/presence").status == 401


def test_show_activity_status_is_on_by_default_and_shown_only_to_its_owner(gateway, new_user):
    alice, bob = new_user(), new_user()
    assert alice.get("/v1/users/me").json["show_activity_status"] is True
    r = alice.patch("/v1/users/me", {"show_activity_status": False})
    assert r.status == 200 and r.json["show_activity_status"] is False
    assert alice.get("/v1/users/me").json["show_activity_status"] is False
    assert "show_activity_status" not in bob.get(f"/v1/users/{alice.id}").json


def presence_events(s: SseStream, count: int) -> list[dict]:
    return [e.json for e in s.events_until(count) if e.event == "presence"]


def test_presence_changes_reach_the_open_streams_of_those_allowed_to_see_them(gateway, new_user, bus):  # noqa: F811
    alice, bob, carol, dave = new_user(), new_user(), new_user(), new_user()
    mutual(alice, bob)
    assert carol.post(f"/v1/users/{bob.id}/follow").status == 200  # one way only
    mutual(dave, bob)
    assert dave.patch("/v1/users/me", {"show_activity_status": False}).status == 200
    # The follows' notifications are delivered before the streams open, so none comes on them later.
    for user in (alice, dave):
        eventually(lambda u=user: u.get("/v1/notifications:unreadCount").json["count"], "1")
    with open_stream(gateway, alice) as a, open_stream(gateway, carol) as c, open_stream(gateway, dave) as d:
        with open_stream(gateway, bob):
            online = presence_events(a, 1)
        offline = presence_events(a, 1)
        assert [(p["user_id"], p["state"]) for p in online + offline] == [(bob.id, ONLINE), (bob.id, OFFLINE)]
        assert offline[0]["last_active_at"]
        # By the time alice had both, carol's and dave's would have come: a notification after them
        # is the first thing on their streams.
        for user, s in ((carol, c), (dave, d)):
            publish_notification(bus, user.id, "like:p", like_group("like:p"), unread=1)
            assert [e.event for e in s.events_until(2)] == ["notification", "unread_count"]


def test_a_stream_of_mine_does_not_tell_me_of_my_own_presence(gateway, new_user, bus):  # noqa: F811
    alice = new_user()
    with open_stream(gateway, alice) as s:
        time.sleep(0.5)
        publish_notification(bus, alice.id, "like:q", like_group("like:q"), unread=1)
        assert [e.event for e in s.events_until(2)] == ["notification", "unread_count"]


def test_sharing_an_accepted_conversation_lets_both_see_each_others_presence(gateway, new_user):
    alice, bob, carol = new_user(), new_user(), new_user()
    assert state(alice, bob) == 404
    direct = alice.post("/v1/conversations", {"member_ids": [bob.id]}).json
    r = alice.post(f"/v1/conversations/{direct['id']}/messages", {"client_message_id": "p1", "text": "hi"})
    assert r.status == 200, r.body
    # A message request is not yet a conversation bob took part in: nothing shown either way.
    assert (state(alice, bob), state(bob, alice)) == (404, 404)
    assert bob.post(f"/v1/conversations/{direct['id']}:accept", {}).status == 200
    assert (state(alice, bob), state(bob, alice)) == (OFFLINE, OFFLINE)
    with open_stream(gateway, bob):
        assert state(alice, bob) == ONLINE
    assert state(carol, bob) == 404  # in no conversation with bob
    assert bob.patch("/v1/users/me", {"show_activity_status": False}).status == 200
    assert state(alice, bob) == 404
    assert bob.patch("/v1/users/me", {"show_activity_status": True}).status == 200
    # A block takes the conversation away from the blocker, and the presence with it.
    assert bob.post(f"/v1/users/{alice.id}/block").status == 200
    assert (state(alice, bob), state(bob, alice)) == (404, 404)


def test_presence_changes_reach_those_who_share_a_conversation(gateway, new_user):
    alice, bob = new_user(), new_user()
    direct = alice.post("/v1/conversations", {"member_ids": [bob.id]}).json
    assert alice.post(f"/v1/conversations/{direct['id']}/messages",
                      {"client_message_id": "p2", "text": "hi"}).status == 200
    assert bob.post(f"/v1/conversations/{direct['id']}:accept", {}).status == 200
    with open_stream(gateway, alice) as a:
        with open_stream(gateway, bob):
            online = presence_events(a, 1)
        assert [(p["user_id"], p["state"]) for p in online] == [(bob.id, ONLINE)]
