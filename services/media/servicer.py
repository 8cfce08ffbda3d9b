"""MediaService gRPC servicer: proto to domain and back, nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from google.api import httpbody_pb2
from pictor.media.v1 import media_pb2, media_service_pb2_grpc
from pictor.media.v1 import media_service_pb2 as pb

from services.common.auth import TokenVerifier
from services.media.service import MediaService, MediaView, Upload


def media_to_proto(media: MediaView, for_owner: bool = True) -> media_pb2.Media:
    """The media item; `for_owner` False (what other services show to other people): without what
    the file's metadata said (captured_at), which only the uploader sees."""
    message = media_pb2.Media(
        id=media.id,
        width=media.width,
        height=media.height,
        placeholder=media.placeholder,
        owner_id=media.owner_id,
        variants=[media_pb2.Variant(size=v.size, format=v.format, width=v.width, height=v.height, url=v.url)
                  for v in media.variants],
        url_template=media.url_template,
        sizes=media.sizes,
    )
    if media.captured_at is not None and for_owner:
        message.captured_at.FromDatetime(media.captured_at)
    if media.created_at is not None:
        message.created_at.FromDatetime(media.created_at)
    return message


def upload_to_proto(upload: Upload, chunk_size: int) -> media_pb2.Upload:
    message = media_pb2.Upload(
        upload_id=str(upload.id),
        chunk_size=chunk_size,
        received_bytes=upload.received_bytes,
        size_bytes=upload.size_bytes,
        content_type=upload.content_type,
        sha256=upload.sha256,
    )
    message.expires_at.FromDatetime(upload.expires_at)
    return message


class MediaServicer(media_service_pb2_grpc.MediaServiceServicer):
    def __init__(self, service: MediaService, verifier: TokenVerifier) -> None:
        self.service = service
        self.verifier = verifier

    def _upload(self, upload: Upload) -> media_pb2.Upload:
        return upload_to_proto(upload, self.service.config.chunk_size)

    async def GetMedia(self, request: pb.GetMediaRequest, context: grpc.aio.ServicerContext) -> media_pb2.Media:
        caller = self.verifier.require_caller(context)
        return media_to_proto(await self.service.get_media(caller, request.media_id))

    async def UploadMedia(self, request: pb.UploadMediaRequest, context: grpc.aio.ServicerContext) -> media_pb2.Media:
        caller = self.verifier.require_caller(context)
        return media_to_proto(await self.service.upload(caller, request.body.data))

    async def CreateUpload(self, request: pb.CreateUploadRequest, context: grpc.aio.ServicerContext) -> media_pb2.Upload:
        caller = self.verifier.require_caller(context)
        upload = await self.service.create_upload(caller, request.content_type, request.size_bytes, request.sha256)
        return self._upload(upload)

    async def AppendUpload(self, request: pb.AppendUploadRequest, context: grpc.aio.ServicerContext) -> media_pb2.Upload:
        caller = self.verifier.require_caller(context)
        upload = await self.service.append_upload(caller, request.upload_id, request.offset, request.body.data)
        return self._upload(upload)

    async def GetUpload(self, request: pb.GetUploadRequest, context: grpc.aio.ServicerContext) -> media_pb2.Upload:
        caller = self.verifier.require_caller(context)
        return self._upload(await self.service.get_upload(caller, request.upload_id))

    async def CompleteUpload(
        self, request: pb.CompleteUploadRequest, context: grpc.aio.ServicerContext
    ) -> media_pb2.Media:
        caller = self.verifier.require_caller(context)
        return media_to_proto(await self.service.complete_upload(caller, request.upload_id))

    async def GetMediaFile(
        self, request: pb.GetMediaFileRequest, context: grpc.aio.ServicerContext
    ) -> httpbody_pb2.HttpBody:
        media_file = await self.service.get_file(request.media_id, request.file, request.exp, request.sig)
        # The transcoder turns initial metadata into response headers.
        await context.send_initial_metadata((("cache-control", media_file.cache_control),))
        return httpbody_pb2.HttpBody(content_type=media_file.content_type, data=media_file.data)

    async def StreamUpload(
        self, request_iterator: AsyncIterator[pb.StreamUploadRequest], context: grpc.aio.ServicerContext
    ) -> media_pb2.Media:
        caller = self.verifier.require_caller(context)

        async def messages() -> AsyncIterator[tuple[str, bytes]]:
            async for message in request_iterator:
                yield message.content_type, message.data

        return media_to_proto(await self.service.upload_stream(caller, messages()))

    async def BatchGetMedia(
        self, request: pb.BatchGetMediaRequest, context: grpc.aio.ServicerContext
    ) -> pb.BatchGetMediaResponse:
        media = await self.service.batch_get(list(request.media_ids))
        return pb.BatchGetMediaResponse(media=[media_to_proto(m, for_owner=False) for m in media])

    async def AttachMedia(
        self, request: pb.AttachMediaRequest, context: grpc.aio.ServicerContext
    ) -> pb.AttachMediaResponse:
        await self.service.attach(request.owner_id, request.post_id, list(request.media_ids))
        return pb.AttachMediaResponse()

    async def ReleaseMedia(
        self, request: pb.ReleaseMediaRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReleaseMediaResponse:
        deleted, blobs = await self.service.release(request.owner_id, list(request.media_ids), request.post_id)
        return pb.ReleaseMediaResponse(deleted_media_ids=deleted, deleted_blobs=blobs)
