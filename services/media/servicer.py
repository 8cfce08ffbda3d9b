"""MediaService gRPC servicer: proto to domain and back, nothing else."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import grpc
from google.api import httpbody_pb2
from pictor.exports.v1 import exports_pb2
from pictor.media.v1 import media_pb2, media_service_pb2_grpc
from pictor.media.v1 import media_service_pb2 as pb

from services.common import exports
from services.common.auth import TokenVerifier
from services.media.edits import Adjustments, Crop, Edit, Recipe
from services.media.service import MediaService, MediaView, SignedVariant, Upload

# Read by the gateway's Lua filter (services.mesh.envoy_config), which sets the HTTP status from it.
STATUS_HEADER = "x-pictor-status"


def crop_to_proto(crop: Crop) -> media_pb2.Crop:
    return media_pb2.Crop(x=crop.x, y=crop.y, width=crop.width, height=crop.height)


def edit_to_proto(edit: Edit) -> media_pb2.Edit:
    recipe = edit.recipe
    message = media_pb2.Edit(
        source_media_id=edit.source_media_id, source_width=edit.source_width, source_height=edit.source_height,
        aspect=recipe.aspect, rotate=recipe.rotate, filter=recipe.filter,
        adjustments=media_pb2.Adjustments(**dataclasses.asdict(recipe.adjustments)),
    )
    if recipe.crop is not None:
        message.crop.CopyFrom(crop_to_proto(recipe.crop))
    return message


def recipe_from_proto(request: pb.EditMediaRequest) -> Recipe:
    crop = request.crop if request.HasField("crop") else None
    a = request.adjustments
    return Recipe(
        crop=Crop(crop.x, crop.y, crop.width, crop.height) if crop is not None else None,
        aspect=request.aspect.strip().upper(), rotate=request.rotate,
        filter=request.filter.strip().lower(),
        adjustments=Adjustments(a.brightness, a.contrast, a.saturation, a.warmth, a.fade, a.vignette, a.sharpen),
    )


def variant_to_proto(v: SignedVariant) -> media_pb2.Variant:
    return media_pb2.Variant(size=v.size, format=v.format, width=v.width, height=v.height, url=v.url)


def media_to_proto(media: MediaView, for_owner: bool = True) -> media_pb2.Media:
    """The media item; `for_owner` False (what other services show to other people): without what
    the file's metadata said (captured_at) and the edit recipe (it names the unposted original),
    which only the uploader sees."""
    message = media_pb2.Media(
        id=media.id,
        width=media.width,
        height=media.height,
        placeholder=media.placeholder,
        owner_id=media.owner_id,
        variants=[variant_to_proto(v) for v in media.variants],
        full_screen=[variant_to_proto(v) for v in media.full_screen],
        url_template=media.url_template,
        sizes=media.sizes,
        alt_text=media.alt_text,
        state=media_pb2.Media.State.Value(media.state),
        failure_reason=media.failure_reason,
        duration_ms=media.duration_ms,
        has_audio=media.has_audio,
        kind=media_pb2.Media.VIDEO if media.kind == "video" else media_pb2.Media.PHOTO,
    )
    if media.hls_url:
        message.video.CopyFrom(media_pb2.Video(hls_url=media.hls_url, renditions=[
            media_pb2.Rendition(label=r.label, width=r.width, height=r.height, byte_size=r.byte_size, url=r.url)
            for r in media.renditions]))
    if media.edit is not None and for_owner:
        message.edit.CopyFrom(edit_to_proto(media.edit))
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
    def __init__(self, service: MediaService, verifier: TokenVerifier,
                 user_data: exports.UserDataExport | None = None) -> None:
        self.service = service
        self.verifier = verifier
        self.user_data = user_data

    async def ExportUserData(self, request: exports_pb2.ExportUserDataRequest, context: grpc.aio.ServicerContext
                             ) -> exports_pb2.ExportUserDataResponse:
        return await exports.answer(self.user_data, request)

    async def ReadOriginal(self, request: pb.ReadOriginalRequest, context: grpc.aio.ServicerContext
                           ) -> pb.ReadOriginalResponse:
        data, size, fmt = await self.service.read_original(request.owner_id, request.media_id, request.offset)
        return pb.ReadOriginalResponse(data=data, size_bytes=size, format=fmt)

    def _upload(self, upload: Upload) -> media_pb2.Upload:
        return upload_to_proto(upload, self.service.config.chunk_size)

    async def GetMedia(self, request: pb.GetMediaRequest, context: grpc.aio.ServicerContext) -> media_pb2.Media:
        caller = self.verifier.require_caller(context)
        return media_to_proto(await self.service.get_media(caller, request.media_id))

    async def UploadMedia(self, request: pb.UploadMediaRequest, context: grpc.aio.ServicerContext) -> media_pb2.Media:
        caller = self.verifier.require_caller(context)
        return media_to_proto(await self.service.upload(caller, request.body.data, alt_text=request.alt_text))

    async def CreateUpload(self, request: pb.CreateUploadRequest, context: grpc.aio.ServicerContext) -> media_pb2.Upload:
        caller = self.verifier.require_caller(context)
        upload = await self.service.create_upload(caller, request.content_type, request.size_bytes, request.sha256,
                                                  request.alt_text)
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

    async def UpdateMedia(self, request: pb.UpdateMediaRequest, context: grpc.aio.ServicerContext) -> media_pb2.Media:
        caller = self.verifier.require_caller(context)
        alt_text = request.alt_text if request.HasField("alt_text") else None
        return media_to_proto(await self.service.update_media(caller, request.media_id, alt_text))

    async def EditMedia(self, request: pb.EditMediaRequest, context: grpc.aio.ServicerContext) -> media_pb2.Media:
        caller = self.verifier.require_caller(context)
        alt_text = request.alt_text if request.HasField("alt_text") else None
        return media_to_proto(await self.service.edit_media(caller, request.media_id, recipe_from_proto(request),
                                                            alt_text))

    async def ListFilters(
        self, request: pb.ListFiltersRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListFiltersResponse:
        caller = self.verifier.require_caller(context)
        filters = await self.service.list_filters(caller, request.media_id if request.HasField("media_id") else None)
        return pb.ListFiltersResponse(filters=[media_pb2.Filter(name=f.name, title=f.title, preview_url=f.preview_url)
                                               for f in filters])

    async def GetMediaFile(
        self, request: pb.GetMediaFileRequest, context: grpc.aio.ServicerContext
    ) -> httpbody_pb2.HttpBody:
        range_header = next((v for k, v in context.invocation_metadata() or () if k == "range"), "")
        media_file = await self.service.get_file(request.media_id, request.file, request.exp, request.sig,
                                                 str(range_header))
        # The transcoder turns initial metadata into response headers; the gateway's status filter
        # turns x-pictor-status into the HTTP status (206, 416): gRPC has no word for those.
        headers = [("cache-control", media_file.cache_control), *media_file.headers]
        if media_file.status != 200:
            headers.append((STATUS_HEADER, str(media_file.status)))
        await context.send_initial_metadata(tuple(headers))
        return httpbody_pb2.HttpBody(content_type=media_file.content_type, data=media_file.data)

    async def StreamUpload(
        self, request_iterator: AsyncIterator[pb.StreamUploadRequest], context: grpc.aio.ServicerContext
    ) -> media_pb2.Media:
        caller = self.verifier.require_caller(context)

        async def messages() -> AsyncIterator[tuple[str, bytes]]:
            async for message in request_iterator:
                yield message.content_type, message.data, message.alt_text

        return media_to_proto(await self.service.upload_stream(caller, messages()))

    async def BatchGetMedia(
        self, request: pb.BatchGetMediaRequest, context: grpc.aio.ServicerContext
    ) -> pb.BatchGetMediaResponse:
        media = await self.service.batch_get(list(request.media_ids))
        return pb.BatchGetMediaResponse(media=[media_to_proto(m, for_owner=False) for m in media])

    async def SignMediaUrls(
        self, request: pb.SignMediaUrlsRequest, context: grpc.aio.ServicerContext
    ) -> pb.SignMediaUrlsResponse:
        return pb.SignMediaUrlsResponse(signatures=[
            pb.MediaUrlSignature(media_id=i, exp=exp, sig=sig) for i, exp, sig in self.service.sign_urls(list(request.media_ids))])

    async def GetUrlSigningKey(
        self, request: pb.GetUrlSigningKeyRequest, context: grpc.aio.ServicerContext
    ) -> pb.UrlSigningKey:
        key = self.service.url_signing_key()
        return pb.UrlSigningKey(exp=key.exp, key=key.key)

    async def AttachMedia(
        self, request: pb.AttachMediaRequest, context: grpc.aio.ServicerContext
    ) -> pb.AttachMediaResponse:
        await self.service.attach(request.owner_id, request.post_id, list(request.media_ids),
                                 confirmed=request.confirmed, full_screen=request.full_screen)
        return pb.AttachMediaResponse()

    async def SetAvatar(self, request: pb.SetAvatarRequest, context: grpc.aio.ServicerContext) -> pb.SetAvatarResponse:
        await self.service.set_avatar(request.owner_id, request.media_id)
        return pb.SetAvatarResponse()

    async def GetAvatarFile(
        self, request: pb.GetAvatarFileRequest, context: grpc.aio.ServicerContext
    ) -> httpbody_pb2.HttpBody:
        found = await self.service.get_avatar_file(request.media_id, request.file)
        await context.send_initial_metadata((("cache-control", found.cache_control),))
        return httpbody_pb2.HttpBody(content_type=found.content_type, data=found.data)

    async def ReleaseMedia(
        self, request: pb.ReleaseMediaRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReleaseMediaResponse:
        deleted, blobs = await self.service.release(request.owner_id, list(request.media_ids), request.post_id)
        return pb.ReleaseMediaResponse(deleted_media_ids=deleted, deleted_blobs=blobs)
