"""The video transcoder (WorkerSpec "video_transcoder"): PROCESSING videos to READY or FAILED.

Jobs are rows of `video_jobs`, written with the PROCESSING media row when an upload
completes (services.media.service), so an acknowledged upload always has one. A
transcoder takes a job under a lease (PICTOR_VIDEO_LEASE_MS) and pushes the lease
forward every third of it while the child works (services.media.videobox); a transcoder
that dies stops pushing, its child dies with it (PDEATHSIG), and when the lease runs out
the job is taken again, from the start, by whichever transcoder looks first. While it works,
the owner hears how far it is (`notify`: media.progress on their live stream, as it starts, then
at most every PROGRESS_EVERY_S and only when it moved). A job taken
PICTOR_VIDEO_MAX_ATTEMPTS times without an end FAILs (a file that kills its transcoder
every time must not hold one forever).

The end of a job is one transaction (PostgresMediaRepository.finish_video): the files
(written to the blob store first), the state, the job's deletion and media.processed in
the outbox; a transcoder that lost its lease meanwhile changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path

from redis.exceptions import RedisError

from services.common.server import wait_for_stop
from services.media import videobox
from services.media.blobstore import FileBlobStore
from services.media.config import MediaConfig
from services.media.repository import PostgresMediaRepository
from services.media.service import FAILED, MASTER_PLAYLIST, READY, MediaRecord, StoredVariant, file_sha256

log = logging.getLogger(__name__)
DUE_BATCH = 16
PROGRESS_EVERY_S = 1.0

# (media id, owner id, percent done): tells the owner how far their video is.
Notify = Callable[[int, int, int], Awaitable[object]]


def stored_files(out: Path, outcome: dict) -> list[tuple[StoredVariant, Path]]:
    """The child's files as variants of the media item (their blob keys hashed here) with their paths."""
    files: list[tuple[int, str, int, int, Path]] = [
        (i["size"], i["format"], i["width"], i["height"], out / i["file"]) for i in outcome["images"]]
    for r in outcome["renditions"]:
        for fmt in ("mp4", "m3u8", "m4s"):
            files.append((r["label"], fmt, r["width"], r["height"], out / f"{r['label']}.{fmt}"))
    files.append((0, "m3u8", outcome["width"], outcome["height"], out / MASTER_PLAYLIST))
    return [(StoredVariant(size, fmt, w, h, file_sha256(path), path.stat().st_size), path)
            for size, fmt, w, h, path in files]


class Transcoder:
    def __init__(self, repo: PostgresMediaRepository, blobs: FileBlobStore, config: MediaConfig,
                 stop: asyncio.Event, name: str | None = None, notify: Notify | None = None) -> None:
        self.repo = repo
        self.notify = notify
        self.blobs = blobs
        self.config = config
        self.stop = stop
        self.name = name or f"{os.uname().nodename}:{os.getpid()}"
        self.work_dir = config.upload_dir / "transcode"

    async def run(self) -> None:
        while not self.stop.is_set():
            if not await self.run_one():
                await wait_for_stop(self.stop, self.config.video_poll_s)

    async def run_one(self) -> bool:
        """Take and do one due job; False when there was none to take."""
        for media_id in await self.repo.due_video_jobs(DUE_BATCH):
            claimed = await self.repo.claim_video_job(media_id, self.name, self.config.video_lease_s)
            if claimed is not None:
                await self.process(media_id, *claimed)
                return True
        return False

    async def process(self, media_id: int, attempts: int, original_key: str, owner_id: int) -> None:
        config = self.config
        if attempts > config.video_max_attempts:
            await self.repo.finish_video(media_id, self.name, FAILED, f"VIDEO_UNDECODABLE: the transcoder stopped "
                                         f"{attempts - 1} times on this video")
            return
        out = self.work_dir / str(media_id)
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        progress = [0.0]
        lost = asyncio.Event()

        # Both helpers end with the job, so that the end of the job never waits on a helper that missed
        # its cancellation.
        async def heartbeat() -> None:
            while not job.done():
                await asyncio.sleep(config.video_lease_s / 3)
                if not await self.repo.extend_video_job(media_id, self.name, config.video_lease_s,
                                                        int(progress[0] * 100)):
                    lost.set()
                    return

        async def tell_owner() -> None:
            # At once (the owner hears the transcode started: a short video may be done within the
            # second), then whenever it moved, at most every PROGRESS_EVERY_S.
            told = -1
            while self.notify is not None and not job.done():
                percent = int(progress[0] * 100)
                if percent != told:
                    try:
                        await self.notify(media_id, owner_id, percent)
                        told = percent
                    except (RedisError, OSError) as error:  # a notice missed; the next one says more
                        log.warning("video %s: progress notice not sent (%s)", media_id, error)
                await asyncio.sleep(PROGRESS_EVERY_S)

        log.info("transcoding video %s (take %s)", media_id, attempts)
        job = asyncio.create_task(videobox.run_job(
            "transcode", {"src": str(self.blobs.path(original_key)), "out": str(out)}, config.video,
            config.video_timeout_s, config.video_memory_limit_bytes,
            lambda share: progress.__setitem__(0, share)))
        beating = asyncio.create_task(heartbeat())
        telling = asyncio.create_task(tell_owner())
        losing = asyncio.create_task(lost.wait())
        try:
            await asyncio.wait([job, losing], return_when=asyncio.FIRST_COMPLETED)
            if not job.done():  # another transcoder has the job now: ours is killed with the task
                job.cancel()
                log.warning("lost the lease on video %s; another transcoder has it", media_id)
                return
            outcome = job.result()
            if outcome.kind == "ok":
                await self._ready(media_id, out, outcome.data)
            else:
                rejected = outcome.rejection(config.video, config.video_memory_limit_bytes, config.video_timeout_s)
                await self.repo.finish_video(media_id, self.name, FAILED, f"{rejected.reason}: {rejected.message}")
                log.info("video %s FAILED: %s", media_id, rejected.message)
        finally:
            for task in (beating, telling, losing):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if not job.done():
                job.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await job
            shutil.rmtree(out, ignore_errors=True)

    async def _ready(self, media_id: int, out: Path, data: dict) -> None:
        files = await asyncio.to_thread(stored_files, out, data)
        result = MediaRecord(id=media_id, owner_id=0, width=int(data["width"]), height=int(data["height"]),
                             placeholder=str(data["placeholder"]), original_key="", original_format="",
                             original_bytes=0, captured_at=None, variants=tuple(v for v, _ in files),
                             state=READY, duration_ms=int(data["duration_ms"]), has_audio=bool(data["has_audio"]))

        def put_all() -> None:
            for variant, path in files:
                self.blobs.put_file(path, variant.blob_key)

        if await self.repo.finish_video(media_id, self.name, READY, result=result,
                                        write_blobs=lambda: asyncio.to_thread(put_all)):
            log.info("video %s READY (%s ms)", media_id, result.duration_ms)
