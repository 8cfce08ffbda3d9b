"""Cleaning up after a deleted story, as posts' cleanup does after a deleted post (consumer group
"story-cleanup" of the stories topic).

DeleteStory hides the story at once: in the same transaction it is marked
deleted and taken out of every highlight (so its views, replies and
highlights answer NOT_FOUND or leave it out from then on), and it leaves the
author's tray entry before the call returns. On its story.deleted event this
worker takes it out of the tray again (should Redis have failed the first
time) and has media forget that the story used its media, delete them when
nothing else uses them, then the blobs no media names (ReleaseMedia). Both
steps are idempotent, so a redelivered event repeats them harmlessly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as aioredis

from services.common.events import Event
from services.stories import keys

log = logging.getLogger(__name__)

GROUP = "story-cleanup"
TOPICS = ["stories"]


class Media(Protocol):
    async def release_media(self, owner_id: int, media_ids: list[int], post_id: int) -> object: ...


@dataclass
class StoryCleanup:
    redis: aioredis.Redis
    media: Media

    async def handle(self, event: Event) -> None:
        if event.type != "story.deleted":
            return
        d = event.data
        for close_friends in (False, True):
            await self.redis.zrem(keys.active_key(d["author_id"], close_friends), str(d["story_id"]))
        # The story's id stands in the attachment's post_id (AttachMedia, confirmed).
        released = await self.media.release_media(d["author_id"], [d["media_id"]], d["story_id"])
        log.info("story %d cleaned up: %s", d["story_id"], str(released).replace("\n", " ").strip() or "nothing to do")
