"""The email digest, end to end: a stack of its own whose digest worker talks to a real SMTP server
(aiosmtpd) on loopback; presence comes over the bus as realtime publishes it, and the user classes
from realtime's classifier. Digests go to PASSIVE users (the default PICTOR_DIGEST_CLASSES): here
an act keeps a user ACTIVE for ACTIVE_S seconds, a user who never came is INACTIVE, and one who
opened the app and left without acting is PASSIVE."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email import message_from_bytes

import pytest
import redis
from aiosmtpd.controller import Controller
from google.protobuf.timestamp_pb2 import Timestamp

from services.common.dependencies import sync_redis
from services.common.events import envelope, fields
from services.mesh.launcher import Stack
from services.mesh.private_stack import free_ports
from tests.conftest import consumers_caught_up, private_stack
from tests.e2e.http import UserClient, sign_up_on
from tests.e2e.sse import SseStream
from tests.e2e.test_engagement_http import create_post

pytestmark = pytest.mark.e2e

AWAY_S = 2
# An act makes its user ACTIVE for this long (PICTOR_CLASSIFIER_ACTIVE_DAYS), then PASSIVE.
ACTIVE_S = 4


class Inbox:
    """What the SMTP server received."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], object, float]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:  # aiosmtpd calls it by this name
        with self.lock:
            self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content), time.time()))
        return "250 OK"

    def to(self, address: str) -> list:
        with self.lock:
            return [(m, at) for rcpt, m, at in self.messages if address in rcpt]


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_ports(1)[0]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.fixture(scope="module")
def digest_stack(tmp_path_factory: pytest.TempPathFactory, smtp) -> Iterator[Stack]:
    _, port = smtp
    with private_stack(tmp_path_factory.mktemp("digest"), PICTOR_SMTP_URL=f"smtp://127.0.0.1:{port}",
                       PICTOR_DIGEST_AWAY_S=str(AWAY_S), PICTOR_DIGEST_INTERVAL_MS="200",
                       PICTOR_CLASSIFIER_ACTIVE_DAYS=str(ACTIVE_S / 86_400)) as running:
        yield running


@pytest.fixture(scope="module")
def bus(digest_stack: Stack) -> Iterator[redis.Redis]:
    client = sync_redis(digest_stack.settings.redis_url)
    yield client
    client.close()


@pytest.fixture(scope="module")
def new_user(digest_stack: Stack):
    return sign_up_on(digest_stack.settings.gateway_port, "d")


def presence(bus: redis.Redis, user: UserClient, state: str) -> None:
    """Publish presence.changed as realtime would, and wait until the digest worker took it in."""
    seen = Timestamp()
    seen.FromDatetime(datetime.now(UTC))
    event = envelope("presence.changed", {"user_id": int(user.id), "state": state, "last_active_at": seen})
    bus.xadd("events:presence", fields(event.SerializeToString(), event.type))
    deadline = time.monotonic() + 10
    while not consumers_caught_up(bus, "notifications-presence", ["presence"]):
        assert time.monotonic() < deadline, "the digest worker did not take presence in"
        time.sleep(0.02)


def visit(stack: Stack, user: UserClient) -> None:
    """The user opens the app (the live stream, through Envoy) and leaves without doing anything."""
    with SseStream(stack.settings.gateway_port, token=user.token) as stream:
        assert stream.status == 200, stream.body()
        stream.wait_for_heartbeat()


def unread(user: UserClient, count: int) -> None:
    deadline = time.monotonic() + 10
    while user.get("/v1/notifications:unreadCount").json["count"] != str(count):
        assert time.monotonic() < deadline, f"{user.username} never had {count} unread"
        time.sleep(0.05)


def wait_for_digest(smtp, user: UserClient, timeout_s: float = 20) -> tuple:
    inbox, _ = smtp
    deadline = time.monotonic() + timeout_s
    while not (found := inbox.to(f"{user.username}@example.com")):
        assert time.monotonic() < deadline, f"no digest reached {user.username}"
        time.sleep(0.05)
    return found[0]


def digests_of(smtp, user: UserClient) -> int:
    return len(smtp[0].to(f"{user.username}@example.com"))


def test_an_away_user_with_unread_notifications_gets_a_digest_by_smtp_once_passive(new_user, smtp):
    author, fan = new_user(), new_user()
    posted = time.time()  # the author is ACTIVE from here for ACTIVE_S: no digest until then
    fan.post(f"/v1/posts/{create_post(author)}/like")
    message, sent_at = wait_for_digest(smtp, author)
    assert sent_at - posted >= ACTIVE_S
    assert message["To"] == f"{author.username}@example.com"
    assert message["Subject"] == "You have 1 unread notification on Pictor"
    assert f"{fan.username} liked your post" in message.get_payload()


def test_at_most_one_digest_a_day(new_user, smtp):
    author, fan, other = new_user(), new_user(), new_user()
    post = create_post(author)
    fan.post(f"/v1/posts/{post}/like")
    wait_for_digest(smtp, author)
    other.post(f"/v1/users/{author.id}/follow")
    time.sleep(AWAY_S + 2)  # ten rounds of the worker
    assert digests_of(smtp, author) == 1


def test_no_digest_while_a_stream_is_open_and_one_after_it_closed_for_the_away_time(new_user, smtp, bus):
    author, fan = new_user(), new_user()
    presence(bus, author, "ONLINE")
    fan.post(f"/v1/posts/{create_post(author)}/like")
    time.sleep(AWAY_S + 1)
    assert digests_of(smtp, author) == 0
    closed = time.time()  # last_active_at, which the away time counts from, is taken after this
    presence(bus, author, "OFFLINE")
    _, sent_at = wait_for_digest(smtp, author)
    assert sent_at - closed >= AWAY_S


def test_no_digest_for_a_user_who_never_came_until_they_open_the_app_and_leave(new_user, smtp, digest_stack):
    lurker, fan = new_user(), new_user()
    fan.post(f"/v1/users/{lurker.id}/follow")
    unread(lurker, 1)
    time.sleep(AWAY_S + 1)  # away all along, but INACTIVE: ten rounds of the worker
    assert digests_of(smtp, lurker) == 0
    left = time.time()
    visit(digest_stack, lurker)  # LIVE, then PASSIVE
    _, sent_at = wait_for_digest(smtp, lurker)
    assert sent_at - left >= AWAY_S


def test_no_digest_with_email_digest_off_or_nothing_unread(new_user, smtp, bus, digest_stack):
    off, read, on, fan = new_user(), new_user(), new_user(), new_user()
    assert off.patch("/v1/users/me/notification-settings", {"email_digest": False}).status == 200
    visit(digest_stack, off)
    visit(digest_stack, on)
    presence(bus, read, "ONLINE")  # no digest before it reads
    fan.post(f"/v1/users/{read.id}/follow")
    unread(read, 1)
    assert read.post("/v1/notifications:markRead", {}).status == 200
    presence(bus, read, "OFFLINE")
    fan.post(f"/v1/users/{off.id}/follow")
    fan.post(f"/v1/users/{on.id}/follow")
    wait_for_digest(smtp, on)
    time.sleep(AWAY_S + 1)  # read has been away long enough by now
    assert digests_of(smtp, off) == 0 and digests_of(smtp, read) == 0
