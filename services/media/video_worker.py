"""Video transcoder process: `python -m services.media.video_worker` (WorkerSpec "video_transcoder").

Runs services.media.transcoder: one job at a time, each in a child process of its own. Its
progress notices go straight onto the "media" stream (ephemeral, as typing: no outbox), for the
realtime dispatch worker to put on the owner's live stream.
SIGTERM stops it between jobs; a job in hand when it dies is taken again once its lease runs out.
"""

from __future__ import annotations

import asyncio

from services.common import metrics
from services.common.events import EventPublisher
from services.common.server import Resources, run_worker
from services.media.blobstore import FileBlobStore
from services.media.config import load_media_config
from services.media.repository import PostgresMediaRepository
from services.media.transcoder import Transcoder


async def work(resources: Resources, stop: asyncio.Event) -> None:
    config = load_media_config(resources.settings)
    bus = EventPublisher(resources.redis())

    async def notify(media_id: int, owner_id: int, percent: int) -> None:
        await bus.publish("media", "media.progress", media_id=media_id, owner_id=owner_id, percent=percent)

    repo = PostgresMediaRepository(await resources.database(max_size=2))
    transcoder = Transcoder(repo, FileBlobStore(config.blob_dir), config, stop, notify=notify)

    async def sample() -> None:
        waiting, held = await repo.video_job_counts()
        metrics.VIDEO_JOBS.labels("waiting").set(waiting)
        metrics.VIDEO_JOBS.labels("held").set(held)

    metrics.sample_on_scrape("video_jobs", sample)
    await transcoder.run()


def main() -> None:
    run_worker("video_transcoder", work)


if __name__ == "__main__":
    main()
