"""Messages notify members who are away (no stream open): MESSAGE, or MESSAGE_REQUEST for a request;
a muted conversation and an open stream notify nothing; an unsent message takes its notification back."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import waiter
from tests.e2e.test_messaging_http import follow, send, start
from tests.e2e.test_messaging_stream_http import open_stream

pytestmark = pytest.mark.e2e

# On a loaded machine a call of the notifier can fail and its event wait for the claim (30 s) to be retried.
SETTLE_S = 90


@pytest.fixture
def settle_presence(stack):
    """Wait until the digest worker's projection of presence has taken in every event so far."""
    from services.notifications.digest import GROUP, TOPICS

    client, wait = waiter(stack, GROUP, TOPICS, "presence projection")
    yield wait
    client.close()


def kinds(user) -> list[tuple[str, list[str]]]:
    """The user's message notifications: (type, actor ids)."""
    r = user.get("/v1/notifications?types=MESSAGE&types=MESSAGE_REQUEST")
    assert r.status == 200, r.body
    return [(g["type"], [a["id"] for a in g["actors"]]) for g in r.json.get("groups", [])]


def test_a_message_to_someone_away_notifies_them_once_per_conversation(new_user, settle_notifications):
    alice, bob = new_user(), new_user()
    follow(bob, alice)
    direct = start(alice, bob)
    send(alice, direct["id"], text="one")
    send(alice, direct["id"], text="two")
    settle_notifications(SETTLE_S)
    assert kinds(bob) == [("MESSAGE", [alice.id])]
    assert kinds(alice) == []


def test_a_message_request_notifies_as_one(new_user, settle_notifications):
    alice, bob = new_user(), new_user()
    send(alice, start(alice, bob)["id"], text="hello stranger")
    settle_notifications(SETTLE_S)
    assert kinds(bob) == [("MESSAGE_REQUEST", [alice.id])]


def test_a_muted_conversation_does_not_notify(new_user, settle_notifications):
    alice, bob = new_user(), new_user()
    follow(bob, alice)
    direct = start(alice, bob)
    assert bob.patch(f"/v1/conversations/{direct['id']}", {"muted": True}).status == 200
    send(alice, direct["id"], text="psst")
    settle_notifications(SETTLE_S)
    assert kinds(bob) == []


def test_an_unsent_message_takes_its_notification_back(new_user, settle_notifications):
    alice, bob = new_user(), new_user()
    follow(bob, alice)
    message = send(alice, start(alice, bob)["id"], text="oops")
    settle_notifications(SETTLE_S)
    assert kinds(bob) == [("MESSAGE", [alice.id])]
    assert alice.delete(f"/v1/messages/{message['id']}").status == 200
    settle_notifications(SETTLE_S)
    assert kinds(bob) == []


def test_a_member_with_a_stream_open_is_not_notified(gateway, new_user, settle_notifications, settle_presence):
    alice, bob = new_user(), new_user()
    follow(bob, alice)
    direct = start(alice, bob)
    with open_stream(gateway, bob):
        settle_notifications(SETTLE_S)
        settle_presence(SETTLE_S)
        send(alice, direct["id"], text="you are here")
        settle_notifications(SETTLE_S)
        assert kinds(bob) == []
