"""Cleaning up after a deleted post, afterwards and idempotently.

DeletePost hides the post at once and fixes the author's post count in the
same transaction; the author's timeline loses it before the call returns,
and the fan-out worker takes it out of feeds. Everything else hanging on the
post goes here, in the consumer group "post-cleanup" of the posts topic:

  1. engagement forgets its likes, comments, saves and counts (PurgePost);
  2. media forgets that the post used its media, deletes those no other post
     uses, then the blobs that no media names any more (ReleaseMedia);
  3. its caption, tags, mentions and location are scrubbed and `cleaned_at`
     records that all of it finished.

Each post.deleted event is handled once it is `delay_s` old (a few seconds:
longer than any request's deadline, so a like or comment that passed the
visibility check just before the delete has landed, and goes too). Every
step is idempotent, so a retried event repeats them harmlessly, and a sweep
every `sweep_s` finishes posts deleted longer ago whose cleanup never ran
(their event was dead-lettered, or Redis lost the stream).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from services.common.config import env_int
from services.common.events import Event, Postpone, published_at
from services.posts.service import PostsRepository

log = logging.getLogger(__name__)

GROUP = "post-cleanup"
TOPICS = ["posts"]
SWEEP_BATCH = 100


class Engagement(Protocol):
    async def purge_post(self, post_id: int) -> object: ...


class Media(Protocol):
    async def release_media(self, owner_id: int, media_ids: list[int], post_id: int) -> object: ...


def _brief(reply: object) -> str:
    """A reply message on one line, for the log."""
    return str(reply).replace("\n", " ").strip() or "nothing to do"


@dataclass(frozen=True)
class CleanupConfig:
    # How old a post.deleted event must be before it is handled.
    delay_s: float = 5.0
    # How often the sweep runs; it takes posts deleted over delay_s + sweep_s ago.
    sweep_s: float = 60.0

    @classmethod
    def from_env(cls) -> CleanupConfig:
        return cls(delay_s=env_int("PICTOR_CLEANUP_DELAY_MS", int(cls.delay_s * 1000)) / 1000,
                   sweep_s=env_int("PICTOR_CLEANUP_SWEEP_MS", int(cls.sweep_s * 1000)) / 1000)


@dataclass
class Cleanup:
    posts: PostsRepository
    engagement: Engagement
    media: Media
    config: CleanupConfig
    logical_shards: int
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    clock: Callable[[], float] = time.time

    async def handle(self, event: Event) -> None:
        """The consumer's handler: clean a deleted post once its event is old enough."""
        if event.type != "post.deleted":
            return
        wait = published_at(event) + self.config.delay_s - self.clock()
        if wait > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), wait)
            if self.stop.is_set():
                raise Postpone  # shutting down: the next worker (or the sweep) takes it
        await self.clean(int(event.data["post_id"]))

    async def clean(self, post_id: int) -> bool:
        """Steps 1-3 for a deleted post; False (doing nothing) unless it is deleted and not yet cleaned."""
        post = (await self.posts.get_many([post_id])).get(post_id)
        if post is None or not post.deleted or post.cleaned:
            return False
        purged = await self.engagement.purge_post(post_id)
        released = await self.media.release_media(post.author_id, post.media_ids, post_id)
        await self.posts.mark_cleaned(post_id)
        log.info("post %d cleaned up: %s; %s", post_id, _brief(purged), _brief(released))
        return True

    async def sweep(self) -> int:
        """Clean the posts deleted long enough ago whose cleanup has not finished; returns how many."""
        before = datetime.fromtimestamp(self.clock() - self.config.delay_s - self.config.sweep_s, UTC)
        cleaned = 0
        for shard in range(self.logical_shards):
            for post_id in await self.posts.uncleaned(shard, before, SWEEP_BATCH):
                if self.stop.is_set():
                    return cleaned
                try:
                    cleaned += await self.clean(post_id)
                except Exception:
                    log.exception("cleaning up post %d failed; the next sweep retries", post_id)
        if cleaned:
            log.warning("sweep cleaned %d deleted post(s) whose event never got here", cleaned)
        return cleaned

    async def run_sweeps(self) -> None:
        while not self.stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), self.config.sweep_s)
            if not self.stop.is_set():
                try:
                    await self.sweep()
                except Exception:
                    log.exception("sweep failed; retrying in %.0f s", self.config.sweep_s)
