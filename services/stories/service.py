"""Stories' rules: who may post, see, view, react to and keep a story; the tray. No gRPC here.

A story is active from created_at until expires_at (created_at +
PICTOR_STORY_TTL): only then is it in the tray, in its author's stories and
viewable. Afterwards it stays in its author's archive and in highlights. A
deleted story is gone from everything at once.

Visibility is the posts' (the graph's `can_view`: public to anyone signed in,
private to approved followers, never across a block), plus the audience: a
CLOSE_FRIENDS story only for its author's close friends. What the caller may
not see answers NOT_FOUND, like what does not exist.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from services.common.config import env_float, env_int
from services.common.errors import InvalidArgument, NotFound, PermissionDenied, ResourceExhausted
from services.common.ids import IdAllocator, shard_of
from services.common.pagination import decode_token, encode_token, iso_time, page_size, positive_int64

TOPIC = "stories"
AUDIENCES = ("EVERYONE", "CLOSE_FRIENDS")
DEFAULT_VIEWERS_PAGE, MAX_VIEWERS_PAGE = 50, 200
DEFAULT_ARCHIVE_PAGE, MAX_ARCHIVE_PAGE = 20, 100
DEFAULT_FRIENDS_PAGE, MAX_FRIENDS_PAGE = 50, 200
MAX_TITLE = 50
MAX_HIGHLIGHT_STORIES = 100
MAX_REPLY = 1000
MAX_BATCH = 500  # story ids per BatchGetStories (the mesh clients ask in batches of 500)
MAX_EMOJI_CODEPOINTS = 8
# Milliseconds of the id layout's epoch (services.common.ids): an id carries its creation time.
ID_EPOCH_MS = 1_767_225_600_000


def id_millis(any_id: int) -> int:
    """When an id was made (its top 41 bits), in milliseconds since 1970."""
    return (any_id >> 23) + ID_EPOCH_MS


def id_time(any_id: int) -> datetime:
    return datetime.fromtimestamp(id_millis(any_id) / 1000, UTC)


@dataclass(frozen=True)
class StoriesConfig:
    ttl_s: int = 86_400
    max_active: int = 100
    # A view's reads and writes go in batches (services.common.batching); under load each batch
    # waits this long for more.
    batch_linger_s: float = 0.002

    @classmethod
    def from_env(cls) -> StoriesConfig:
        ttl = env_int("PICTOR_STORY_TTL", cls.ttl_s)
        if ttl <= 0:
            raise SystemExit("PICTOR_STORY_TTL must be a positive number of seconds")
        linger_ms = env_float("PICTOR_STORY_BATCH_LINGER_MS", cls.batch_linger_s * 1000)
        if not 0 <= linger_ms <= 100:
            raise SystemExit("PICTOR_STORY_BATCH_LINGER_MS must be 0-100 milliseconds")
        return cls(ttl_s=ttl, max_active=env_int("PICTOR_STORY_MAX_ACTIVE", cls.max_active),
                   batch_linger_s=linger_ms / 1000)


@dataclass(frozen=True)
class Story:
    id: int
    author_id: int
    media_id: int
    audience: str
    allow_replies: bool
    created_at: datetime
    expires_at: datetime
    view_count: int = 0
    deleted: bool = False
    seen_by_me: bool = False
    # Hidden by a moderator: its author alone still sees it (services.stories.moderation).
    hidden: bool = False

    @property
    def close_friends(self) -> bool:
        return self.audience == "CLOSE_FRIENDS"

    def active(self, now: datetime) -> bool:
        return not self.deleted and self.expires_at > now


@dataclass(frozen=True)
class Viewer:
    user_id: int
    viewed_at: datetime
    reaction: str


@dataclass(frozen=True)
class TrayEntry:
    user_id: int
    story_count: int
    latest_story_id: int
    has_unseen: bool

    @property
    def latest_at(self) -> datetime:
        return id_time(self.latest_story_id)


@dataclass(frozen=True)
class Highlight:
    id: int
    owner_id: int
    title: str
    cover_story_id: int
    created_at: datetime
    # The stories the caller may see, in the order added.
    stories: list[Story] = field(default_factory=list)

    @property
    def cover(self) -> Story | None:
        for story in self.stories:
            if story.id == self.cover_story_id:
                return story
        return self.stories[0] if self.stories else None


class StoryRepository(Protocol):
    # Insert the story unless its author has max_active active stories already (then False).
    async def insert(self, story: Story, max_active: int) -> bool: ...
    async def get(self, story_id: int) -> Story | None: ...
    async def active(self, author_id: int, now: datetime) -> list[Story]: ...
    async def active_count(self, author_id: int, now: datetime) -> int: ...
    async def seen(self, viewer_id: int, story_ids: list[int]) -> set[int]: ...
    # Marks it deleted, takes it out of every highlight and writes story.deleted; False when it was already.
    async def delete(self, story: Story) -> bool: ...
    async def react(self, story: Story, viewer_id: int, emoji: str) -> None: ...
    async def reply(self, story: Story, viewer_id: int, text: str) -> None: ...
    async def viewers(self, story_id: int, limit: int, after: tuple[str, int] | None) -> list[Viewer]: ...
    async def archive(self, author_id: int, now: datetime, limit: int,
                      after: tuple[str, int] | None) -> list[Story]: ...
    async def owned_stories(self, owner_id: int, story_ids: list[int]) -> set[int]: ...
    async def add_highlight(self, highlight: Highlight, story_ids: list[int]) -> None: ...
    async def highlights(self, owner_id: int) -> list[Highlight]: ...
    async def highlight(self, highlight_id: int) -> Highlight | None: ...
    async def update_highlight(self, highlight_id: int, title: str | None, cover_story_id: int,
                               add: list[int], remove: list[int]) -> None: ...
    async def delete_highlight(self, highlight_id: int) -> None: ...
    async def is_close_friend(self, owner_id: int, friend_id: int) -> bool: ...
    async def add_close_friend(self, owner_id: int, friend_id: int) -> None: ...
    async def remove_close_friend(self, owner_id: int, friend_id: int) -> None: ...
    async def close_friends(self, owner_id: int, limit: int, after: tuple[str, int] | None) -> list[tuple[int, str]]: ...
    async def mute(self, user_id: int, target_id: int) -> None: ...
    async def unmute(self, user_id: int, target_id: int) -> None: ...


class StoryIndex(Protocol):
    """Redis: the authors' active stories, close friends, mutes and seen markers (services.stories.index)."""

    async def add(self, story: Story) -> None: ...
    async def remove(self, story: Story) -> None: ...
    async def mark_seen(self, viewer_id: int, story: Story) -> None: ...
    async def set_close_friend(self, owner_id: int, friend_id: int, on: bool) -> None: ...
    async def set_muted(self, user_id: int, target_id: int, on: bool) -> None: ...
    async def tray(self, viewer_id: int, author_ids: list[int], now_ms: int) -> list[TrayEntry]: ...


class Views(Protocol):
    # Record the view durably (services.stories.views); True when it is new.
    async def record(self, story: Story, viewer_id: int) -> bool: ...


class Relations(Protocol):
    """The graph's answers (services.stories.adapters)."""

    # None: no such user; else whether the viewer may see the owner's posts (and stories).
    async def can_view(self, viewer_id: int, owner_id: int) -> bool | None: ...
    async def blocked_or_unknown(self, viewer_id: int, owner_id: int) -> bool: ...
    async def following_ids(self, viewer_id: int) -> list[int]: ...


class MediaItems(Protocol):
    # Record that the story uses the media (MEDIA_NOT_FOUND when it is not the owner's, ready media).
    async def attach(self, owner_id: int, story_id: int, media_id: int) -> None: ...


def story_not_found(story_id: int) -> NotFound:
    return NotFound(f"story {story_id} not found", reason="STORY_NOT_FOUND")


def user_not_found(user_id: int) -> NotFound:
    return NotFound(f"user {user_id} not found", reason="USER_NOT_FOUND")


def check_emoji(emoji: str) -> str:
    emoji = emoji.strip()
    if not emoji or len(emoji) > MAX_EMOJI_CODEPOINTS or any(c.isspace() or c.isascii() for c in emoji):
        raise InvalidArgument("emoji", f"emoji must be one emoji (1-{MAX_EMOJI_CODEPOINTS} code points, no letters "
                                       "or spaces)", reason="INVALID_EMOJI")
    return emoji


def check_audience(audience: str) -> str:
    if audience in ("", "AUDIENCE_UNSPECIFIED"):
        return "EVERYONE"
    if audience not in AUDIENCES:
        raise InvalidArgument("audience", f"audience must be one of {', '.join(AUDIENCES)}",
                              reason="INVALID_AUDIENCE")
    return audience


@dataclass
class StoriesService:
    repo: StoryRepository
    index: StoryIndex
    views: Views
    relations: Relations
    media: MediaItems
    ids: IdAllocator
    config: StoriesConfig = field(default_factory=StoriesConfig)
    clock: Callable[[], float] = time.time

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    # --- stories -------------------------------------------------------------------

    async def create(self, author_id: int, media_id: int, audience: str, allow_replies: bool) -> Story:
        if media_id <= 0:
            raise InvalidArgument("media_id", "media_id must be the id of one of your media", reason="INVALID_ID")
        audience = check_audience(audience)
        now = self.now()
        if await self.repo.active_count(author_id, now) >= self.config.max_active:
            raise self._too_many()
        story = Story(id=self.ids.new_id(shard_of(author_id)), author_id=author_id, media_id=media_id,
                      audience=audience, allow_replies=allow_replies, created_at=now,
                      expires_at=now + timedelta(seconds=self.config.ttl_s))
        # Attached first (confirmed: media never asks posts about it), so no collection can take the
        # media of a story that exists; a crash before the insert leaves the media pinned, not a story broken.
        await self.media.attach(author_id, story.id, media_id)
        if not await self.repo.insert(story, self.config.max_active):
            raise self._too_many()
        await self.index.add(story)
        return story

    def _too_many(self) -> ResourceExhausted:
        return ResourceExhausted(f"at most {self.config.max_active} active stories per user",
                                 reason="TOO_MANY_STORIES")

    async def _may_see_author(self, viewer_id: int, author_id: int) -> bool:
        return viewer_id == author_id or bool(await self.relations.can_view(viewer_id, author_id))

    async def _may_see(self, viewer_id: int, story: Story) -> bool:
        if viewer_id == story.author_id:
            return True
        if story.hidden:
            return False
        if story.close_friends and not await self.repo.is_close_friend(story.author_id, viewer_id):
            return False
        return await self._may_see_author(viewer_id, story.author_id)

    async def _active_story(self, viewer_id: int, story_id: int) -> Story:
        """The active story, if the viewer may see it; NotFound otherwise."""
        story = await self.repo.get(story_id)
        if story is None or not story.active(self.now()) or not await self._may_see(viewer_id, story):
            raise story_not_found(story_id)
        return story

    async def visible(self, viewer_id: int, story_ids: list[int]) -> list[Story]:
        """Those of the stories the viewer may see now, in the order asked."""
        if len(story_ids) > MAX_BATCH:
            raise InvalidArgument("story_ids", f"at most {MAX_BATCH} story_ids", reason="TOO_MANY_IDS")
        async def seen_or_none(story_id: int) -> Story | None:
            try:
                return await self._active_story(viewer_id, story_id)
            except NotFound:
                return None

        found = await asyncio.gather(*(seen_or_none(i) for i in dict.fromkeys(story_ids)))
        return [s for s in found if s is not None]

    async def user_stories(self, viewer_id: int, user_id: int) -> list[Story]:
        """The user's active stories the viewer may see, oldest first, with seen_by_me."""
        if not await self._may_see_author(viewer_id, user_id):
            raise user_not_found(user_id)
        stories = await self.repo.active(user_id, self.now())
        if viewer_id != user_id:
            stories = [s for s in stories if not s.hidden]
        if viewer_id != user_id and any(s.close_friends for s in stories) \
                and not await self.repo.is_close_friend(user_id, viewer_id):
            stories = [s for s in stories if not s.close_friends]
        seen = await self.repo.seen(viewer_id, [s.id for s in stories]) if viewer_id != user_id else set()
        return [replace(s, seen_by_me=s.id in seen) for s in stories]

    async def author_seen_by(self, viewer_id: int, story_id: int) -> int:
        """For moderation: the author of the active story, when the viewer may see it."""
        return (await self._active_story(viewer_id, story_id)).author_id

    async def delete(self, author_id: int, story_id: int) -> None:
        story = await self.repo.get(story_id)
        if story is None or story.author_id != author_id:
            raise story_not_found(story_id)
        await self.repo.delete(story)
        await self.index.remove(story)

    # --- views, reactions, replies -----------------------------------------------

    async def view(self, viewer_id: int, story_id: int) -> None:
        story = await self._active_story(viewer_id, story_id)
        if viewer_id == story.author_id:
            return  # an author's own views do not count
        await self.views.record(story, viewer_id)
        await self.index.mark_seen(viewer_id, story)

    async def viewers(self, caller_id: int, story_id: int, size: int, token: str) -> tuple[Story, list[Viewer], str]:
        """Who viewed the caller's story (active or archived), newest first; the story (its view_count)."""
        limit = page_size(size, default=DEFAULT_VIEWERS_PAGE, maximum=MAX_VIEWERS_PAGE)
        scope = f"viewers:{story_id}"
        cursor = decode_token(token, scope, t=iso_time, id=positive_int64)
        story = await self.repo.get(story_id)
        if story is None or story.deleted or story.author_id != caller_id:
            raise story_not_found(story_id)
        page = await self.repo.viewers(story_id, limit + 1, (cursor["t"], cursor["id"]) if cursor else None)
        more, page = len(page) > limit, page[:limit]
        following = encode_token(scope, t=page[-1].viewed_at.isoformat(), id=page[-1].user_id) if more else ""
        return story, page, following

    async def _answerable(self, viewer_id: int, story_id: int) -> Story:
        story = await self._active_story(viewer_id, story_id)
        if viewer_id == story.author_id:
            raise InvalidArgument("story_id", "that is your own story", reason="OWN_STORY")
        if not story.allow_replies:
            raise PermissionDenied("the author turned off reactions and replies for this story",
                                   reason="STORY_REPLIES_OFF")
        return story

    async def react(self, viewer_id: int, story_id: int, emoji: str) -> None:
        emoji = check_emoji(emoji)
        story = await self._answerable(viewer_id, story_id)
        await self.repo.react(story, viewer_id, emoji)
        await self.index.mark_seen(viewer_id, story)

    async def reply(self, viewer_id: int, story_id: int, text: str) -> None:
        text = text.strip()
        if not 1 <= len(text) <= MAX_REPLY:
            raise InvalidArgument("text", f"text must be 1-{MAX_REPLY} characters", reason="INVALID_TEXT")
        story = await self._answerable(viewer_id, story_id)
        await self.repo.reply(story, viewer_id, text)

    # --- the tray and the archive --------------------------------------------------

    async def tray(self, viewer_id: int) -> list[TrayEntry]:
        """My entry first, then followed accounts with active stories I may see: unseen first, newest first.

        Costs one graph call (whom I follow) and one Redis script over those
        accounts, whatever the number of stories: blocks end follows, and a
        follower of a private account is an approved one, so following is
        seeing; the script leaves out the accounts whose stories I muted and the
        CLOSE_FRIENDS stories of those whose list I am not on.
        """
        following = await self.relations.following_ids(viewer_id)
        now_ms = int(self.clock() * 1000)
        entries = await self.index.tray(viewer_id, [viewer_id, *following], now_ms)
        mine = [e for e in entries if e.user_id == viewer_id]
        others = sorted((e for e in entries if e.user_id != viewer_id),
                        key=lambda e: (not e.has_unseen, -e.latest_story_id))
        return mine + others

    async def archive(self, author_id: int, size: int, token: str) -> tuple[list[Story], str]:
        limit = page_size(size, default=DEFAULT_ARCHIVE_PAGE, maximum=MAX_ARCHIVE_PAGE)
        scope = f"archive:{author_id}"
        cursor = decode_token(token, scope, t=iso_time, id=positive_int64)
        page = await self.repo.archive(author_id, self.now(), limit + 1, (cursor["t"], cursor["id"]) if cursor else None)
        more, page = len(page) > limit, page[:limit]
        following = encode_token(scope, t=page[-1].expires_at.isoformat(), id=page[-1].id) if more else ""
        return page, following

    # --- highlights ------------------------------------------------------------------

    async def _check_owned(self, owner_id: int, story_ids: list[int], field_name: str) -> list[int]:
        unique = list(dict.fromkeys(story_ids))
        if any(s <= 0 for s in unique):
            raise InvalidArgument(field_name, f"{field_name} must hold story ids", reason="INVALID_ID")
        missing = set(unique) - await self.repo.owned_stories(owner_id, unique) if unique else set()
        if missing:
            raise InvalidArgument(field_name, f"story {min(missing)} does not exist or is not yours",
                                  reason="STORY_NOT_FOUND")
        return unique

    @staticmethod
    def _check_title(title: str) -> str:
        title = title.strip()
        if not 1 <= len(title) <= MAX_TITLE:
            raise InvalidArgument("title", f"title must be 1-{MAX_TITLE} characters", reason="INVALID_TITLE")
        return title

    async def create_highlight(self, owner_id: int, title: str, story_ids: list[int], cover_story_id: int) -> Highlight:
        title = self._check_title(title)
        if not 1 <= len(set(story_ids)) <= MAX_HIGHLIGHT_STORIES:
            raise InvalidArgument("story_ids", f"a highlight holds 1-{MAX_HIGHLIGHT_STORIES} stories")
        unique = await self._check_owned(owner_id, story_ids, "story_ids")
        if cover_story_id and cover_story_id not in unique:
            raise InvalidArgument("cover_story_id", "cover_story_id must be one of story_ids")
        highlight = Highlight(id=self.ids.new_id(shard_of(owner_id)), owner_id=owner_id, title=title,
                              cover_story_id=cover_story_id or unique[0], created_at=self.now())
        await self.repo.add_highlight(highlight, unique)
        return await self.highlight(owner_id, highlight.id)

    async def _visible_stories(self, viewer_id: int, owner_id: int, stories: list[Story]) -> list[Story]:
        """Highlights never expire; deleted stories are gone (the repository leaves them out); a
        CLOSE_FRIENDS story stays for close friends only."""
        if viewer_id != owner_id and any(s.close_friends for s in stories) \
                and not await self.repo.is_close_friend(owner_id, viewer_id):
            return [s for s in stories if not s.close_friends]
        return stories

    async def highlights(self, viewer_id: int, user_id: int) -> list[Highlight]:
        if not await self._may_see_author(viewer_id, user_id):
            raise user_not_found(user_id)
        found = []
        for h in await self.repo.highlights(user_id):
            stories = await self._visible_stories(viewer_id, user_id, h.stories)
            if stories:
                found.append(replace(h, stories=stories))
        return found

    async def highlight(self, viewer_id: int, highlight_id: int) -> Highlight:
        h = await self.repo.highlight(highlight_id)
        if h is None or not await self._may_see_author(viewer_id, h.owner_id):
            raise NotFound(f"highlight {highlight_id} not found", reason="HIGHLIGHT_NOT_FOUND")
        stories = await self._visible_stories(viewer_id, h.owner_id, h.stories)
        if not stories and viewer_id != h.owner_id:
            raise NotFound(f"highlight {highlight_id} not found", reason="HIGHLIGHT_NOT_FOUND")
        return replace(h, stories=stories)

    async def _own_highlight(self, owner_id: int, highlight_id: int) -> Highlight | None:
        h = await self.repo.highlight(highlight_id)
        if h is not None and h.owner_id != owner_id:
            raise NotFound(f"highlight {highlight_id} not found", reason="HIGHLIGHT_NOT_FOUND")
        return h

    async def update_highlight(self, owner_id: int, highlight_id: int, title: str | None, add: list[int],
                               remove: list[int], cover_story_id: int) -> Highlight:
        h = await self._own_highlight(owner_id, highlight_id)
        if h is None:
            raise NotFound(f"highlight {highlight_id} not found", reason="HIGHLIGHT_NOT_FOUND")
        if title is not None:
            title = self._check_title(title)
        added = await self._check_owned(owner_id, add, "add_story_ids")
        kept = ({s.id for s in h.stories} | set(added)) - set(remove)
        if not kept:
            raise InvalidArgument("remove_story_ids", "a highlight keeps at least one story (delete it instead)")
        if len(kept) > MAX_HIGHLIGHT_STORIES:
            raise InvalidArgument("add_story_ids", f"a highlight holds at most {MAX_HIGHLIGHT_STORIES} stories")
        if cover_story_id and cover_story_id not in kept:
            raise InvalidArgument("cover_story_id", "cover_story_id must be a story of the highlight")
        await self.repo.update_highlight(highlight_id, title, cover_story_id, added, list(dict.fromkeys(remove)))
        return await self.highlight(owner_id, highlight_id)

    async def delete_highlight(self, owner_id: int, highlight_id: int) -> None:
        if await self._own_highlight(owner_id, highlight_id) is not None:
            await self.repo.delete_highlight(highlight_id)

    # --- close friends and story mutes -------------------------------------------

    async def _other_user(self, user_id: int, target_id: int) -> None:
        if target_id == user_id:
            raise InvalidArgument("user_id", "that is you")
        if await self.relations.blocked_or_unknown(user_id, target_id):
            raise user_not_found(target_id)

    async def add_close_friend(self, owner_id: int, friend_id: int) -> None:
        await self._other_user(owner_id, friend_id)
        await self.repo.add_close_friend(owner_id, friend_id)
        await self.index.set_close_friend(owner_id, friend_id, True)

    async def remove_close_friend(self, owner_id: int, friend_id: int) -> None:
        await self.repo.remove_close_friend(owner_id, friend_id)
        await self.index.set_close_friend(owner_id, friend_id, False)

    async def close_friends(self, owner_id: int, size: int, token: str) -> tuple[list[int], str]:
        limit = page_size(size, default=DEFAULT_FRIENDS_PAGE, maximum=MAX_FRIENDS_PAGE)
        scope = f"close_friends:{owner_id}"
        cursor = decode_token(token, scope, t=iso_time, id=positive_int64)
        rows = await self.repo.close_friends(owner_id, limit + 1, (cursor["t"], cursor["id"]) if cursor else None)
        more, rows = len(rows) > limit, rows[:limit]
        following = encode_token(scope, t=rows[-1][1], id=rows[-1][0]) if more else ""
        return [r[0] for r in rows], following

    async def mute(self, user_id: int, target_id: int) -> None:
        await self._other_user(user_id, target_id)
        await self.repo.mute(user_id, target_id)
        await self.index.set_muted(user_id, target_id, True)

    async def unmute(self, user_id: int, target_id: int) -> None:
        await self.repo.unmute(user_id, target_id)
        await self.index.set_muted(user_id, target_id, False)
