"""The notifier's rules on in-memory fakes: who an event notifies, and that it does so once."""

from __future__ import annotations

from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from services.common.events import Event
from services.notifications.inbox import Inbox
from services.notifications.service import Group, Grouping, Notification, OpenGroup


class FakeChanges:
    def __init__(self, store: FakeStore, user_id: int) -> None:
        self.store, self.user_id = store, user_id

    async def first_time(self, consumer: str, event_id: str) -> bool:
        seen = (consumer, event_id, self.user_id) in self.store.consumed
        self.store.consumed.add((consumer, event_id, self.user_id))
        return not seen

    async def muted_types(self) -> set[str]:
        return self.store.muted.get(self.user_id, set())

    async def stream_open(self) -> bool:
        return self.user_id in self.store.online

    async def newest_group(self, thread: str) -> OpenGroup | None:
        return None

    async def add(self, n: Notification, key: str) -> bool:
        fresh = (n.user_id, n.source) not in self.store.acts
        self.store.acts[(n.user_id, n.source)] = (key, n)
        return fresh

    async def remove(self, **where: object) -> list[str]:
        gone = [k for k, (_, n) in self.store.acts.items() if k[0] == self.user_id and all(
            (k[1] if column == "source" else getattr(n, column)) == value for column, value in where.items())]
        return [self.store.acts.pop(k)[0] for k in gone]

    async def refresh_group(self, key: str) -> Group | None:
        return None

    async def unread_count(self) -> int:
        return 0

    async def publish(self, key: str, group_json: str, unread_count: int) -> None:
        self.store.published.append((self.user_id, key))


class FakeStore:
    def __init__(self) -> None:
        self.acts: dict[tuple[int, str], tuple[str, Notification]] = {}
        self.consumed: set[tuple[str, str, int]] = set()
        self.muted: dict[int, set[str]] = {}
        self.online: set[int] = set()
        self.published: list[tuple[int, str]] = []

    @asynccontextmanager
    async def changes(self, user_id: int):
        yield FakeChanges(self, user_id)

    async def recipients(self, **where: int) -> set[int]:
        return {user for (user, _), (_, n) in self.acts.items() if all(getattr(n, c) == v for c, v in where.items())}

    def holds(self, user_id: int) -> bool:
        return user_id > 0


class FakeRelations:
    def __init__(self, excluded: set[tuple[int, int]] = frozenset()) -> None:
        self.pairs = excluded

    async def excluded(self, recipient_id: int, actor_id: int) -> bool:
        return (recipient_id, actor_id) in self.pairs

    async def sees_post(self, viewer_id: int, post_id: int) -> bool:
        return True


class FakeUsernames:
    async def ids(self, usernames: list[str]) -> dict[str, int]:
        return {name: int(name.removeprefix("u")) for name in usernames}


class FakeRenderer:
    async def group_json(self, group: Group) -> str:
        return "{}"


def inbox(store: FakeStore, relations: FakeRelations | None = None) -> Inbox:
    return Inbox(store, relations or FakeRelations(), FakeUsernames(), FakeRenderer(), Grouping())


def event(type: str, event_id: str = "e1", age: timedelta = timedelta(0), **data) -> Event:
    return Event("test", type, data, event_id, occurred_at=(datetime.now(UTC) - age).timestamp())


def recipients(store: FakeStore) -> list[tuple[int, str]]:
    return sorted((user, n.type) for (user, _), (_, n) in store.acts.items())


async def test_a_like_notifies_the_posts_author():
    store = FakeStore()
    await inbox(store).handle(event("like", post_id=9, user_id=2, author_id=1))
    assert recipients(store) == [(1, "LIKE")]


async def test_the_same_event_twice_notifies_once_even_after_its_take_back():
    store = FakeStore()
    notifier = inbox(store)
    like = event("like", "e1", post_id=9, user_id=2, author_id=1)
    await notifier.handle(like)
    await notifier.handle(event("unlike", "e2", post_id=9, user_id=2, author_id=1))
    await notifier.handle(like)
    assert recipients(store) == []


async def test_own_acts_notify_no_one():
    store = FakeStore()
    await inbox(store).handle(event("like", post_id=9, user_id=1, author_id=1))
    assert recipients(store) == []


async def test_an_excluded_actor_notifies_no_one():
    store = FakeStore()
    await inbox(store, FakeRelations({(1, 2)})).handle(event("like", post_id=9, user_id=2, author_id=1))
    assert recipients(store) == []


async def test_a_muted_kind_notifies_no_one():
    store = FakeStore()
    store.muted[1] = {"LIKE"}
    await inbox(store).handle(event("like", post_id=9, user_id=2, author_id=1))
    assert recipients(store) == []


async def test_an_act_older_than_a_week_notifies_no_one():
    store = FakeStore()
    await inbox(store).handle(event("like", age=timedelta(days=8), post_id=9, user_id=2, author_id=1))
    assert recipients(store) == []


async def test_a_reply_mentioning_the_post_author_notifies_each_person_once():
    store = FakeStore()
    await inbox(store).handle(event("comment", post_id=9, user_id=3, author_id=1, comment_id=20,
                                    parent_comment_id=10, parent_author_id=2, mentions=["u1", "u4"]))
    assert recipients(store) == [(1, "COMMENT"), (2, "REPLY"), (4, "MENTION")]


async def test_an_approved_follow_tells_both_sides():
    store = FakeStore()
    await inbox(store).handle(event("follow", follower_id=2, target_id=1, approved=True))
    assert recipients(store) == [(1, "FOLLOW"), (2, "FOLLOW_ACCEPTED")]


async def test_a_block_takes_back_both_sides_acts():
    store = FakeStore()
    notifier = inbox(store)
    await notifier.handle(event("follow", "e1", follower_id=2, target_id=1))
    await notifier.handle(event("follow", "e2", follower_id=1, target_id=2))
    await notifier.handle(event("block", "e3", user_id=1, target_id=2))
    assert recipients(store) == []


def message_created(event_id: str = "m1", **data) -> Event:
    fields = {"conversation_id": 7, "actor_id": 2, "message_id": 70, "recipient_ids": [1, 2, 3],
              "notify_user_ids": [], "request_user_ids": [], **data}
    return event("message.created", event_id, **fields)


async def test_a_message_notifies_the_members_messaging_names_who_are_away():
    store = FakeStore()
    store.online.add(3)
    await inbox(store).handle(message_created(notify_user_ids=[1, 3]))
    assert recipients(store) == [(1, "MESSAGE")]


async def test_a_message_request_notifies_as_one():
    store = FakeStore()
    await inbox(store).handle(message_created(request_user_ids=[1]))
    assert recipients(store) == [(1, "MESSAGE_REQUEST")]


async def test_an_unsent_message_takes_its_notification_back():
    store = FakeStore()
    notifier = inbox(store)
    await notifier.handle(message_created(notify_user_ids=[1]))
    await notifier.handle(event("message.unsent", "m2", conversation_id=7, actor_id=2, message_id=70,
                                recipient_ids=[1, 2]))
    assert recipients(store) == []


def test_messages_of_a_conversation_share_a_thread():
    at = datetime.now(UTC)
    first = Notification(1, "MESSAGE", 2, at, conversation_id=7, message_id=70)
    second = Notification(1, "MESSAGE", 3, at, conversation_id=7, message_id=71)
    assert first.thread == second.thread == "message:7" and first.source != second.source


class TouchedStore(FakeStore):
    """A FakeStore that remembers whose notifications an event opened for change."""

    def __init__(self) -> None:
        super().__init__()
        self.touched: set[int] = set()

    @asynccontextmanager
    async def changes(self, user_id: int):
        self.touched.add(user_id)
        yield FakeChanges(self, user_id)


# One event of each kind whose recipients are known from the event, with every id distinct.
KEYED_EVENTS = [
    event("like", post_id=9, user_id=2, author_id=1),
    event("unlike", post_id=9, user_id=2, author_id=1),
    event("story.reaction", story_id=9, user_id=2, author_id=1),
    event("comment", post_id=9, comment_id=5, parent_comment_id=4, parent_author_id=3, user_id=2, author_id=1,
          mentions=[]),
    event("comment", post_id=9, comment_id=5, parent_comment_id=0, user_id=2, author_id=1, mentions=[]),
    event("post.created", post_id=9, author_id=1, mentions=[]),
    event("follow", target_id=1, follower_id=2, approved=True),
    event("unfollow", target_id=1, follower_id=2),
    event("follow.requested", target_id=1, follower_id=2),
    event("follow.request_removed", target_id=1, follower_id=2),
    event("block", user_id=1, target_id=2),
    event("mute", user_id=1, target_id=2),
    event("message.created", conversation_id=8, message_id=7, actor_id=2, notify_user_ids=[1], request_user_ids=[3]),
    event("message.unsent", message_id=7, recipient_ids=[1, 3]),
]


async def test_the_recipients_an_event_names_are_every_user_whose_notifications_it_changes():
    # The consumer runs events of different recipients at once: one that touched a user it did not
    # name could race with that user's own events.
    from services.notifications.inbox import recipients as named

    for keyed in KEYED_EVENTS:
        store = TouchedStore()
        # What a take back finds: earlier acts of everyone involved.
        notifier = inbox(store)
        for user in (1, 2, 3):
            for kind, source in (("LIKE", "like:9:2"), ("FOLLOW", "follow:2"), ("FOLLOW_ACCEPTED", "follow_accepted:1")):
                store.acts[(user, source)] = ("k", Notification(user, kind, 2, datetime.now(UTC), post_id=9))
        await notifier.handle(keyed)
        assert store.touched <= named(keyed), (keyed.type, store.touched, named(keyed))
        assert bool(store.touched) == bool(named(keyed)), keyed.type  # not vacuous: it did touch someone


async def test_events_whose_recipients_need_a_lookup_are_named_none():
    from services.notifications.inbox import recipients as named

    assert named(event("comment", post_id=9, comment_id=5, parent_comment_id=0, user_id=2, author_id=1,
                       mentions=["u3"])) is None
    assert named(event("post.created", post_id=9, author_id=1, mentions=["u3"])) is None
    assert named(event("post.updated", post_id=9, author_id=1, mentions=[])) is None
    assert named(event("post.deleted", post_id=9, author_id=1)) is None
    assert named(event("comment.deleted", comment_id=5, post_id=9)) is None
    assert named(event("something.new", user_id=1)) is None
