"""The media collector: what nobody will use any more goes, on a schedule, never lazily on access.

Every PICTOR_MEDIA_COLLECT_INTERVAL_MS (default a minute), shard by shard:

  1. expired resumable uploads (PICTOR_MEDIA_UPLOAD_TTL) are forgotten and
     their partial files deleted;
  2. attachments posts never confirmed, older than PICTOR_MEDIA_ATTACHMENT_GRACE
     (an hour: far past any CreatePost's deadline), are settled: posts says
     which of their posts exist (PostsService/CheckPostsExist); those are
     confirmed for good, the others dropped (the post's creation failed after
     it attached its media);
  3. media in no post and older than PICTOR_MEDIA_UNUSED_TTL (24 h) are
     deleted, under the same row locks as ReleaseMedia (an attach running now
     keeps its media);
  4. the blobs no media names any more are deleted (services.media.service.
     collect_garbage, under the blob keys' advisory locks).

The collector is a worker process (WorkerSpec "collector"): it serves no RPC,
so its call to posts cannot close a loop with posts' call to AttachMedia.
Every step is idempotent; several collectors only share the work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from services.media.blobstore import BlobStore, PartFiles
from services.media.config import MediaConfig
from services.media.service import MediaRepository, collect_garbage

log = logging.getLogger(__name__)

BATCH = 200


class Posts(Protocol):
    async def existing_post_ids(self, post_ids: list[int]) -> set[int]:
        """Which of these posts exist (deleted ones included)."""


@dataclass
class Collected:
    uploads: int = 0
    attachments: int = 0
    media: int = 0
    blobs: int = 0

    def add(self, other: Collected) -> None:
        self.uploads += other.uploads
        self.attachments += other.attachments
        self.media += other.media
        self.blobs += other.blobs

    def __bool__(self) -> bool:
        return bool(self.uploads or self.attachments or self.media or self.blobs)


@dataclass
class Collector:
    repo: MediaRepository
    blobs: BlobStore
    parts: PartFiles
    posts: Posts
    config: MediaConfig
    logical_shards: int
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    clock: Callable[[], float] = time.time

    def _ago(self, seconds: float) -> datetime:
        return datetime.fromtimestamp(self.clock() - seconds, UTC)

    async def collect_shard(self, shard: int) -> Collected:
        """Steps 1-4 for one shard. A step that fails (posts away, say) is logged and the others still run."""
        done = Collected()
        # Each step called by name (the call graph, services.mesh.callgraph, follows calls by name).
        await self._step(shard, "expired uploads", self._expired_uploads(shard, done))
        await self._step(shard, "unconfirmed attachments", self._unconfirmed_attachments(shard, done))
        await self._step(shard, "unused media", self._unused_media(shard, done))
        await self._step(shard, "blobs", self._blobs(shard, done))
        return done

    @staticmethod
    async def _step(shard: int, what: str, step: Awaitable[None]) -> None:
        try:
            await step
        except Exception:
            log.exception("collecting shard %d: %s failed; the next round retries", shard, what)

    async def _expired_uploads(self, shard: int, done: Collected) -> None:
        while expired := await self.repo.delete_expired_uploads(shard, self._ago(0), BATCH):
            for upload_id in expired:
                await asyncio.to_thread(self.parts.delete, upload_id)
            done.uploads += len(expired)
            if len(expired) < BATCH:
                return

    async def _unconfirmed_attachments(self, shard: int, done: Collected) -> None:
        while post_ids := await self.repo.unconfirmed_posts(shard, self._ago(self.config.attachment_grace_s), BATCH):
            existing = await self.posts.existing_post_ids(post_ids)
            done.attachments += await self.repo.settle_attachments(
                shard, [p for p in post_ids if p in existing], [p for p in post_ids if p not in existing])
            if len(post_ids) < BATCH:
                return

    async def _unused_media(self, shard: int, done: Collected) -> None:
        while unused := await self.repo.collect_unused(shard, self._ago(self.config.unused_media_ttl_s), BATCH):
            done.media += len(unused)
            if len(unused) < BATCH:
                return

    async def _blobs(self, shard: int, done: Collected) -> None:
        done.blobs += await collect_garbage(self.repo, self.blobs, shard)

    async def collect(self) -> Collected:
        """One round over every shard."""
        done = Collected()
        for shard in range(self.logical_shards):
            if self.stop.is_set():
                break
            done.add(await self.collect_shard(shard))
        if done:
            log.info("collected %d expired upload(s), %d attachment(s) of posts that never appeared, "
                     "%d media in no post, %d blob(s)", done.uploads, done.attachments, done.media, done.blobs)
        return done

    async def run(self) -> None:
        while not self.stop.is_set():
            await self.collect()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), self.config.collect_interval_s)
