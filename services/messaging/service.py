"""Direct messages: conversations, requests, messages, receipts, encrypted conversations. No gRPC here.

Who sees what:
- A conversation is its ACTIVE members' (and, without its messages, its
  DECLINED ones' to the others: the sender of a declined request sees no
  difference). Everyone else gets NOT_FOUND for it and its messages.
- A one-to-one conversation across a block is gone for both sides (NOT_FOUND,
  left out of lists) while the block stands; creating one is NOT_FOUND.
- Requests: a member who does not follow the person who started the
  conversation (or added them to a group) gets it in REQUESTS; it moves to
  INBOX when they accept (or reply); declining ends it for them. Their read
  receipts and typing stay hidden until they accept.
- A member who joins a group later reads from then on (history_from).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from services.common.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from services.common.ids import IdAllocator, shard_of
from services.common.pagination import decode_token, encode_token, page_size, positive_int64
from services.messaging import render
from services.messaging.events import TYPING, MessagingEvent

MAX_GROUP = 32
MAX_TEXT = 2000
MAX_TITLE = 100
MAX_CLIENT_ID = 64
MAX_EMOJI = 16
MAX_CIPHERTEXT = 64 * 1024
# Presence's contacts come from a user's most recently active inbox conversations, this many.
CONTACT_CONVERSATIONS = 1000
DEFAULT_CONVERSATIONS, MAX_CONVERSATIONS = 20, 50
DEFAULT_MESSAGES, MAX_MESSAGES = 30, 100
FOLDERS = ("INBOX", "REQUESTS")
UPDATABLE = ("title", "muted")


# --- what is stored ---------------------------------------------------------------


@dataclass(frozen=True)
class Conversation:
    id: int
    is_group: bool
    secret: bool
    title: str
    creator_id: int
    last_message_id: int
    created_at: datetime | None = None


@dataclass(frozen=True)
class Member:
    user_id: int
    state: str  # ACTIVE, DECLINED, LEFT, REMOVED
    last_read_id: int = 0
    history_from: int = 0


@dataclass(frozen=True)
class UserView:
    """One member's own view: their folder, mute, and newest activity (0: not listed yet)."""

    folder: str
    muted: bool
    last_activity_id: int


@dataclass(frozen=True)
class Message:
    conversation_id: int
    id: int
    sender_id: int
    client_message_id: str
    kind: str
    text: str
    media_id: int
    post_id: int
    story_id: int
    unsent: bool = False
    created_at: datetime | None = None
    # Hidden by a moderator: listed for its sender only (services.messaging.moderation).
    hidden: bool = False


@dataclass(frozen=True)
class NewMessage:
    conversation_id: int
    id: int
    sender_id: int
    client_message_id: str
    kind: str
    text: str = ""
    media_id: int = 0
    post_id: int = 0
    story_id: int = 0
    # (device_id, the device's user, ciphertext)
    envelopes: list[tuple[int, int, bytes]] = field(default_factory=list)


@dataclass(frozen=True)
class Envelope:
    device_id: int
    ciphertext: bytes


@dataclass(frozen=True)
class Draft:
    """A message as the client sends it."""

    client_message_id: str
    text: str = ""
    media_id: int = 0
    post_id: int = 0
    story_id: int = 0
    envelopes: list[Envelope] = field(default_factory=list)
    sender_device_id: int = 0


@dataclass
class ConversationView:
    """A conversation as one member sees it (what the API renders)."""

    conversation: Conversation
    members: list[Member]
    view: UserView
    unread_count: int
    last_message: Message | None
    # Members whose read receipts the viewer may not see yet (their copy is still a request).
    hidden_reads: set[int] = field(default_factory=set)


@dataclass
class MessageView:
    message: Message
    reactions: list[tuple[int, str]]
    envelopes: list[tuple[int, int, bytes]]
    media: object | None = None  # pictor.media.v1.Media, hydrated
    post: object | None = None  # pictor.posts.v1.Post, when the reader may see it
    post_visible: bool = False
    story: object | None = None  # pictor.stories.v1.Story, when the reader may see it
    story_visible: bool = False


# --- what it asks of others ---------------------------------------------------------


@dataclass(frozen=True)
class Relation:
    follows: bool  # the viewer follows the other
    blocked: bool  # either way


class Relations(Protocol):
    # How `viewer_id` relates to each of `user_ids` that exists (unknown ones are left out).
    async def relations(self, viewer_id: int, user_ids: list[int]) -> dict[int, Relation]: ...


class MediaItems(Protocol):
    # Media items (pictor.media.v1.Media) by id, with their owner_id.
    async def get(self, media_ids: list[int]) -> dict[int, object]: ...
    # Keep the owner's media item while the message shows it (media's collector takes media no
    # post, story or message holds); unpin lets it go once the message is unsent (best effort: an
    # item it could not release stays, nothing is lost).
    async def pin(self, owner_id: int, message_id: int, media_id: int) -> None: ...
    async def unpin(self, owner_id: int, message_id: int, media_id: int) -> None: ...


class SharedPosts(Protocol):
    # Hydrated posts the viewer may see (pictor.posts.v1.Post), by id.
    async def visible(self, viewer_id: int, post_ids: list[int]) -> dict[int, object]: ...
    # Which of the posts the viewer may see (ids only).
    async def sees(self, viewer_id: int, post_ids: list[int]) -> set[int]: ...


class SharedStories(Protocol):
    # Hydrated stories the viewer may see now (pictor.stories.v1.Story), by id.
    async def visible(self, viewer_id: int, story_ids: list[int]) -> dict[int, object]: ...


class Devices(Protocol):
    # user id -> their device ids (accounts').
    async def device_ids(self, user_ids: list[int]) -> dict[int, set[int]]: ...


class Ephemeral(Protocol):
    # Put an event straight onto the bus (no outbox, nothing stored).
    async def publish(self, type: str, event: MessagingEvent) -> None: ...


class Store(Protocol):
    def holds(self, entity_id: int) -> bool: ...
    async def conversation(self, conversation_id: int) -> Conversation | None: ...
    async def conversations(self, ids: list[int]) -> dict[int, Conversation]: ...
    async def members(self, ids: list[int]) -> dict[int, list[Member]]: ...
    async def member(self, conversation_id: int, user_id: int) -> Member | None: ...
    async def user_views(self, user_id: int, ids: list[int]) -> dict[int, UserView]: ...
    async def user_views_of(self, conversation_id: int, user_ids: list[int]) -> dict[int, UserView]: ...
    async def listed(self, user_id: int, folder: str, limit: int, after: tuple[int, int] | None) -> list[int]: ...
    async def unread_counts(self, viewer_id: int, conversation_ids: list[int]) -> dict[int, int]: ...
    async def messages_by_id(self, ids: list[int]) -> dict[int, Message]: ...
    async def message(self, message_id: int) -> Message | None: ...
    async def message_by_client_id(self, conversation_id: int, sender_id: int, client_id: str) -> Message | None: ...
    async def page(self, conversation_id: int, after_id: int, before_id: int | None, limit: int) -> list[Message]: ...
    async def reactions(self, message_ids: list[int]) -> dict[int, list[tuple[int, str]]]: ...
    async def envelopes(self, message_ids: list[int], user_id: int | None
                        ) -> dict[int, list[tuple[int, int, bytes]]]: ...
    async def create_direct(self, conversation: Conversation, low: int, high: int, creator_id: int,
                            folders: dict[int, str]) -> tuple[int, bool]: ...
    async def create_group(self, conversation: Conversation, member_ids: list[int],
                           folders: dict[int, str]) -> None: ...
    async def rejoin(self, conversation_id: int, user_id: int, activity: int) -> None: ...
    async def add_members(self, conversation_id: int, folders: dict[int, str], history_from: int) -> None: ...
    async def end_membership(self, conversation_id: int, user_id: int, state: str) -> bool: ...
    async def contacts(self, user_id: int, among: list[int] | None, limit: int) -> set[int]: ...
    async def update_view(self, user_id: int, conversation_id: int, **changes: object) -> None: ...
    async def set_title(self, conversation_id: int, title: str) -> None: ...
    async def add_message(self, m: NewMessage, active: list[int], event: MessagingEvent) -> tuple[Message, bool]: ...
    async def unsend(self, message: Message, event: MessagingEvent) -> bool: ...
    async def set_reaction(self, message: Message, user_id: int, emoji: str | None, event_of
                           ) -> list[tuple[int, str]] | None: ...
    async def mark_read(self, conversation_id: int, user_id: int, message_id: int,
                        event: MessagingEvent | None) -> bool: ...


def not_found(conversation_id: int) -> NotFound:
    return NotFound(f"conversation {conversation_id} not found", reason="CONVERSATION_NOT_FOUND")


def message_not_found(message_id: int) -> NotFound:
    return NotFound(f"message {message_id} not found", reason="MESSAGE_NOT_FOUND")


def check_folder(folder: str) -> str:
    folder = folder or "INBOX"
    if folder not in FOLDERS:
        raise InvalidArgument("folder", f"folder must be one of {', '.join(FOLDERS)}", reason="INVALID_FOLDER")
    return folder


def check_title(title: str) -> str:
    title = title.strip()
    if not 1 <= len(title) <= MAX_TITLE:
        raise InvalidArgument("title", f"a group needs a title of 1-{MAX_TITLE} characters", reason="INVALID_TITLE")
    return title


def check_emoji(emoji: str) -> str:
    emoji = emoji.strip()
    if not 1 <= len(emoji) <= MAX_EMOJI:
        raise InvalidArgument("emoji", f"emoji must be 1-{MAX_EMOJI} characters", reason="INVALID_EMOJI")
    return emoji


def message_kind(draft: Draft, secret: bool) -> str:
    """The draft's kind; INVALID_ARGUMENT naming the field unless it holds exactly one thing."""
    if not 1 <= len(draft.client_message_id) <= MAX_CLIENT_ID:
        raise InvalidArgument("client_message_id", f"client_message_id must be 1-{MAX_CLIENT_ID} characters",
                              reason="INVALID_CLIENT_MESSAGE_ID")
    given = [name for name, value in (("text", draft.text), ("media_id", draft.media_id),
                                      ("post_id", draft.post_id), ("story_id", draft.story_id)) if value]
    if draft.story_id and "text" in given and not secret:
        given.remove("text")  # words about the story: a reply
        if not draft.text.strip() or len(draft.text) > MAX_TEXT:
            raise InvalidArgument("text", f"text must be 1-{MAX_TEXT} characters", reason="INVALID_TEXT")
    if secret:
        if given:
            raise InvalidArgument(given[0], f"{given[0]}: a secret conversation's messages are envelopes only "
                                            "(end-to-end encrypted)", reason="SECRET_NEEDS_ENVELOPES")
        if not draft.envelopes:
            raise InvalidArgument("envelopes", "envelopes: a secret message needs one per device",
                                  reason="SECRET_NEEDS_ENVELOPES")
        return "ENCRYPTED"
    if draft.envelopes:
        raise InvalidArgument("envelopes", "envelopes are for secret conversations only", reason="NOT_SECRET")
    if len(given) != 1:
        raise InvalidArgument(given[1] if given else "text",
                              "a message holds exactly one of text, media_id, post_id, story_id",
                              reason="INVALID_MESSAGE_CONTENT")
    if given == ["text"]:
        if not draft.text.strip() or len(draft.text) > MAX_TEXT:
            raise InvalidArgument("text", f"text must be 1-{MAX_TEXT} characters", reason="INVALID_TEXT")
        return "TEXT"
    return {"media_id": "MEDIA", "post_id": "POST", "story_id": "STORY"}[given[0]]


@dataclass
class MessagingService:
    store: Store
    ids: IdAllocator
    relations: Relations
    media: MediaItems
    posts: SharedPosts
    stories: SharedStories
    devices: Devices
    ephemeral: Ephemeral

    # --- conversations ----------------------------------------------------------

    async def create(self, caller: int, member_ids: list[int], title: str, secret: bool) -> ConversationView:
        others = [u for u in dict.fromkeys(member_ids) if u != caller]
        if not others:
            raise InvalidArgument("member_ids", "member_ids: name at least one other person", reason="NO_MEMBERS")
        if len(others) + 1 > MAX_GROUP:
            raise InvalidArgument("member_ids", f"a group has at most {MAX_GROUP} members", reason="TOO_MANY_MEMBERS")
        if secret and len(others) != 1:
            raise InvalidArgument("secret", "secret conversations are one-to-one", reason="SECRET_NEEDS_ONE_MEMBER")
        is_group = len(others) > 1
        title = check_title(title) if is_group else ""
        folders = await self._folders(caller, others)
        if not is_group:
            other = others[0]
            low, high = sorted((caller, other))
            fresh = Conversation(self.ids.new_id(shard_of(low)), False, secret, "", caller, 0)
            conversation_id, made = await self.store.create_direct(fresh, low, high, caller, folders)
            if not made:
                me = await self.store.member(conversation_id, caller)
                if me is not None and me.state != "ACTIVE":
                    # Starting the pair's conversation again brings back one I declined.
                    await self.store.rejoin(conversation_id, caller, conversation_id)
            return await self.get(caller, conversation_id)
        conversation = Conversation(self.ids.new_id(shard_of(caller)), True, False, title, caller, 0)
        await self.store.create_group(conversation, [caller, *others], folders)
        return await self.get(caller, conversation.id)

    async def _folders(self, inviter: int, user_ids: list[int]) -> dict[int, str]:
        """Where the conversation goes for each person `inviter` brings in: INBOX for those who follow the
        inviter, else REQUESTS. NOT_FOUND for someone who does not exist or is blocked either way."""
        mine = await self.relations.relations(inviter, user_ids)
        for user_id in user_ids:
            relation = mine.get(user_id)
            if relation is None or relation.blocked:
                raise NotFound(f"user {user_id} not found", reason="USER_NOT_FOUND")
        theirs = await asyncio.gather(*(self.relations.relations(u, [inviter]) for u in user_ids))
        return {u: "INBOX" if (r.get(inviter) and r[inviter].follows) else "REQUESTS"
                for u, r in zip(user_ids, theirs, strict=True)}

    async def _membership(self, caller: int, conversation_id: int) -> tuple[Conversation, list[Member]]:
        """The conversation and its members, when the caller is an active member and no block hides a
        one-to-one; NOT_FOUND otherwise."""
        conversation = await self.store.conversation(conversation_id) if self.store.holds(conversation_id) else None
        if conversation is None:
            raise not_found(conversation_id)
        members = (await self.store.members([conversation_id]))[conversation_id]
        if not any(m.user_id == caller and m.state == "ACTIVE" for m in members):
            raise not_found(conversation_id)
        if not conversation.is_group and await self._blocked_pairs(caller, [conversation], {conversation_id: members}):
            raise not_found(conversation_id)
        return conversation, members

    async def _blocked_pairs(self, caller: int, conversations: list[Conversation],
                             members: dict[int, list[Member]]) -> set[int]:
        """The one-to-one conversations (ids) whose other member and the caller are blocked either way."""
        other = {c.id: next((m.user_id for m in members[c.id] if m.user_id != caller), 0)
                 for c in conversations if not c.is_group}
        if not other:
            return set()
        relations = await self.relations.relations(caller, [u for u in other.values() if u])
        return {cid for cid, u in other.items() if u not in relations or relations[u].blocked}

    async def get(self, caller: int, conversation_id: int) -> ConversationView:
        await self._membership(caller, conversation_id)
        views = await self._views(caller, [conversation_id])
        if not views:
            raise not_found(conversation_id)
        return views[0]

    async def list(self, caller: int, folder: str, size: int, token: str) -> tuple[list[ConversationView], str]:
        folder = check_folder(folder)
        limit = page_size(size, default=DEFAULT_CONVERSATIONS, maximum=MAX_CONVERSATIONS)
        scope = f"conversations:{caller}:{folder}"
        cursor = decode_token(token, scope, a=positive_int64, c=positive_int64)
        ids = await self.store.listed(caller, folder, limit + 1, (cursor["a"], cursor["c"]) if cursor else None)
        more, ids = len(ids) > limit, ids[:limit]
        following = ""
        if more:
            last = (await self.store.user_views(caller, [ids[-1]]))[ids[-1]]
            following = encode_token(scope, a=last.last_activity_id, c=ids[-1])
        return await self._views(caller, ids, hide_blocked=True), following

    async def _views(self, caller: int, ids: list[int], hide_blocked: bool = False) -> list[ConversationView]:
        if not ids:
            return []
        conversations, members, views, unread = await asyncio.gather(
            self.store.conversations(ids), self.store.members(ids), self.store.user_views(caller, ids),
            self.store.unread_counts(caller, ids))
        if hide_blocked:
            blocked = await self._blocked_pairs(caller, [c for c in conversations.values()], members)
            ids = [i for i in ids if i not in blocked]
        last_ids = [c.last_message_id for c in conversations.values() if c.last_message_id]
        last = await self.store.messages_by_id(last_ids) if last_ids else {}
        found = []
        for cid in ids:
            conversation, view = conversations.get(cid), views.get(cid)
            if conversation is None or view is None:
                continue
            mine = next((m for m in members[cid] if m.user_id == caller), None)
            newest = last.get(conversation.last_message_id)
            if newest is not None and mine is not None and newest.id <= mine.history_from:
                newest = None
            found.append(ConversationView(conversation, members[cid], view, unread.get(cid, 0), newest))
        await self._hide_request_reads(found)
        return found

    async def _hide_request_reads(self, views: list[ConversationView]) -> None:
        for v in views:
            others = [m.user_id for m in v.members if m.state == "ACTIVE" and m.last_read_id]
            if others:
                theirs = await self.store.user_views_of(v.conversation.id, others)
                v.hidden_reads = {u for u, view in theirs.items() if view.folder == "REQUESTS"}

    async def update(self, caller: int, conversation_id: int, changes: dict[str, object]) -> ConversationView:
        unknown = [name for name in changes if name not in UPDATABLE]
        if unknown:
            raise InvalidArgument("update_mask", f"update_mask: {unknown[0]!r} cannot be changed "
                                                 f"(one of {', '.join(UPDATABLE)})")
        conversation, _ = await self._membership(caller, conversation_id)
        if "title" in changes:
            if not conversation.is_group:
                raise InvalidArgument("title", "one-to-one conversations have no title", reason="NOT_A_GROUP")
            await self.store.set_title(conversation_id, check_title(str(changes["title"])))
        if "muted" in changes:
            await self.store.update_view(caller, conversation_id, muted=bool(changes["muted"]))
        return await self.get(caller, conversation_id)

    async def accept(self, caller: int, conversation_id: int) -> ConversationView:
        await self._membership(caller, conversation_id)
        await self.store.update_view(caller, conversation_id, folder="INBOX")
        return await self.get(caller, conversation_id)

    async def decline(self, caller: int, conversation_id: int) -> None:
        await self._membership(caller, conversation_id)
        view = (await self.store.user_views(caller, [conversation_id])).get(conversation_id)
        if view is None or view.folder != "REQUESTS":
            raise FailedPrecondition("only a message request can be declined; this conversation is in your INBOX",
                                     reason="NOT_A_REQUEST")
        await self.store.end_membership(conversation_id, caller, "DECLINED")

    async def leave(self, caller: int, conversation_id: int) -> None:
        conversation, _ = await self._membership(caller, conversation_id)
        if not conversation.is_group:
            raise FailedPrecondition("a one-to-one conversation cannot be left", reason="NOT_A_GROUP")
        await self.store.end_membership(conversation_id, caller, "LEFT")

    async def add_members(self, caller: int, conversation_id: int, user_ids: list[int]) -> ConversationView:
        conversation, members = await self._membership(caller, conversation_id)
        self._check_creator(caller, conversation)
        present = {m.user_id for m in members if m.state in ("ACTIVE", "DECLINED")}
        new = [u for u in dict.fromkeys(user_ids) if u not in present]
        if not user_ids:
            raise InvalidArgument("user_ids", "user_ids: name at least one person", reason="NO_MEMBERS")
        if len(present) + len(new) > MAX_GROUP:
            raise InvalidArgument("user_ids", f"a group has at most {MAX_GROUP} members", reason="TOO_MANY_MEMBERS")
        if new:
            folders = await self._folders(caller, new)
            await self.store.add_members(conversation_id, folders, conversation.last_message_id)
        return await self.get(caller, conversation_id)

    async def remove_member(self, caller: int, conversation_id: int, user_id: int) -> None:
        conversation, members = await self._membership(caller, conversation_id)
        self._check_creator(caller, conversation)
        if user_id == caller:
            raise InvalidArgument("user_id", "the creator leaves with :leave", reason="CANNOT_REMOVE_SELF")
        if not any(m.user_id == user_id and m.state in ("ACTIVE", "DECLINED") for m in members):
            raise NotFound(f"user {user_id} is not a member", reason="MEMBER_NOT_FOUND")
        await self.store.end_membership(conversation_id, user_id, "REMOVED")

    @staticmethod
    def _check_creator(caller: int, conversation: Conversation) -> None:
        if not conversation.is_group:
            raise FailedPrecondition("one-to-one conversations have no members to add or remove",
                                     reason="NOT_A_GROUP")
        if conversation.creator_id != caller:
            raise PermissionDenied("only the group's creator adds and removes members", reason="NOT_CREATOR")

    # --- messages -----------------------------------------------------------------

    async def send(self, caller: int, conversation_id: int, draft: Draft, story_checked: bool = False
                   ) -> MessageView:
        """Adds the draft to the conversation. `story_checked`: the stories service already let the
        caller answer the story (a reply arriving as an event, perhaps after the story expired)."""
        conversation, members = await self._membership(caller, conversation_id)
        kind = message_kind(draft, conversation.secret)
        existing = await self.store.message_by_client_id(conversation_id, caller, draft.client_message_id)
        if existing is not None:
            return (await self._message_views(caller, [existing]))[0]
        active = [m.user_id for m in members if m.state == "ACTIVE"]
        media = None
        if kind == "MEDIA":
            media = (await self.media.get([draft.media_id])).get(draft.media_id)
            if media is None or media.owner_id != caller:
                raise InvalidArgument("media_id", f"media {draft.media_id} is not one of yours",
                                      reason="MEDIA_NOT_FOUND")
        if kind == "POST" and draft.post_id not in await self.posts.sees(caller, [draft.post_id]):
            raise NotFound(f"post {draft.post_id} not found", reason="POST_NOT_FOUND")
        if kind == "STORY" and not story_checked and draft.story_id not in await self.stories.visible(
                caller, [draft.story_id]):
            raise NotFound(f"story {draft.story_id} not found", reason="STORY_NOT_FOUND")
        envelopes = await self._envelopes(caller, active, draft) if kind == "ENCRYPTED" else []
        new = NewMessage(conversation_id, self.ids.new_id(shard_of(conversation_id)), caller,
                         draft.client_message_id, kind, draft.text if kind in ("TEXT", "STORY") else "", draft.media_id,
                         draft.post_id, draft.story_id, envelopes)
        stored = Message(conversation_id, new.id, caller, new.client_message_id, kind, new.text, new.media_id,
                         new.post_id, new.story_id, False, datetime.now().astimezone())
        if kind == "MEDIA":
            await self.media.pin(caller, new.id, draft.media_id)
        views = await self.store.user_views_of(conversation_id, active)
        event = MessagingEvent(conversation_id, caller, active, "", message_id=new.id,
                               notify_user_ids=[u for u in active if u != caller and u in views
                                                and views[u].folder == "INBOX" and not views[u].muted],
                               request_user_ids=[u for u in active if u != caller and u in views
                                                 and views[u].folder == "REQUESTS"])
        await self._message_json(event, stored, active, media, envelopes)
        message, created = await self.store.add_message(new, active, event)
        if created and kind == "TEXT":  # new: no reactions yet, nothing shared to look up
            return MessageView(message, [], [], None, None, False, None, False)
        return (await self._message_views(caller, [message]))[0]

    async def _message_json(self, event: MessagingEvent, m: Message, recipients: list[int], media: object | None,
                            envelopes: list[tuple[int, int, bytes]]) -> None:
        """What each recipient's stream shows of a new message: a shared post or story they may not
        see is unavailable; an encrypted one carries only their own devices' envelopes."""
        def shown(user_id: int, visible: bool) -> str:
            mine = [e for e in envelopes if e[1] == user_id]
            return render.message_json(MessageView(m, [], mine, media, None, visible and m.kind == "POST",
                                                   None, visible and m.kind == "STORY"))

        if m.kind == "ENCRYPTED":
            event.data_json = shown(0, False)
            event.data_json_for = {u: shown(u, False) for u in recipients}
        elif m.kind in ("POST", "STORY"):
            sees, shared_id = (self.posts.sees, m.post_id) if m.kind == "POST" else (self.stories.visible, m.story_id)
            seeing = await asyncio.gather(*(sees(u, [shared_id]) for u in recipients))
            event.data_json = shown(0, False)
            event.data_json_for = {u: shown(u, True) for u, s in zip(recipients, seeing, strict=True) if shared_id in s}
        else:
            event.data_json = shown(0, False)

    async def _envelopes(self, caller: int, active: list[int], draft: Draft) -> list[tuple[int, int, bytes]]:
        """The draft's envelopes with each device's user: one for every device of every active member,
        the sending device aside; INVALID_ARGUMENT naming `envelopes` otherwise."""
        devices = await self.devices.device_ids(active)
        owner = {d: u for u, ds in devices.items() for d in ds}
        if draft.sender_device_id and owner.get(draft.sender_device_id) != caller:
            raise InvalidArgument("sender_device_id", "sender_device_id is not one of your devices",
                                  reason="UNKNOWN_DEVICE")
        given: dict[int, bytes] = {}
        for e in draft.envelopes:
            if e.device_id not in owner:
                raise InvalidArgument("envelopes", f"envelopes: device {e.device_id} is no member's device",
                                      reason="UNKNOWN_DEVICE")
            if not 1 <= len(e.ciphertext) <= MAX_CIPHERTEXT:
                raise InvalidArgument("envelopes", f"envelopes: a ciphertext is 1-{MAX_CIPHERTEXT} bytes",
                                      reason="INVALID_CIPHERTEXT")
            if e.device_id in given:
                raise InvalidArgument("envelopes", f"envelopes: device {e.device_id} twice", reason="DUPLICATE_DEVICE")
            given[e.device_id] = e.ciphertext
        missing = sorted(set(owner) - set(given) - {draft.sender_device_id})
        if missing:
            raise InvalidArgument("envelopes", f"envelopes: none for device(s) {missing}: encrypt for every device "
                                               "of the conversation (GET /v1/users/{user_id}/devices)",
                                  reason="MISSING_ENVELOPES")
        return [(d, owner[d], c) for d, c in given.items()]

    async def messages(self, caller: int, conversation_id: int, size: int, token: str
                       ) -> tuple[list[MessageView], str]:
        # Bad input is 400 whatever the conversation (a token names its conversation: it tells nothing).
        limit = page_size(size, default=DEFAULT_MESSAGES, maximum=MAX_MESSAGES)
        scope = f"messages:{conversation_id}"
        cursor = decode_token(token, scope, b=positive_int64)
        _, members = await self._membership(caller, conversation_id)
        mine = next(m for m in members if m.user_id == caller)
        rows = await self.store.page(conversation_id, mine.history_from, cursor["b"] if cursor else None, limit + 1)
        more, rows = len(rows) > limit, rows[:limit]
        token = encode_token(scope, b=rows[-1].id) if more else ""
        shown = [m for m in rows if not m.hidden or m.sender_id == caller]
        return await self._message_views(caller, shown), token

    async def _message_views(self, caller: int, rows: list[Message]) -> list[MessageView]:
        ids = [m.id for m in rows]
        media_ids = [m.media_id for m in rows if m.media_id]
        post_ids = [m.post_id for m in rows if m.post_id]
        story_ids = [m.story_id for m in rows if m.story_id]
        reactions, envelopes, media, posts, stories = await asyncio.gather(
            self.store.reactions(ids), self.store.envelopes(ids, caller),
            self.media.get(media_ids) if media_ids else _empty(),
            self.posts.visible(caller, post_ids) if post_ids else _empty(),
            self.stories.visible(caller, story_ids) if story_ids else _empty())
        return [MessageView(m, reactions.get(m.id, []), envelopes.get(m.id, []), media.get(m.media_id),
                            posts.get(m.post_id), m.post_id in posts, stories.get(m.story_id), m.story_id in stories)
                for m in rows]

    async def _own_message(self, caller: int, message_id: int) -> tuple[Message, list[Member]]:
        """A message of a conversation the caller is active in; NOT_FOUND otherwise."""
        message = await self.store.message(message_id) if self.store.holds(message_id) else None
        if message is None:
            raise message_not_found(message_id)
        try:
            _, members = await self._membership(caller, message.conversation_id)
        except NotFound:
            raise message_not_found(message_id) from None
        mine = next(m for m in members if m.user_id == caller)
        if message.id <= mine.history_from:
            raise message_not_found(message_id)
        return message, members

    async def contacts(self, user_id: int, among: list[int] | None) -> set[int]:
        """For realtime's presence: who shares an accepted conversation with the user (Store.contacts)."""
        return await self.store.contacts(user_id, among, CONTACT_CONVERSATIONS) if user_id > 0 else set()

    async def sender_seen_by(self, viewer_id: int, message_id: int) -> int:
        """For moderation: the sender of a message the viewer can see in a conversation of theirs."""
        message, _ = await self._own_message(viewer_id, message_id)
        if message.unsent or (message.hidden and message.sender_id != viewer_id):
            raise message_not_found(message_id)
        return message.sender_id

    async def unsend(self, caller: int, message_id: int) -> None:
        message, members = await self._own_message(caller, message_id)
        if message.sender_id != caller:
            raise PermissionDenied("only the sender can unsend a message", reason="NOT_YOUR_MESSAGE")
        if message.unsent:
            return
        active = [m.user_id for m in members if m.state == "ACTIVE"]
        unsent = await self.store.unsend(message, MessagingEvent(
            message.conversation_id, caller, active, render.to_json({"message_id": str(message.id)}),
            message_id=message.id))
        if unsent and message.media_id:
            await self.media.unpin(caller, message.id, message.media_id)

    async def react(self, caller: int, message_id: int, emoji: str | None) -> MessageView:
        message, members = await self._own_message(caller, message_id)
        if message.unsent:
            raise message_not_found(message_id)
        if emoji is not None:
            emoji = check_emoji(emoji)
        else:
            current = (await self.store.reactions([message_id])).get(message_id, [])
            given = dict(current).get(caller)
            if given is None:
                return (await self._message_views(caller, [message]))[0]
        active = [m.user_id for m in members if m.state == "ACTIVE"]

        def event_of(reactions: list[tuple[int, str]]) -> MessagingEvent:
            return MessagingEvent(message.conversation_id, caller, active,
                                  render.reactions_json(message.id, reactions), message_id=message.id)

        await self.store.set_reaction(message, caller, emoji, event_of)
        return (await self._message_views(caller, [message]))[0]

    async def mark_read(self, caller: int, conversation_id: int, message_id: int) -> None:
        _, members = await self._membership(caller, conversation_id)
        if not message_id:
            raise InvalidArgument("message_id", "message_id: name the newest message read", reason="INVALID_ID")
        message = await self.store.message(message_id) if self.store.holds(message_id) else None
        if message is None or message.conversation_id != conversation_id:
            raise message_not_found(message_id)
        view = (await self.store.user_views(caller, [conversation_id])).get(conversation_id)
        event = None
        if view is not None and view.folder == "INBOX":
            active = [m.user_id for m in members if m.state == "ACTIVE"]
            event = MessagingEvent(conversation_id, caller, active,
                                   render.to_json({"user_id": str(caller), "message_id": str(message_id)}),
                                   message_id=message_id)
        await self.store.mark_read(conversation_id, caller, message_id, event)

    async def typing(self, caller: int, conversation_id: int) -> None:
        _, members = await self._membership(caller, conversation_id)
        view = (await self.store.user_views(caller, [conversation_id])).get(conversation_id)
        if view is None or view.folder != "INBOX":
            return  # a request's recipient does not show typing until they accept
        others = [m.user_id for m in members if m.state == "ACTIVE" and m.user_id != caller]
        if others:
            await self.ephemeral.publish(TYPING, MessagingEvent(
                conversation_id, caller, others, render.to_json({"user_id": str(caller)})))


async def _empty() -> dict:
    return {}

