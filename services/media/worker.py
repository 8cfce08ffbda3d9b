"""Media collector process: `python -m services.media.worker` (WorkerSpec "collector").

Runs services.media.collector every PICTOR_MEDIA_COLLECT_INTERVAL_MS.
SIGTERM finishes the shard in hand, then exits.
"""

from __future__ import annotations

import asyncio

from services.common.clients import PostsClient
from services.common.server import Resources, run_worker
from services.media.blobstore import FileBlobStore, PartFiles
from services.media.collector import Collector
from services.media.config import load_media_config
from services.media.repository import PostgresMediaRepository


async def work(resources: Resources, stop: asyncio.Event) -> None:
    config = load_media_config(resources.settings)
    collector = Collector(PostgresMediaRepository(await resources.database(max_size=4)),
                          FileBlobStore(config.blob_dir), PartFiles(config.upload_dir),
                          PostsClient(resources.channels()), config, resources.settings.logical_shards, stop)
    await collector.run()


def main() -> None:
    run_worker("collector", work)


if __name__ == "__main__":
    main()
