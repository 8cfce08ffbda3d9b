"""Grouping of notifications: which acts share a line of the notification centre."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.notifications.digest import compose, line
from services.notifications.service import Group, Grouping, Notification, OpenGroup, group_key

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
GROUPING = Grouping(window_s=600, max_s=3600)


def like(actor: int, at: datetime, post: int = 7) -> Notification:
    return Notification(user_id=1, type="LIKE", actor_id=actor, at=at, post_id=post)


def replay(acts: list[Notification], grouping: Grouping = GROUPING) -> list[str]:
    """The group each act lands in, keeping each thread's newest group as the store does."""
    newest: dict[str, OpenGroup] = {}
    keys = []
    for act in acts:
        key = group_key(act, newest.get(act.thread), grouping)
        opened = newest[act.thread].opened_at if act.thread in newest and newest[act.thread].key == key else act.at
        newest[act.thread] = OpenGroup(key, opened, act.at)
        keys.append(key)
    return keys


def test_likes_within_the_window_share_a_group():
    keys = replay([like(2, T0), like(3, T0 + timedelta(seconds=599))])
    assert keys[0] == keys[1] == f"like:7:{int(T0.timestamp() * 1000)}"


def test_a_like_after_the_window_opens_a_new_group():
    keys = replay([like(2, T0), like(3, T0 + timedelta(seconds=601))])
    assert keys[0] != keys[1]


def test_a_busy_post_keeps_extending_its_window():
    acts = [like(i, T0 + timedelta(seconds=500 * i)) for i in range(7)]  # 3000 s, never 600 s apart
    assert len(set(replay(acts))) == 1


def test_a_busy_post_opens_a_new_group_past_the_maximum():
    acts = [like(i, T0 + timedelta(seconds=500 * i)) for i in range(9)]  # the 8th is 3500 s in, the 9th 4000 s
    keys = replay(acts)
    assert keys[:8] == [keys[0]] * 8 and keys[8] != keys[0]


def test_likes_of_different_posts_never_share_a_group():
    keys = replay([like(2, T0, post=7), like(3, T0, post=8)])
    assert keys[0] != keys[1]


def test_follows_group_among_themselves():
    acts = [Notification(1, "FOLLOW", actor, T0 + timedelta(seconds=actor)) for actor in (2, 3)]
    keys = replay(acts)
    assert keys[0] == keys[1] and keys[0].startswith("follow:")


@pytest.mark.parametrize("type", ["COMMENT", "REPLY", "MENTION"])
def test_comments_replies_and_mentions_stand_alone(type):
    acts = [Notification(1, type, 2, T0, post_id=7, comment_id=c) for c in (10, 11)]
    keys = replay(acts)
    assert keys == [f"{type.lower()}:10" if type != "MENTION" else "mention:c10",
                    f"{type.lower()}:11" if type != "MENTION" else "mention:c11"]


def test_a_caption_mention_is_its_posts():
    assert Notification(1, "MENTION", 2, T0, post_id=7).source == "mention:p7"


def test_an_act_is_named_by_what_takes_it_back():
    assert like(2, T0).source == "like:7:2"
    assert Notification(1, "FOLLOW", 2, T0).source == "follow:2"
    assert Notification(1, "FOLLOW_REQUEST", 2, T0).source == "follow_request:2"


def test_a_digest_line_names_the_newest_actor_and_counts_the_others():
    group = Group(user_id=1, key="like:7:0", type="LIKE", latest_at=T0, notification_count=13, actor_count=13,
                  unread=True, actor_ids=[5, 4, 3], post_id=7)
    assert line(group, {5: "ada"}) == "ada and 12 others liked your post"


def test_a_digest_says_how_many_are_unread_and_lists_at_most_five():
    groups = [Group(1, f"comment:{i}", "COMMENT", T0, 1, 1, True, [2]) for i in range(7)]
    subject, body = compose("bob", 7, groups, {2: "ada"})
    assert subject == "You have 7 unread notifications on Pictor"
    assert body.count("ada commented on your post") == 5 and "and 2 more" in body

