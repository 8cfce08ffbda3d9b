"""Media process: `python -m services.media.server`."""

from __future__ import annotations

import grpc
from pictor.media.v1 import media_service_pb2_grpc

from services.common import erasure, metrics, server
from services.common.auth import TokenVerifier
from services.common.exports import UserDataExport
from services.common.registry import by_name
from services.media.blobstore import FileBlobStore, PartFiles
from services.media.config import load_media_config
from services.media.erasure import MediaEraser
from services.media.exports import KINDS
from services.media.repository import PostgresMediaRepository
from services.media.sandbox import ImageProcessor, SandboxConfig
from services.media.service import MediaService
from services.media.servicer import MediaServicer
from services.media.signing import UrlSigner, load_or_create_key

SPEC = by_name("media")


async def setup(grpc_server: grpc.aio.Server, resources: server.Resources) -> None:
    settings = resources.settings
    config = load_media_config(settings)
    processor = ImageProcessor(config.limits, SandboxConfig(config.max_jobs, config.memory_limit_bytes,
                                                           config.queue_timeout_s))
    await processor.start()
    resources.on_close(processor.close)
    metrics.DECODER_SLOTS.set(config.max_jobs)
    metrics.DECODER_BUSY.set_function(processor.busy)
    metrics.DECODER_WAITING.set_function(processor.waiting)
    service = MediaService(
        repo=PostgresMediaRepository(await resources.database()),
        blobs=FileBlobStore(config.blob_dir),
        parts=PartFiles(config.upload_dir),
        ids=await resources.ids(),
        signer=UrlSigner(load_or_create_key(config.url_key_file), config.url_ttl_s, config.url_bucket_s),
        processor=processor,
        config=config,
    )
    resources.on_close(service.close)
    erasure.start(resources, "media", MediaEraser(service.repo, service.blobs, service.parts).erase_user)
    verifier = TokenVerifier(settings.jwks_file, settings.jwt_issuer)
    media_service_pb2_grpc.add_MediaServiceServicer_to_server(MediaServicer(service, verifier, UserDataExport(service.repo.db, KINDS)), grpc_server)


def main() -> None:
    server.main(SPEC, setup)


if __name__ == "__main__":
    main()
