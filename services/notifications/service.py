"""The notification centre's rules: what an act notifies, how acts group, what a user reads. No gRPC here.

A notification is one act that concerns a user (a like of their post, a
follow); acts of one line of the centre share a group. Likes of one post, and
follows, group while acts keep coming: a new act joins the open group when
the group's newest act is at most `window_s` old and its first at most
`max_s` old (so a busy post keeps its group open, up to the maximum);
otherwise it opens a new group. Comments, replies, mentions, follow requests
and acceptances stand alone. Times are the acts' own (their events'
occurred_at), so a redelivered event decides the same way.

The worker side (services.notifications.inbox) writes notifications from
events; this module also holds what GET /v1/notifications and the settings
routes do.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol

from services.common.config import env_int
from services.common.errors import InvalidArgument
from services.common.pagination import decode_token, encode_token, iso_time, page_size, text

DEFAULT_PAGE, MAX_PAGE = 20, 100
TOPIC = "notifications"
CHANGED = "notification.changed"

TYPES = ("LIKE", "COMMENT", "REPLY", "MENTION", "FOLLOW", "FOLLOW_REQUEST", "FOLLOW_ACCEPTED", "STORY_REACTION",
         "STORY_REPLY", "MESSAGE", "MESSAGE_REQUEST")
# Kinds whose acts group; the others stand alone. Messages group per conversation.
GROUPED = frozenset({"LIKE", "FOLLOW", "MESSAGE", "MESSAGE_REQUEST"})
MESSAGES = frozenset({"MESSAGE", "MESSAGE_REQUEST"})
SETTINGS_FIELDS = ("muted_types", "email_digest")


@dataclass(frozen=True)
class Grouping:
    """How long a grouped line stays open: `window_s` after its newest act, `max_s` after its first."""

    window_s: int = 3600
    max_s: int = 86_400

    @classmethod
    def from_env(cls) -> Grouping:
        return cls(window_s=env_int("PICTOR_NOTIFICATIONS_GROUP_WINDOW_S", cls.window_s),
                   max_s=env_int("PICTOR_NOTIFICATIONS_GROUP_MAX_S", cls.max_s))

    def joins(self, group: OpenGroup | None, at: datetime) -> bool:
        """Whether an act at `at` joins `group` (the newest line of its thread) rather than open a new one."""
        if group is None:
            return False
        return (at - group.latest_at).total_seconds() <= self.window_s and \
            (at - group.opened_at).total_seconds() <= self.max_s


@dataclass(frozen=True)
class Notification:
    """One act that notifies `user_id`."""

    user_id: int
    type: str
    actor_id: int
    at: datetime
    post_id: int = 0
    comment_id: int = 0
    parent_comment_id: int = 0
    # STORY_REACTION and STORY_REPLY: the story (kept in the source only).
    story_id: int = 0
    # MESSAGE, MESSAGE_REQUEST: named in the source and the group key only (no columns of their own).
    conversation_id: int = 0
    message_id: int = 0

    @property
    def source(self) -> str:
        """Names the act itself, so that taking it back finds it (and it is recorded once)."""
        if self.type == "STORY_REACTION":  # a new reaction replaces the viewer's last
            return f"story_reaction:{self.story_id}:{self.actor_id}"
        if self.type == "STORY_REPLY":  # every reply is its own act
            return f"story_reply:{self.story_id}:{self.actor_id}:{int(self.at.timestamp() * 1000)}"
        if self.type in MESSAGES:
            return message_source(self.message_id)
        if self.type == "LIKE":
            return f"like:{self.post_id}:{self.actor_id}"
        if self.type == "MENTION":
            return f"mention:c{self.comment_id}" if self.comment_id else f"mention:p{self.post_id}"
        if self.type in ("COMMENT", "REPLY"):
            return f"{self.type.lower()}:{self.comment_id}"
        return f"{self.type.lower()}:{self.actor_id}"  # FOLLOW, FOLLOW_REQUEST, FOLLOW_ACCEPTED

    @property
    def thread(self) -> str:
        """What its groups are of: a grouped kind's lines follow one another in a thread."""
        if self.type == "LIKE":
            return f"like:{self.post_id}"
        if self.type == "FOLLOW":
            return "follow"
        if self.type in MESSAGES:
            # A conversation's line: its group key is "message:<conversation_id>:<ms>".
            return f"{self.type.lower()}:{self.conversation_id}"
        return self.source


def message_source(message_id: int) -> str:
    return f"message:{message_id}"


@dataclass(frozen=True)
class OpenGroup:
    """The newest line of a thread, as grouping needs it."""

    key: str
    opened_at: datetime
    latest_at: datetime


def group_key(n: Notification, newest: OpenGroup | None, grouping: Grouping) -> str:
    """The group the act goes in: the thread's newest when it is still open, else a new one."""
    if n.type not in GROUPED:
        return n.source
    if grouping.joins(newest, n.at):
        return newest.key
    return f"{n.thread}:{int(n.at.timestamp() * 1000)}"


@dataclass(frozen=True)
class Group:
    """A line of the notification centre, as stored (actors as ids, newest first)."""

    user_id: int
    key: str
    type: str
    latest_at: datetime
    notification_count: int
    actor_count: int
    unread: bool
    actor_ids: list[int] = field(default_factory=list)
    post_id: int = 0
    comment_id: int = 0
    parent_comment_id: int = 0


@dataclass(frozen=True)
class Settings:
    muted_types: list[str] = field(default_factory=list)
    email_digest: bool = True


class NotificationStore(Protocol):
    async def groups(self, user_id: int, limit: int, after: tuple[str, str] | None,
                     types: list[str]) -> list[Group]: ...
    async def unread_count(self, user_id: int) -> int: ...
    # Marks read and, when that changed anything, writes notification.changed with the count; the count after.
    async def mark_read(self, user_id: int, before: datetime | None) -> int: ...
    async def settings(self, user_id: int) -> Settings: ...
    async def save_settings(self, user_id: int, settings: Settings) -> None: ...


def check_types(types: list[str], field_name: str) -> list[str]:
    """Known kinds, each once, in TYPES order; INVALID_ARGUMENT naming the field otherwise."""
    unknown = [t for t in types if t not in TYPES]
    if unknown:
        raise InvalidArgument(field_name, f"{field_name}: {unknown[0]!r} is not a notification type "
                                          f"(one of {', '.join(TYPES)})", reason="INVALID_NOTIFICATION_TYPE")
    return [t for t in TYPES if t in types]


@dataclass
class NotificationsService:
    store: NotificationStore

    async def list(self, user_id: int, size: int, token: str, types: list[str]) -> tuple[list[Group], str]:
        """A page of the user's groups, newest first, and the next page's token. (Groups whose post the
        user can no longer see are for the caller to leave out, when it looks the posts up.)"""
        limit = page_size(size, default=DEFAULT_PAGE, maximum=MAX_PAGE)
        kinds = check_types(types, "types")
        scope = f"notifications:{user_id}:{','.join(kinds)}"
        cursor = decode_token(token, scope, t=iso_time, k=text)
        page = await self.store.groups(user_id, limit + 1, (cursor["t"], cursor["k"]) if cursor else None, kinds)
        more, page = len(page) > limit, page[:limit]
        following = encode_token(scope, t=page[-1].latest_at.isoformat(), k=page[-1].key) if more else ""
        return page, following

    async def unread_count(self, user_id: int) -> int:
        return await self.store.unread_count(user_id)

    async def mark_read(self, user_id: int, before: datetime | None) -> int:
        return await self.store.mark_read(user_id, before)

    async def settings(self, user_id: int) -> Settings:
        return await self.store.settings(user_id)

    async def update_settings(self, user_id: int, changes: dict[str, object]) -> Settings:
        """Apply the fields given (muted_types: a list of kinds; email_digest: a bool)."""
        unknown = [name for name in changes if name not in SETTINGS_FIELDS]
        if unknown:
            raise InvalidArgument("update_mask", f"update_mask: {unknown[0]!r} is not a setting "
                                                 f"(one of {', '.join(SETTINGS_FIELDS)})")
        current = await self.store.settings(user_id)
        if "muted_types" in changes:
            muted = check_types(list(changes["muted_types"]), "muted_types")  # type: ignore[arg-type]
            current = replace(current, muted_types=muted)
        if "email_digest" in changes:
            current = replace(current, email_digest=bool(changes["email_digest"]))
        await self.store.save_settings(user_id, current)
        return current
