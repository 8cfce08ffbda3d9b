"""Media process: `python -m services.media.server`."""

from __future__ import annotations

from collections.abc import Sequence

import grpc
import pyvips
from pictor.media.v1 import media_service_pb2_grpc

from services.common import server
from services.common.auth import TokenVerifier
from services.common.config import Settings
from services.common.db import Database
from services.common.ids import IdAllocator
from services.media.blobstore import FileBlobStore, PartFiles
from services.media.config import load_media_config
from services.media.repository import PostgresMediaRepository
from services.media.service import ImageProcessor, MediaService
from services.media.servicer import MediaServicer
from services.media.signing import UrlSigner, load_or_create_key
from services.common.registry import by_name

SPEC = by_name("media")


async def setup(grpc_server: grpc.aio.Server, settings: Settings) -> Sequence[server.Closer]:
    # Every upload is new bytes: libvips' operation cache would only keep
    # references to past inputs (up to 50 MB each) alive.
    pyvips.cache_set_max(0)
    config = load_media_config(settings)
    db = Database(settings)
    await db.open()
    service = MediaService(
        repo=PostgresMediaRepository(db),
        blobs=FileBlobStore(config.blob_dir),
        parts=PartFiles(config.upload_dir),
        ids=IdAllocator(settings.logical_shards),
        signer=UrlSigner(load_or_create_key(config.url_key_file), config.url_ttl_s, config.url_bucket_s),
        processor=ImageProcessor(config.limits, config.max_jobs),
        config=config,
    )
    verifier = TokenVerifier(settings.jwks_file, settings.jwt_issuer)
    media_service_pb2_grpc.add_MediaServiceServicer_to_server(MediaServicer(service, verifier), grpc_server)
    return [db.close]


def main() -> None:
    server.main(SPEC, setup)


if __name__ == "__main__":
    main()
