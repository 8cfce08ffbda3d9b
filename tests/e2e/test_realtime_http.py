"""The live stream through Envoy as JSON clients read it: Server-Sent Events over a real HTTP connection.

The notifications service is not part of this branch's stack: the tests put
notification.changed events on the bus themselves, on the topic's Redis
stream exactly as the relay does (services.common.events).
"""

from __future__ import annotations

import json
import time
import uuid

import pytest

from services.common.dependencies import sync_redis
from services.common.events import envelope, fields, stream
from tests.e2e.http import eventually
from tests.e2e.sse import SseStream

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def bus(stack):
    client = sync_redis(stack.settings.redis_url)
    yield client
    client.close()


def publish_notification(bus, user_id: str | int, group_key: str, group: dict | None, unread: int,
                         event_id: str | None = None) -> str:
    """A notification.changed event on topic "notifications", as the notifications service's relay puts it."""
    message = envelope("notification.changed", {
        "user_id": int(user_id), "group_key": group_key, "group_json": json.dumps(group) if group else "",
        "unread_count": unread}, event_id=event_id)
    bus.xadd(stream("notifications"), fields(message.SerializeToString(), message.type))
    return message.event_id


def like_group(key: str, n: int = 1) -> dict:
    return {"group_key": key, "type": "LIKE", "actor_count": str(n), "notification_count": str(n), "unread": True}


def open_stream(gateway, user, **kw) -> SseStream:
    s = SseStream(gateway.port, token=user.token, **kw)
    assert s.status == 200, s.body()
    s.wait_for_heartbeat()
    return s


def test_the_stream_is_an_event_stream_with_heartbeats(gateway, new_user):
    alice = new_user()
    with SseStream(gateway.port, token=alice.token) as s:
        assert s.status == 200
        assert s.headers["content-type"].startswith("text/event-stream")
        started = time.monotonic()
        beats = [s.next_event() for _ in range(2)]
        assert [b.event for b in beats] == ["heartbeat", "heartbeat"]
        # Each carries the position the stream reached: nothing came yet, so where the buffer begins.
        assert [b.id for b in beats] == ["0-0", "0-0"]
        # Test stack: PICTOR_REALTIME_HEARTBEAT_MS=1000 (15,000 by default).
        assert time.monotonic() - started >= 1.0


def test_a_stream_dropped_before_any_event_resumes_from_its_heartbeat_and_misses_nothing(gateway, new_user, bus):
    alice = new_user()
    with open_stream(gateway, alice) as s:
        publish_notification(bus, alice.id, "like:7", like_group("like:7"), unread=1)
        kept = s.events_until(2)[-1].id  # in her buffer now
    # A stream without `since` begins at "now": its first heartbeat says where that is.
    with SseStream(gateway.port, token=alice.token) as s:
        beat = s.next_event()
        assert (beat.event, beat.id) == ("heartbeat", kept)
    # It dropped before anything came for it; meanwhile a notification came.
    publish_notification(bus, alice.id, "like:8", like_group("like:8"), unread=2)
    with open_stream(gateway, alice, last_event_id=beat.id) as s:
        notification, unread = s.events_until(2)
    assert (notification.json["group_key"], unread.json) == ("like:8", {"count": "2"})


def test_a_changed_notification_arrives_with_id_and_event_lines(gateway, new_user, bus):
    alice = new_user()
    with open_stream(gateway, alice) as s:
        publish_notification(bus, alice.id, "like:1", like_group("like:1", 2), unread=5)
        notification, unread = s.events_until(2)
    assert notification.event == "notification" and unread.event == "unread_count"
    assert notification.id and unread.id and notification.id != unread.id
    assert notification.json == {"group_key": "like:1", "group": like_group("like:1", 2), "removed": False}
    assert unread.json == {"count": "5"}


def test_a_group_taken_back_arrives_as_a_removal(gateway, new_user, bus):
    alice = new_user()
    with open_stream(gateway, alice) as s:
        publish_notification(bus, alice.id, "follow:9", None, unread=0)
        notification, unread = s.events_until(2)
    assert notification.json["removed"] is True and notification.json["group_key"] == "follow:9"
    assert "group" not in notification.json
    assert unread.json == {"count": "0"}


def test_another_users_notifications_do_not_reach_my_stream(gateway, new_user, bus):
    alice, bob = new_user(), new_user()
    with open_stream(gateway, alice) as s:
        publish_notification(bus, bob.id, "like:2", like_group("like:2"), unread=1)
        publish_notification(bus, alice.id, "like:3", like_group("like:3"), unread=1)
        notification, _ = s.events_until(2)
    assert notification.json["group_key"] == "like:3"


def test_a_redelivered_bus_event_is_on_the_stream_once(gateway, new_user, bus):
    alice = new_user()
    with open_stream(gateway, alice) as s:
        event_id = uuid.uuid4().hex
        publish_notification(bus, alice.id, "like:4", like_group("like:4"), unread=1, event_id=event_id)
        publish_notification(bus, alice.id, "like:4", like_group("like:4"), unread=1, event_id=event_id)
        publish_notification(bus, alice.id, "like:5", like_group("like:5"), unread=2)
        events = s.events_until(4)
    assert [e.json.get("group_key") or e.json.get("count") for e in events] == ["like:4", "1", "like:5", "2"]


def test_resuming_with_last_event_id_loses_and_repeats_nothing(gateway, new_user, bus):
    alice = new_user()
    with open_stream(gateway, alice) as s:
        for n in range(3):
            publish_notification(bus, alice.id, f"like:{n}", like_group(f"like:{n}"), unread=n + 1)
        before = s.events_until(6)
    # The connection is gone; events keep coming meanwhile.
    for n in range(3, 7):
        publish_notification(bus, alice.id, f"like:{n}", like_group(f"like:{n}"), unread=n + 1)
    with open_stream(gateway, alice, last_event_id=before[-1].id) as s:
        publish_notification(bus, alice.id, "like:7", like_group("like:7"), unread=8)
        after = s.events_until(10)
    ids = [e.id for e in before + after]
    assert len(set(ids)) == len(ids) == 16
    assert [e.json["count"] for e in before + after if e.event == "unread_count"] == [str(n) for n in range(1, 9)]


def test_since_resumes_as_last_event_id_does(gateway, new_user, bus):
    alice = new_user()
    with open_stream(gateway, alice) as s:
        publish_notification(bus, alice.id, "like:a", like_group("like:a"), unread=1)
        first = s.events_until(2)
    publish_notification(bus, alice.id, "like:b", like_group("like:b"), unread=2)
    with open_stream(gateway, alice, path=f"/v1/stream?since={first[0].id}") as s:
        again = s.events_until(3)
    assert again[0].id == first[1].id
    assert [e.json.get("count") for e in again if e.event == "unread_count"] == ["1", "2"]


def test_a_new_stream_without_a_resume_point_starts_with_new_events(gateway, new_user, bus):
    alice = new_user()
    publish_notification(bus, alice.id, "like:old", like_group("like:old"), unread=1)
    eventually(lambda: bus.exists(f"rt:{{{alice.id}}}:events"), 1)
    with open_stream(gateway, alice) as s:
        publish_notification(bus, alice.id, "like:new", like_group("like:new"), unread=2)
        notification, _ = s.events_until(2)
    assert notification.json["group_key"] == "like:new"


def test_a_bad_last_event_id_is_400_naming_it(gateway, new_user):
    alice = new_user()
    r = gateway.get("/v1/stream", token=alice.token, headers={"last-event-id": "yesterday"})
    assert r.status == 400, r.body
    assert r.json["details"][0]["metadata"]["field"] == "Last-Event-ID"
    r = gateway.get("/v1/stream?since=1-2-3", token=alice.token)
    assert r.status == 400 and r.json["details"][0]["metadata"]["field"] == "since"


def test_the_stream_without_token_or_ticket_is_401(gateway):
    r = gateway.get("/v1/stream")
    assert r.status == 401, r.body
    assert r.json["details"][0]["reason"] == "TOKEN_MISSING"


def test_a_ticket_opens_one_stream_once(gateway, new_user, bus):
    alice = new_user()
    r = alice.post("/v1/stream:ticket", {})
    assert r.status == 200, r.body
    ticket = r.json["ticket"]
    assert r.json["expires_at"]
    with SseStream(gateway.port, path=f"/v1/stream?ticket={ticket}") as s:
        assert s.status == 200
        s.wait_for_heartbeat()
        publish_notification(bus, alice.id, "like:t", like_group("like:t"), unread=1)
        notification, _ = s.events_until(2)
        assert notification.json["group_key"] == "like:t"
    again = gateway.get(f"/v1/stream?ticket={ticket}")
    assert again.status == 401 and again.json["details"][0]["reason"] == "TICKET_INVALID"


def test_a_ticket_expires(gateway, new_user):
    alice = new_user()
    ticket = alice.post("/v1/stream:ticket", {}).json["ticket"]
    time.sleep(3.5)  # PICTOR_REALTIME_TICKET_TTL=3 in the test stack (60 by default)
    r = gateway.get(f"/v1/stream?ticket={ticket}")
    assert r.status == 401 and r.json["details"][0]["reason"] == "TICKET_INVALID"


def test_a_made_up_ticket_is_401(gateway):
    r = gateway.get("/v1/stream?ticket=not-a-ticket")
    assert r.status == 401 and r.json["details"][0]["reason"] == "TICKET_INVALID"


def test_a_ticket_needs_a_signed_in_caller(gateway):
    assert gateway.post("/v1/stream:ticket", {}).status == 401


def test_a_real_like_reaches_the_authors_open_stream(gateway, new_user):
    """The whole chain, no event made up: like → engagement's outbox → relay → notifier → the
    notification's outbox → relay → dispatch → the author's stream, through Envoy."""
    from tests.e2e.test_posts_http import create_post

    author, fan = new_user(), new_user()
    post = create_post(author, "a like on its way")
    with open_stream(gateway, author) as s:
        began = time.monotonic()
        assert fan.post(f"/v1/posts/{post['id']}/like").status == 200
        events = s.events_until(2)
        took = time.monotonic() - began
    assert [e.event for e in events] == ["notification", "unread_count"]
    group = events[0].json["group"]
    assert (group["type"], group["post"]["id"]) == ("LIKE", post["id"])
    assert [a["id"] for a in group["actors"]] == [fan.id]
    assert events[1].json == {"count": "1"}
    print(f"\na like reached its author's open stream {took * 1000:.0f} ms after POST .../like answered")


def test_the_replay_buffer_holds_a_thousand_events_and_older_resumes_get_resync(gateway, new_user, bus):
    """At least the last 1,000 events stay to resume from; a resume point older than the buffer
    gets `resync` (refetch), then what the buffer holds."""
    alice = new_user()
    with open_stream(gateway, alice) as s:
        publish_notification(bus, alice.id, "like:start", like_group("like:start"), unread=0)
        start = s.events_until(2)[-1].id
    # 500 bus events while no stream is open: 1,000 stream events (a notification and a count each).
    for n in range(1, 501):
        publish_notification(bus, alice.id, f"like:{n}", like_group(f"like:{n}"), unread=n)
    with open_stream(gateway, alice, path=f"/v1/stream?since={start}", timeout_s=60) as s:
        replayed = s.events_until(1000, timeout_s=60)
    assert "resync" not in [e.event for e in replayed]
    assert [e.json["count"] for e in replayed if e.event == "unread_count"] == [str(n) for n in range(1, 501)]
    # 1,500 more: the start point has left the buffer.
    for n in range(501, 2001):
        publish_notification(bus, alice.id, f"like:{n}", like_group(f"like:{n}"), unread=n)

    def first_event_after_start() -> str:
        with open_stream(gateway, alice, path=f"/v1/stream?since={start}", timeout_s=60) as s:
            return s.events_until(1, timeout_s=60)[0].event

    # Once the dispatch worker has put them in (a moment), the first thing such a resume gets.
    eventually(first_event_after_start, "resync", timeout_s=30)
