"""From the event bus to notifications: the worker's rules (consumer group "notifications-inbox").

The notifications service learns of acts only from events (graph, posts,
engagement, stories: a reaction to or a reply to my story). Each act notifies its recipient unless: the actor is the
recipient, a block stands between them either way, the recipient muted the
actor or the kind (settings), or, for a mention, the recipient cannot see the
post. Taking an act back (unlike, deleted comment, unfollow, withdrawn or
answered request, deleted post, a mention edited out) takes its notification
back; a block or a mute takes back what the other side caused. Every change
of a user's groups is written with its event id (consumed_events, in the
user's shard, in the same transaction), so a redelivered event changes
nothing, and with a notification.changed event (outbox) per group changed.
"""

from __future__ import annotations

import logging
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from services.common.events import Event, published_at
from services.notifications.service import (
    GROUPED,
    MESSAGES,
    Group,
    Grouping,
    Notification,
    OpenGroup,
    group_key,
    message_source,
)

log = logging.getLogger(__name__)

GROUP = "notifications-inbox"
TOPICS = ["graph", "posts", "engagement", "stories", "messaging"]
# Names this consumer's rows in consumed_events.
CONSUMER = "notifications.inbox"
# An act older than this notifies no one: the group reads its topics from the start of the streams,
# and a stream's history (up to a million events) is no news to anyone.
MAX_AGE = timedelta(days=7)


class RecipientChanges(Protocol):
    """One transaction on one recipient's notifications (their shard)."""

    async def first_time(self, consumer: str, event_id: str) -> bool: ...
    async def muted_types(self) -> set[str]: ...
    # Whether the user has a stream open (the digest's projection of presence; never heard of: no).
    async def stream_open(self) -> bool: ...
    async def newest_group(self, thread: str) -> OpenGroup | None: ...
    # Record the act in group `key`; False when it was there already.
    async def add(self, n: Notification, key: str) -> bool: ...
    # Delete the acts matching `where` (column -> value; "source" is allowed); the group keys touched.
    async def remove(self, **where: object) -> list[str]: ...
    # Bring a group's row up to date with its acts; the group after it, None when it went.
    async def refresh_group(self, key: str) -> Group | None: ...
    async def unread_count(self) -> int: ...
    async def publish(self, key: str, group_json: str, unread_count: int) -> None: ...


class InboxStore(Protocol):
    def changes(self, user_id: int) -> AbstractAsyncContextManager[RecipientChanges]: ...
    # Recipients holding acts of a post or a comment (any shard).
    async def recipients(self, **where: int) -> set[int]: ...
    def holds(self, user_id: int) -> bool: ...


class Relations(Protocol):
    async def excluded(self, recipient_id: int, actor_id: int) -> bool:
        """Blocked either way, or the recipient muted the actor."""
        ...

    async def sees_post(self, viewer_id: int, post_id: int) -> bool: ...


class Usernames(Protocol):
    async def ids(self, usernames: list[str]) -> dict[str, int]: ...


class Renderer(Protocol):
    async def group_json(self, group: Group) -> str: ...


@dataclass
class Inbox:
    store: InboxStore
    relations: Relations
    usernames: Usernames
    renderer: Renderer
    grouping: Grouping

    async def handle(self, event: Event) -> None:
        at = datetime.fromtimestamp(published_at(event), UTC)
        d = event.data
        match event.type:
            case "like":
                await self.notify(event, Notification(d["author_id"], "LIKE", d["user_id"], at, post_id=d["post_id"]))
            case "unlike":
                like = Notification(d["author_id"], "LIKE", d["user_id"], at, post_id=d["post_id"])
                await self.take_back(event, d["author_id"], source=like.source)
            case "comment":
                await self.comment(event, at)
            case "comment.deleted":
                await self.take_back_everywhere(comment_id=d["comment_id"])
                await self.take_back_everywhere(parent_comment_id=d["comment_id"])
            case "post.created" | "post.updated":
                await self.caption(event, at)
            case "post.deleted":
                await self.take_back_everywhere(post_id=d["post_id"])
            case "follow":
                await self.notify(event, Notification(d["target_id"], "FOLLOW", d["follower_id"], at))
                if d.get("approved"):
                    await self.notify(event, Notification(d["follower_id"], "FOLLOW_ACCEPTED", d["target_id"], at))
            case "unfollow":
                await self.take_back(event, d["target_id"], source=f"follow:{d['follower_id']}")
                await self.take_back(event, d["follower_id"], source=f"follow_accepted:{d['target_id']}")
            case "follow.requested":
                await self.notify(event, Notification(d["target_id"], "FOLLOW_REQUEST", d["follower_id"], at))
            case "follow.request_removed":
                await self.take_back(event, d["target_id"], source=f"follow_request:{d['follower_id']}")
            case "block":
                await self.take_back(event, d["user_id"], actor_id=d["target_id"])
                await self.take_back(event, d["target_id"], actor_id=d["user_id"])
            case "mute":
                await self.take_back(event, d["user_id"], actor_id=d["target_id"])
            case "story.reaction":
                await self.notify(event, Notification(d["author_id"], "STORY_REACTION", d["user_id"], at,
                                                      story_id=d["story_id"]))
            case "message.created":
                # Messaging names whom to tell: members not muting it (MESSAGE), or for whom it is a
                # request (MESSAGE_REQUEST); only those away (no stream open) are notified.
                for kind, user_ids in (("MESSAGE", d["notify_user_ids"]), ("MESSAGE_REQUEST", d["request_user_ids"])):
                    for user_id in user_ids:
                        await self.notify(event, Notification(user_id, kind, d["actor_id"], at,
                                                              conversation_id=d["conversation_id"],
                                                              message_id=d["message_id"]))
            case "message.unsent":
                for user_id in d["recipient_ids"]:
                    await self.take_back(event, user_id, source=message_source(d["message_id"]))

    async def comment(self, event: Event, at: datetime) -> None:
        d = event.data
        post_id, comment_id, parent_id = d["post_id"], d["comment_id"], d["parent_comment_id"]
        act = {"post_id": post_id, "comment_id": comment_id, "parent_comment_id": parent_id}
        told = set()
        if parent_id and d.get("parent_author_id"):
            await self.notify(event, Notification(d["parent_author_id"], "REPLY", d["user_id"], at, **act))
            told.add(d["parent_author_id"])
        if d["author_id"] not in told:
            await self.notify(event, Notification(d["author_id"], "COMMENT", d["user_id"], at, **act))
            told.add(d["author_id"])
        for user_id in (await self.usernames.ids(d["mentions"])).values() if d["mentions"] else ():
            if user_id not in told:
                await self.notify(event, Notification(user_id, "MENTION", d["user_id"], at, **act), mention=True)

    async def caption(self, event: Event, at: datetime) -> None:
        """Mentions in a caption: each new one notifies; on an edit, one edited out is taken back."""
        d = event.data
        mentioned = set((await self.usernames.ids(d["mentions"])).values()) if d.get("mentions") else set()
        if event.type == "post.updated":
            for user_id in await self.store.recipients(post_id=d["post_id"]) - mentioned:
                await self.take_back(event, user_id, source=f"mention:p{d['post_id']}")
        for user_id in mentioned:
            await self.notify(event, Notification(user_id, "MENTION", d["author_id"], at, post_id=d["post_id"]),
                              mention=True)

    async def notify(self, event: Event, n: Notification, *, mention: bool = False) -> None:
        if n.user_id == n.actor_id or not n.user_id or not self.store.holds(n.user_id):
            return
        if datetime.now(UTC) - n.at > MAX_AGE:
            return
        if await self.relations.excluded(n.user_id, n.actor_id):
            return
        if mention and not await self.relations.sees_post(n.user_id, n.post_id):
            return
        async with self.store.changes(n.user_id) as tx:
            if not await tx.first_time(CONSUMER, event.id) or n.type in await tx.muted_types():
                return
            if n.type in MESSAGES and await tx.stream_open():
                return  # the message is on their open stream already
            key = await _key(tx, n, self.grouping)
            if await tx.add(n, key):
                await self._publish(tx, [key])

    async def take_back(self, event: Event, user_id: int, **where: object) -> None:
        if not self.store.holds(user_id):
            return
        async with self.store.changes(user_id) as tx:
            if not await tx.first_time(CONSUMER, event.id):
                return
            await self._publish(tx, await tx.remove(**where))

    async def take_back_everywhere(self, **where: int) -> None:
        """What went for good (a post, a comment): from every recipient; idempotent by itself."""
        for user_id in sorted(await self.store.recipients(**where)):
            async with self.store.changes(user_id) as tx:
                await self._publish(tx, await tx.remove(**where))

    async def _publish(self, tx: RecipientChanges, keys: list[str]) -> None:
        """notification.changed for each group touched, with the group as the API shows it."""
        groups = [(key, await tx.refresh_group(key)) for key in dict.fromkeys(keys)]
        if not groups:
            return
        unread = await tx.unread_count()
        for key, group in groups:
            await tx.publish(key, await self.renderer.group_json(group) if group else "", unread)



def recipients(event: Event) -> set[int] | None:
    """Whose notifications the event may change, when that is known from the event alone; None when
    it is not (mentions name users by username; a deleted post or comment takes back from whoever
    was notified of it). The consumer handles events that share a recipient in stream order, others
    at once (events.Lanes): every change of a user's notifications is made in that user's rows."""
    d = event.data
    match event.type:
        case "like" | "unlike" | "story.reaction":
            return {d["author_id"]}
        case "comment" if not d["mentions"]:
            return {d["author_id"], *([d["parent_author_id"]] if d.get("parent_author_id") else [])}
        case "post.created" if not d.get("mentions"):
            return set()
        case "follow" | "unfollow":
            return {d["target_id"], d["follower_id"]}
        case "follow.requested" | "follow.request_removed":
            return {d["target_id"]}
        case "block" | "mute":
            return {d["user_id"], d["target_id"]}
        case "message.created":
            return {*d["notify_user_ids"], *d["request_user_ids"]}
        case "message.unsent":
            return set(d["recipient_ids"])
        case _:
            return None


async def _key(tx: RecipientChanges, n: Notification, grouping: Grouping) -> str:
    return group_key(n, await tx.newest_group(n.thread) if n.type in GROUPED else None, grouping)
