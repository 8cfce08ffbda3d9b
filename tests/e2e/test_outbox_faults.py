"""Fault injection: the writer dies between its commit and the relay, and nothing is lost or doubled.

The relay is paused (SIGSTOP) while Bob posts and Carol follows him through
the gateway; then the service that wrote each (posts, graph) is SIGKILLed
and restarted. The events wait in the outbox meanwhile. When the relay comes
back (SIGCONT), each effect happens, exactly once: the post is in Alice's
pushed feed once, and Bob's counts are right. A delivery repeated by hand
(what a relay that died between the stream and its delete does) changes
nothing.
"""

from __future__ import annotations

import signal
from contextlib import contextmanager

import pytest

from services.common.dependencies import sync_redis
from services.common.events import decode, stream
from tests.conftest import outbox_rows
from tests.e2e.media_files import small_jpeg

pytestmark = pytest.mark.e2e


@contextmanager
def relay_paused(stack):
    child = stack.child("relay-1")
    child.proc.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        child.proc.send_signal(signal.SIGCONT)


def feed_ids(user) -> list[str]:
    r = user.get("/v1/feed?mode=CHRONOLOGICAL&page_size=50")
    assert r.status == 200, r.body
    return [p["id"] for p in r.json["posts"]]


def profile(user, user_id: str) -> dict:
    r = user.get(f"/v1/users/{user_id}")
    assert r.status == 200, r.body
    return r.json


def test_events_committed_before_the_writer_died_are_relayed_once_it_comes_back(
        stack, new_user, settle, settle_counts):
    alice, bob, carol = new_user(), new_user(), new_user()
    assert alice.post(f"/v1/users/{bob.id}/follow").status == 200
    settle()
    assert feed_ids(alice) == []  # Alice's feed is built: from now on it takes pushes
    media = bob.upload(small_jpeg(), "image/jpeg").json["id"]

    with relay_paused(stack):
        posted = bob.post("/v1/posts", {"media_ids": [media], "caption": "written, then the writer died"})
        assert posted.status == 200, posted.body
        assert carol.post(f"/v1/users/{bob.id}/follow").status == 200
        stack.restart_service("posts", signal.SIGKILL)
        stack.restart_service("graph", signal.SIGKILL)
        assert outbox_rows(stack.settings) >= 2  # both events wait for the relay
        assert posted.json["id"] not in feed_ids(alice)

    settle()
    settle_counts()
    assert feed_ids(alice).count(posted.json["id"]) == 1
    counts = profile(alice, bob.id)
    assert (counts["post_count"], counts["follower_count"]) == ("1", "2")


def test_a_follow_delivered_twice_is_counted_once(stack, new_user, settle_counts):
    alice, bob = new_user(), new_user()
    assert alice.post(f"/v1/users/{bob.id}/follow").status == 200
    settle_counts()
    client = sync_redis(stack.settings.redis_url)
    try:
        for message_id, fields in reversed(client.xrevrange(stream("graph"), count=200)):
            event = decode("graph", message_id, fields)
            if event.type == "follow" and event.data["follower_id"] == int(alice.id) and event.data["target_id"] == int(bob.id):
                client.xadd(stream("graph"), fields)  # the same envelope again, as a relay that died would send it
                break
        else:
            raise AssertionError("the follow event is not on the stream")
    finally:
        client.close()
    settle_counts()
    assert profile(alice, bob.id)["follower_count"] == "1"
    assert profile(alice, alice.id)["following_count"] == "1"
