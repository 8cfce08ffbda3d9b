"""Grouping windows and the digest without SMTP, end to end through the gateway, on a stack of its
own with short windows: likes of one post join a group while its newest is at most
PICTOR_NOTIFICATIONS_GROUP_WINDOW_S old and its first at most PICTOR_NOTIFICATIONS_GROUP_MAX_S
old (a busy post keeps extending it, up to the maximum); with no PICTOR_SMTP_URL, the digest worker
writes each digest to its log. Digests here go to ACTIVE users too (PICTOR_DIGEST_CLASSES), so the
author of a post, ACTIVE for having posted it, gets one."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from services.mesh.launcher import Stack
from tests.conftest import private_stack
from tests.e2e.http import UserClient, sign_up_on
from tests.e2e.test_engagement_http import create_post

pytestmark = pytest.mark.e2e

WINDOW_S, MAX_S, AWAY_S = 4, 8, 2


@pytest.fixture(scope="module")
def windows_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    smtp = os.environ.pop("PICTOR_SMTP_URL", None)
    try:
        with private_stack(tmp_path_factory.mktemp("windows"), PICTOR_NOTIFICATIONS_GROUP_WINDOW_S=str(WINDOW_S),
                           PICTOR_NOTIFICATIONS_GROUP_MAX_S=str(MAX_S), PICTOR_DIGEST_AWAY_S=str(AWAY_S),
                           PICTOR_DIGEST_INTERVAL_MS="200", PICTOR_DIGEST_CLASSES="ACTIVE,PASSIVE") as running:
            yield running
    finally:
        if smtp is not None:
            os.environ["PICTOR_SMTP_URL"] = smtp


@pytest.fixture(scope="module")
def new_user(windows_stack: Stack):
    return sign_up_on(windows_stack.settings.gateway_port, "w")


def like_groups(user: UserClient, likes: int, timeout_s: float = 20.0) -> list[dict]:
    """The user's LIKE groups, oldest first, once they hold `likes` likes in all."""
    deadline = time.monotonic() + timeout_s
    while True:
        groups = [g for g in user.get("/v1/notifications?types=LIKE").json.get("groups", [])]
        if sum(int(g["notification_count"]) for g in groups) >= likes:
            return groups[::-1]
        assert time.monotonic() < deadline, f"{likes} likes never showed: {groups}"
        time.sleep(0.1)


def actors(group: dict) -> list[str]:
    return [a["username"] for a in group["actors"]]


def test_a_like_after_the_window_starts_a_new_group(new_user):
    author, first, second, late = new_user(), new_user(), new_user(), new_user()
    post = create_post(author)
    first.post(f"/v1/posts/{post}/like")
    second.post(f"/v1/posts/{post}/like")
    time.sleep(WINDOW_S + 1.5)  # the group's newest like is older than the window now
    late.post(f"/v1/posts/{post}/like")
    older, newer = like_groups(author, 3)
    assert sorted(actors(older)) == sorted([first.username, second.username])
    assert older["actor_count"] == "2"
    assert actors(newer) == [late.username] and newer["actor_count"] == "1"


def test_a_busy_post_keeps_extending_its_group_up_to_the_maximum(new_user):
    author = new_user()
    fans = [new_user() for _ in range(5)]
    post = create_post(author)
    started = time.monotonic()
    # Every 2.5 s, each within the window of the one before; the fifth comes when the group's first
    # like is older than the maximum.
    for n, fan in enumerate(fans):
        time.sleep(max(0.0, started + n * 2.5 - time.monotonic()))
        assert fan.post(f"/v1/posts/{post}/like").status == 200
    older, newer = like_groups(author, 5)
    assert older["actor_count"] == "4"
    assert actors(older) == [fans[3].username, fans[2].username, fans[1].username]  # the three newest
    assert actors(newer) == [fans[4].username]


def test_without_smtp_the_digest_is_written_to_the_digest_workers_log(new_user, windows_stack):
    author, fan = new_user(), new_user()
    fan.post(f"/v1/posts/{create_post(author)}/like")
    log = windows_stack.settings.data_dir / "logs" / "digest-1.log"
    expected = f"digest for {author.username}@example.com (no PICTOR_SMTP_URL)"
    deadline = time.monotonic() + 30
    while expected not in (text := log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, f"no digest for {author.username} in {log}"
        time.sleep(0.2)
    digest = text[text.index(expected):]
    assert "You have 1 unread notification on Pictor" in digest
    assert f"{fan.username} liked your post" in digest
