"""Media domain logic: uploads, processing, durable storage, signed URLs. No gRPC here.

An upload is acknowledged only once every blob (the original and eight
variants) is fsynced and the media row is committed, in that order: a crash
at any point leaves either nothing the client was told about, or all of it.

Media keep their own record of which posts use them: posts calls `attach`
before it creates a post, and `release` (which the posts cleanup worker calls
for a deleted post's media) forgets the post and deletes the media no post
uses any more. Media in no post are collected after a while, expired uploads
too (services.media.collector). Blobs go afterwards, once no media row in any
shard names them (`collect_garbage`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from services.common.errors import Conflict, InvalidArgument, NotFound, ResourceExhausted
from services.common.ids import IdAllocator, shard_of
from services.common.pagination import decimal_int64
from services.common.text import without_nul
from services.media import edits, pipeline, video, videobox
from services.media.blobstore import BlobNotFound, BlobStore, PartFiles, blob_key
from services.media.config import MediaConfig
from services.media.edits import Edit, Recipe
from services.media.pipeline import ImageRejected, ProcessedImage
from services.media.signing import ExpiryKey, UrlSigner

log = logging.getLogger(__name__)

MAX_BATCH = 500
GARBAGE_BATCH = 200
# Declared types a resumable or streamed upload may announce. The bytes decide
# the format in the end; this only refuses, early, what we would refuse anyway.
DECLARED_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp", "image/avif", "image/heic", "image/heif",
                  "video/mp4", "video/quicktime", "video/webm", "video/x-matroska")
EXTENSIONS = {"jpeg": "jpg", "webp": "webp", "mp4": "mp4", "m3u8": "m3u8", "m4s": "m4s"}
IMAGE_FORMATS = ("jpeg", "webp")
# A video's master playlist is stored as size 0, format m3u8.
MASTER_PLAYLIST = "master.m3u8"
# The most bytes of a video file one ranged answer carries (a client asks again for the rest).
MAX_RANGE_BYTES = 4 * 1024 * 1024
RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")
READY, PROCESSING, FAILED = "READY", "PROCESSING", "FAILED"
VARIANT = "{variant}"  # the placeholder of MediaView.url_template
# The files of an avatar served without a signature (GetAvatarFile): the square thumbnail.
AVATAR_FILES = ("150.webp", "150.jpg")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
MAX_ALT_TEXT = 1000
# A filter's preview: GET /v1/media/{id}/filter-<name>.jpg, rendered from this variant.
PREVIEW_RE = re.compile(r"^filter-([a-z0-9]+)\.jpg$")
PREVIEW_SIZE = 320


# ReadOriginal's most per answer.
ORIGINAL_CHUNK = 1024 * 1024


def _at_most_a_batch(media_ids: list[int]) -> None:
    if len(media_ids) > MAX_BATCH:
        raise InvalidArgument("media_ids", f"at most {MAX_BATCH} ids per call")


@dataclass(frozen=True)
class StoredVariant:
    size: int
    format: str
    width: int
    height: int
    blob_key: str
    byte_size: int

    @property
    def file(self) -> str:
        if self.size == 0 and self.format == "m3u8":
            return MASTER_PLAYLIST
        return f"{self.size}.{EXTENSIONS[self.format]}"

    @property
    def is_image(self) -> bool:
        return self.format in IMAGE_FORMATS


@dataclass(frozen=True)
class MediaRecord:
    id: int
    owner_id: int
    width: int
    height: int
    placeholder: str
    original_key: str
    original_format: str
    original_bytes: int
    captured_at: datetime | None
    variants: tuple[StoredVariant, ...]
    created_at: datetime | None = None
    alt_text: str = ""
    # Set on an edit (services.media.edits): its original and recipe.
    edit: Edit | None = None
    # "photo" or "video"; a video is PROCESSING until the transcoder is done with it.
    kind: str = "photo"
    state: str = READY
    failure_reason: str = ""
    duration_ms: int = 0
    has_audio: bool = False

    @property
    def blob_keys(self) -> list[str]:
        return [self.original_key, *(v.blob_key for v in self.variants)]


@dataclass(frozen=True)
class SignedVariant:
    size: int
    format: str
    width: int
    height: int
    url: str


@dataclass(frozen=True)
class SignedRendition:
    label: int
    width: int
    height: int
    byte_size: int
    url: str


@dataclass(frozen=True)
class MediaView:
    """A media item as a client sees it: URLs signed, storage keys gone."""

    id: int
    owner_id: int
    width: int
    height: int
    placeholder: str
    variants: tuple[SignedVariant, ...]
    captured_at: datetime | None
    created_at: datetime | None
    # Every variant's URL: "{variant}" replaced by a file such as "640.webp" (one signature covers all).
    url_template: str = ""
    sizes: tuple[int, ...] = ()
    alt_text: str = ""
    edit: Edit | None = None
    kind: str = "photo"
    state: str = READY
    failure_reason: str = ""
    duration_ms: int = 0
    has_audio: bool = False
    # A READY video's master playlist and MP4 renditions.
    hls_url: str = ""
    renditions: tuple[SignedRendition, ...] = ()
    # A story's photo: its 9:16 rendition (1080x1920), JPEG and WebP; empty otherwise.
    full_screen: tuple[SignedVariant, ...] = ()


@dataclass(frozen=True)
class FilterView:
    name: str
    title: str
    # Empty when no media item was given to preview on.
    preview_url: str


@dataclass(frozen=True)
class Upload:
    id: int
    owner_id: int
    content_type: str
    size_bytes: int
    sha256: str
    received_bytes: int
    expires_at: datetime
    media_id: int | None = None
    alt_text: str = ""


@dataclass(frozen=True)
class MediaFile:
    data: bytes
    content_type: str
    cache_control: str
    # 206 with content-range for a ranged answer; accept-ranges on video files.
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()


class MediaRepository(Protocol):
    async def add_media(self, record: MediaRecord, write_blobs: Callable[[], Awaitable[object]],
                        completes_upload: int | None = None) -> datetime:
        """Run `write_blobs`, then insert the media and its variants, holding the blob keys against the
        collector meanwhile; returns created_at. With `completes_upload`, marks that upload completed in
        the same transaction (Conflict when it already was)."""

    async def add_video(self, record: MediaRecord, write_blob: Callable[[], Awaitable[object]],
                        completes_upload: int) -> datetime:
        """Like add_media for a video that is still PROCESSING (no variants yet): the row, its transcoding
        job and the upload's completion in one transaction, after `write_blob` stored the original."""

    async def get_media(self, media_ids: list[int]) -> dict[int, MediaRecord]: ...
    async def set_alt_text(self, owner_id: int, media_id: int, alt_text: str) -> MediaRecord | None:
        """Set the owner's media item's alt text; the record after, or None when it is gone."""
    async def add_upload(self, upload: Upload, max_open: int, max_bytes: int) -> tuple[int, int] | None:
        """Record the upload unless its owner's open uploads (not completed, not expired) would then be
        more than `max_open`, or declare more than `max_bytes`: then (how many are open, the bytes
        they declare), and nothing is recorded."""

    async def get_upload(self, upload_id: int) -> Upload | None: ...

    async def advance_upload(self, upload_id: int, expected: int, received: int,
                             write: Callable[[], Awaitable[object]]) -> Upload | None:
        """Run `write` and move received_bytes from `expected` to `received`, as one step against other
        processes; None (nothing written) when it was no longer `expected`."""

    async def delete_expired_uploads(self, shard: int, now: datetime, limit: int) -> list[int]: ...
    # The full-screen renditions (pipeline.full_screen) of a media item, stored as its variants; returns
    # False when the item has them already (another story made them first).
    async def add_variants(self, media_id: int, variants: tuple[StoredVariant, ...],
                           write_blobs: Callable[[], Awaitable[object]]) -> bool: ...
    async def attach(self, owner_id: int, post_id: int, media_ids: list[int],
                     confirmed: bool = False) -> set[int]: ...
    async def release(self, owner_id: int, media_ids: list[int], post_id: int = 0) -> list[int]: ...
    async def set_avatar(self, owner_id: int, media_id: int) -> list[int] | None: ...
    async def is_avatar(self, owner_id: int, media_id: int) -> bool: ...
    async def collect_unused(self, shard: int, created_before: datetime, limit: int) -> list[int]: ...
    async def unconfirmed_posts(self, shard: int, attached_before: datetime, limit: int) -> list[int]: ...
    async def settle_attachments(self, shard: int, existing: list[int], missing: list[int]) -> int: ...
    async def queued_garbage(self, shard: int, limit: int) -> list[str]: ...
    async def drop_garbage(self, shard: int, keys: list[str]) -> None: ...
    def unused_blobs(self, keys: list[str]) -> contextlib.AbstractAsyncContextManager[set[str]]: ...


class ImageProcessor(Protocol):
    async def process(self, data: bytes, field_name: str, recipe: Recipe | None = None,
                      full_screen: bool = False) -> ProcessedImage:
        """The pipeline's result for `data` (edited by `recipe`), worked out away from this process
        (services.media.sandbox); ImageRejected naming `field_name` for what it refuses."""


@dataclass
class _UploadLock:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


@dataclass
class MediaService:
    repo: MediaRepository
    blobs: BlobStore
    parts: PartFiles
    ids: IdAllocator
    signer: UrlSigner
    processor: ImageProcessor
    config: MediaConfig
    clock: Callable[[], float] = time.time
    _upload_locks: dict[int, _UploadLock] = field(default_factory=dict, init=False)
    # Full-screen renditions being made (media id -> its task): one per media item at a time.
    _renders: dict[int, asyncio.Task[None]] = field(default_factory=dict, init=False)

    # --- one request ------------------------------------------------------------

    async def upload(self, owner_id: int, data: bytes, field_name: str = "body", alt_text: str = "") -> MediaView:
        alt_text = checked_alt_text(alt_text)
        processed = await self.processor.process(data, field_name)
        record = await self._store(owner_id, data, processed, alt_text=alt_text)
        return self._view(record)

    async def upload_stream(self, owner_id: int, messages: AsyncIterator[tuple[str, bytes, str]]) -> MediaView:
        """A client stream: (content_type, bytes, alt_text) messages, the type and alt text in the first one."""
        buffer = bytearray()
        first = True
        alt_text = ""
        async for content_type, chunk, given_alt_text in messages:
            if first:
                self._check_declared_type(content_type)
                if is_video_type(content_type):
                    raise InvalidArgument("content_type", "a video goes through a resumable upload (POST /v1/uploads)",
                                          reason="VIDEO_NEEDS_RESUMABLE_UPLOAD")
                alt_text = checked_alt_text(given_alt_text)
                first = False
            if len(buffer) + len(chunk) > self.config.limits.max_bytes:
                raise ImageRejected("IMAGE_TOO_LARGE", f"the image is over {self.config.limits.max_bytes} bytes, "
                                    "the most accepted", "data")
            buffer += chunk
        if first:
            raise InvalidArgument("content_type", "the stream was empty: send the content type and the bytes")
        return await self.upload(owner_id, bytes(buffer), "data", alt_text)

    # --- resumable --------------------------------------------------------------

    async def create_upload(self, owner_id: int, content_type: str, size_bytes: int, sha256: str,
                            alt_text: str = "") -> Upload:
        self._check_declared_type(content_type)
        alt_text = checked_alt_text(alt_text)
        is_video = is_video_type(content_type)
        limit = self.config.video.max_bytes if is_video else self.config.limits.max_bytes
        if size_bytes <= 0:
            raise InvalidArgument("size_bytes", "size_bytes must be the file's size, at least 1")
        if size_bytes > limit:
            error = InvalidArgument("size_bytes", f"the file is {size_bytes} bytes; at most {limit} are accepted",
                                    reason="VIDEO_TOO_LARGE" if is_video else "IMAGE_TOO_LARGE")
            error.metadata["limit"] = str(limit)
            raise error
        digest = sha256.strip().lower()
        if not SHA256_RE.match(digest):
            raise InvalidArgument("sha256", "sha256 must be the file's SHA-256 as 64 hex digits")
        now = self.clock()
        upload = Upload(
            id=self.ids.new_id(shard_of(owner_id)), owner_id=owner_id, content_type=content_type.strip().lower(),
            size_bytes=size_bytes, sha256=digest, received_bytes=0,
            expires_at=datetime.fromtimestamp(now + self.config.upload_ttl_s, UTC), alt_text=alt_text,
        )
        in_flight = await self.repo.add_upload(upload, self.config.max_open_uploads,
                                               self.config.max_upload_bytes_in_flight)
        if in_flight is not None:
            count, declared = in_flight
            if count >= self.config.max_open_uploads:
                raise ResourceExhausted(
                    f"you have {count} uploads open, the most allowed (PICTOR_MEDIA_MAX_OPEN_UPLOADS="
                    f"{self.config.max_open_uploads}): complete them or let them expire first",
                    reason="TOO_MANY_OPEN_UPLOADS", limit=str(self.config.max_open_uploads))
            raise ResourceExhausted(
                f"your open uploads declare {declared} bytes; with {size_bytes} more they would pass the "
                f"{self.config.max_upload_bytes_in_flight} bytes allowed in flight (PICTOR_MEDIA_MAX_UPLOAD_MB): "
                "complete them first", reason="UPLOAD_BYTES_EXHAUSTED",
                limit=str(self.config.max_upload_bytes_in_flight))
        return upload

    async def append_upload(self, owner_id: int, raw_upload_id: str, offset: int, data: bytes) -> Upload:
        upload_id = self._upload_id(raw_upload_id)
        async with self._lock(upload_id):
            upload = await self._owned_upload(owner_id, upload_id)
            if offset < 0:
                raise InvalidArgument("offset", "offset must not be negative")
            if len(data) > self.config.chunk_size:
                raise InvalidArgument("body", f"the chunk is {len(data)} bytes; send at most "
                                      f"{self.config.chunk_size} at a time", reason="CHUNK_TOO_LARGE")
            received = upload.received_bytes
            end = offset + len(data)
            if end > upload.size_bytes:
                raise InvalidArgument("body", f"the chunk ends at byte {end}, past the declared size "
                                      f"{upload.size_bytes}", reason="UPLOAD_SIZE_EXCEEDED")
            if offset == received:
                advanced = await self.repo.advance_upload(
                    upload_id, received, end, lambda: asyncio.to_thread(self.parts.write_at, upload_id, received, data))
                if advanced is None:  # only another process could have moved it; tell the client where it is
                    return await self._owned_upload(owner_id, upload_id)
                return advanced
            # NOTE: bytes below received_bytes are never written again, so a resend is compared with
            # what is stored, and only an exact copy of it is harmless.
            if end <= received and await asyncio.to_thread(self.parts.read, upload_id, len(data), offset) == data:
                return upload
            if offset > received:
                problem = f"the chunk at offset {offset} would leave a gap"
            elif end > received:
                problem = f"the chunk at offset {offset} overlaps the end of what was received ({received})"
            else:
                problem = f"the chunk at offset {offset} differs from the bytes already received there"
            raise Conflict(f"upload {upload_id} has {received} bytes and {problem}: send the next chunk at "
                           f"offset {received}", reason="UPLOAD_OFFSET_MISMATCH", received_bytes=str(received))

    async def get_upload(self, owner_id: int, raw_upload_id: str) -> Upload:
        return await self._owned_upload(owner_id, self._upload_id(raw_upload_id))

    async def complete_upload(self, owner_id: int, raw_upload_id: str) -> MediaView:
        upload_id = self._upload_id(raw_upload_id)
        async with self._lock(upload_id):
            upload = await self._owned_upload(owner_id, upload_id)
            if upload.media_id is not None:
                return await self._media_for_owner(owner_id, upload.media_id)
            if upload.received_bytes < upload.size_bytes:
                raise Conflict(
                    f"upload {upload_id} has {upload.received_bytes} of {upload.size_bytes} bytes: send the rest "
                    f"from offset {upload.received_bytes}",
                    reason="UPLOAD_INCOMPLETE", received_bytes=str(upload.received_bytes))
            try:
                return await self._complete(owner_id, upload)
            except (FileNotFoundError, Conflict) as error:
                # NOTE: the lock above is this process's; another replica may complete the same upload at
                # once. The database lets one media complete it (add_media's conditional update); the
                # other finds the parts gone or the upload completed, and answers with the winner's media.
                if isinstance(error, Conflict) and error.reason != "UPLOAD_COMPLETED":
                    raise
                finished = await self._owned_upload(owner_id, upload_id)
                if finished.media_id is None:
                    raise
                return await self._media_for_owner(owner_id, finished.media_id)

    async def _complete(self, owner_id: int, upload: Upload) -> MediaView:
        if is_video_type(upload.content_type):
            return self._view(await self._complete_video(upload))
        data = await asyncio.to_thread(self.parts.read, upload.id, upload.size_bytes)
        if hashlib.sha256(data).hexdigest() != upload.sha256:
            raise InvalidArgument("sha256", "the bytes received do not match the sha256 given when the upload "
                                  "was created", reason="SHA256_MISMATCH")
        processed = await self.processor.process(data, "file")
        record = await self._store(owner_id, data, processed, completes_upload=upload.id, alt_text=upload.alt_text)
        await asyncio.to_thread(self.parts.delete, upload.id)
        return self._view(record)

    # --- alt text and edits -------------------------------------------------------

    async def update_media(self, caller_id: int, media_id: int, alt_text: str | None) -> MediaView:
        """Set my media item's alt text (None: leave it)."""
        record = await self._owned_record(caller_id, media_id)
        if alt_text is None:
            return self._view(record)
        updated = await self.repo.set_alt_text(record.owner_id, media_id, checked_alt_text(alt_text))
        if updated is None:  # deleted meanwhile
            raise NotFound(f"media {media_id} not found", reason="MEDIA_NOT_FOUND")
        return self._view(updated)

    async def edit_media(self, caller_id: int, media_id: int, recipe: Recipe,
                         alt_text: str | None = None) -> MediaView:
        """A new media item: my media item's kept original, edited by `recipe` (complete by itself)."""
        source = await self._owned_record(caller_id, media_id)
        root = source.edit
        width, height = (root.source_width, root.source_height) if root else (source.width, source.height)
        # Checked here to answer at once; the pipeline checks again against the bytes.
        edits.check(recipe, width, height)
        new_alt_text = source.alt_text if alt_text is None else checked_alt_text(alt_text)
        original = await self._blob(source.original_key, NotFound(f"media {media_id} not found", reason="MEDIA_NOT_FOUND"))
        processed = await self.processor.process(original, "media_id", recipe)
        edit = Edit(root.source_media_id if root else source.id, width, height, recipe)
        record = await self._store(caller_id, original, processed, alt_text=new_alt_text, edit=edit,
                                   original_format=source.original_format, captured_at=source.captured_at)
        return self._view(record)

    async def list_filters(self, caller_id: int, media_id: int | None = None) -> list[FilterView]:
        """Every filter; with `media_id` (mine), a signed preview URL of each on it."""
        template = ""
        if media_id is not None:
            if media_id <= 0:
                raise InvalidArgument("media_id", f"media_id must be a media item's id, not {media_id}")
            template = self._view(await self._owned_record(caller_id, media_id)).url_template
        return [FilterView(f.name, f.title, template.replace(VARIANT, f"filter-{f.name}.jpg") if template else "")
                for f in edits.FILTERS.values()]

    # --- reading ----------------------------------------------------------------

    async def get_media(self, caller_id: int, media_id: int) -> MediaView:
        return await self._media_for_owner(caller_id, media_id)

    async def batch_get(self, media_ids: list[int]) -> list[MediaView]:
        _at_most_a_batch(media_ids)
        found = await self.repo.get_media([i for i in dict.fromkeys(media_ids) if self._in_range(i)])
        return [self._view(found[i]) for i in media_ids if i in found]

    def sign_urls(self, media_ids: list[int]) -> list[tuple[int, int, str]]:
        """(media id, exp, sig) for each distinct id, in the order asked: what a URL of the item carries.
        Nothing is read: the caller (posts) asks only for items of shapes it built from our answers, and
        a URL of an item gone opens nothing (get_file reads the record after the signature)."""
        _at_most_a_batch(media_ids)
        now = self.clock()
        return [(i, *self.signer.sign(i, now)) for i in dict.fromkeys(media_ids) if self._in_range(i)]

    def url_signing_key(self) -> ExpiryKey:
        """The key for the expiry a URL signed now gets: the feed signs its cached shapes' URLs with it."""
        return self.signer.current_key(self.clock())

    async def get_file(self, media_id: int, file: str, exp: int, sig: str, range_header: str = "") -> MediaFile:
        now = self.clock()
        # The signature first: without it, nothing about the media is revealed.
        self.signer.verify(media_id, exp, sig, now)
        record = await self._record(media_id)
        preview = PREVIEW_RE.match(file)
        if preview and preview.group(1) in edits.FILTERS:
            wanted, look = f"{PREVIEW_SIZE}.jpg", Recipe(filter=preview.group(1))
        else:
            wanted, look = file, None
        variant = next((v for v in record.variants if v.file == wanted), None) if record else None
        if variant is None:
            raise NotFound(f"media {media_id} has no file {file!r}", reason="MEDIA_NOT_FOUND")
        cache_control = f"public, max-age={max(0, exp - int(now))}, immutable"
        if not variant.is_image:
            return await self._video_file(variant, exp, sig, cache_control, range_header)
        data = await self._blob(variant.blob_key, NotFound(f"media {media_id} has no file {file!r}", reason="MEDIA_NOT_FOUND"))
        if look is not None:
            # NOTE: rendered here, not in a decoder process: the input is our own 320-pixel variant,
            # never a client's bytes, and the look costs a few milliseconds.
            data = await asyncio.to_thread(pipeline.render_look, data, look)
        # The bytes behind a URL never change; caches may keep them as long as the URL is valid.
        return MediaFile(data, pipeline.CONTENT_TYPES[variant.format], cache_control)

    async def _video_file(self, variant: StoredVariant, exp: int, sig: str, cache_control: str,
                          range_header: str) -> MediaFile:
        """A video's file: a playlist with every URI in it signed like its own URL; an MP4 or segment file
        whole (200) or the part a Range asks for (206; at most MAX_RANGE_BYTES at a time)."""
        content_type = video.CONTENT_TYPES[variant.format]
        if variant.format == "m3u8":
            text = (await self._blob(variant.blob_key, NotFound("the video's playlist is gone", reason="MEDIA_NOT_FOUND"))).decode()
            return MediaFile(sign_playlist(text, f"exp={exp}&sig={sig}").encode(), content_type, cache_control)
        size = variant.byte_size
        ranged = parse_range(range_header, size)
        if ranged is None:  # no Range, or one we do not serve (several ranges): the whole file
            start, end, status = 0, size - 1, 200
        elif ranged == (-1, -1):
            return MediaFile(b"", content_type, cache_control, 416, (("content-range", f"bytes */{size}"),))
        else:
            start, end = ranged
            end, status = min(end, start + MAX_RANGE_BYTES - 1), 206
        try:
            data = await asyncio.to_thread(self.blobs.read_range, variant.blob_key, start, end - start + 1)
        except BlobNotFound:
            raise NotFound("the video's file is gone", reason="MEDIA_NOT_FOUND") from None
        headers = [("accept-ranges", "bytes")]
        if status == 206:
            headers.append(("content-range", f"bytes {start}-{end}/{size}"))
        return MediaFile(data, content_type, cache_control, status, tuple(headers))

    async def read_original(self, owner_id: int, media_id: int, offset: int) -> tuple[bytes, int, str]:
        """Up to ORIGINAL_CHUNK bytes of owner_id's original from `offset` (a data export's files)."""
        if offset < 0:
            raise InvalidArgument("offset", "offset must not be negative")
        record = await self._owned_record(owner_id, media_id)
        try:
            data = await asyncio.to_thread(self.blobs.read_range, record.original_key, offset, ORIGINAL_CHUNK)
        except BlobNotFound:
            raise NotFound(f"media {media_id} not found", reason="MEDIA_NOT_FOUND") from None
        return data, record.original_bytes, record.original_format

    # --- which posts use which media ------------------------------------------------

    async def attach(self, owner_id: int, post_id: int, media_ids: list[int], confirmed: bool = False,
                     full_screen: bool = False) -> None:
        """Record that the post uses these media: every one must exist, be the owner's and be ready
        (processed: a media row exists only then); MEDIA_NOT_FOUND otherwise. Idempotent.
        confirmed: the holder is a story (whose id stands in post_id), never asked about.
        full_screen: the holder shows them full screen (a story): each photo gets its 9:16 rendition
        (pipeline.full_screen), once, made after this returns (render_full_screen); until it is
        there, readers show the photo's usual variants."""
        if not self._in_range(owner_id):
            raise InvalidArgument("owner_id", f"{owner_id} is not a user id")
        # The attachments live in the owner's shard, where the author's posts live too.
        if not self._in_range(post_id) or shard_of(post_id) != shard_of(owner_id):
            raise InvalidArgument("post_id", f"{post_id} is not an id of a post of user {owner_id}")
        unique = list(dict.fromkeys(media_ids))
        if not 1 <= len(unique) <= MAX_BATCH:
            raise InvalidArgument("media_ids", f"attach 1 to {MAX_BATCH} media at a time")
        missing = [m for m in unique if not self._in_range(m)]
        if not missing:
            await self._check_videos(owner_id, unique, story=confirmed)
            missing = sorted(await self.repo.attach(owner_id, post_id, unique, confirmed))
        if missing:
            raise InvalidArgument("media_ids", f"media {missing[0]} does not exist or is not yours",
                                  reason="MEDIA_NOT_FOUND")
        if full_screen:
            for record in (await self.repo.get_media(unique)).values():
                self.render_full_screen(record)

    # --- avatars ---------------------------------------------------------------------------
    # An avatar is an attachment whose holder is its owner's own id (ids never repeat, so no post or
    # story has it): it keeps the photo from ReleaseMedia and the collector as a post would.

    async def set_avatar(self, owner_id: int, media_id: int) -> None:
        """Make the owner's photo `media_id` their avatar (0: none), releasing the one before."""
        if not self._in_range(owner_id):
            raise InvalidArgument("owner_id", f"{owner_id} is not a user id")
        if media_id:
            record = await self._record(media_id)
            if record is not None and record.owner_id == owner_id and record.kind != "photo":
                raise InvalidArgument("avatar_media_id", "an avatar is a photo, not a video",
                                      reason="AVATAR_NOT_A_PHOTO")
        deleted = await self.repo.set_avatar(owner_id, media_id)
        if deleted is None:
            raise InvalidArgument("avatar_media_id", f"media {media_id} does not exist or is not yours",
                                  reason="MEDIA_NOT_FOUND")
        if deleted:
            await collect_garbage(self.repo, self.blobs, shard_of(owner_id))

    async def get_avatar_file(self, media_id: int, file: str) -> MediaFile:
        """The square picture of a photo that is someone's avatar now; NOT_FOUND otherwise."""
        record = await self._record(media_id) if file in AVATAR_FILES else None
        variant = next((v for v in record.variants if v.file == file), None) if record else None
        not_found = NotFound(f"no avatar {media_id}/{file}", reason="AVATAR_NOT_FOUND")
        if variant is None or not await self.repo.is_avatar(record.owner_id, media_id):
            raise not_found
        data = await self._blob(variant.blob_key, not_found)
        # The bytes behind the URL never change, but the photo may stop being the avatar: a day.
        return MediaFile(data, pipeline.CONTENT_TYPES[variant.format], "public, max-age=86400")

    def render_full_screen(self, record: MediaRecord) -> asyncio.Task[None] | None:
        """Start making a photo's 9:16 rendition in the background (None: it has one, it is a video,
        or it is being made). The story is answered without waiting: at a busy decoder pool a render
        inside the call ran past the caller's deadline and no story was made. A render lost with
        the process is made again the next time a story attaches the photo."""
        if (record.kind != "photo" or record.id in self._renders
                or any(v.size == pipeline.FULL_SCREEN for v in record.variants)):
            return None
        task = asyncio.create_task(self._add_full_screen(record), name=f"full-screen {record.id}")
        self._renders[record.id] = task
        task.add_done_callback(lambda done: self._rendered(record.id, done))
        return task

    def _rendered(self, media_id: int, task: asyncio.Task[None]) -> None:
        self._renders.pop(media_id, None)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.warning("media %d: full-screen rendition not made: %s", media_id, error)

    async def close(self) -> None:
        """Stop the renditions being made (their media keep their usual variants)."""
        for task in list(self._renders.values()):
            task.cancel()
        await asyncio.gather(*self._renders.values(), return_exceptions=True)

    async def _add_full_screen(self, record: MediaRecord) -> None:
        """A photo's 9:16 rendition, from its kept original (an edit's with its recipe), rendered in a
        decoder process like any upload. NOTE: videos get none: the transcoder's 720p and 360p keep the
        video's shape, and a third encode per story video is not made (README: Stories)."""
        original = await self._blob(record.original_key, NotFound(f"media {record.id} not found", reason="MEDIA_NOT_FOUND"))
        processed = await self.processor.process(original, "media_id", record.edit.recipe if record.edit else None,
                                                 full_screen=True)
        variants = tuple(StoredVariant(v.size, v.format, v.width, v.height, blob_key(v.data), len(v.data))
                         for v in processed.variants)

        def put_all() -> None:
            for v, stored in zip(processed.variants, variants, strict=True):
                self.blobs.put(v.data, stored.blob_key)

        await self.repo.add_variants(record.id, variants, lambda: asyncio.to_thread(put_all))

    async def release(self, owner_id: int, media_ids: list[int], post_id: int = 0) -> tuple[list[int], int]:
        """Forget the post's attachments to `media_ids` (post_id 0: none), delete the owner's media among
        them that no post uses any more, then the blobs of the owner's shard that no media names:
        (the media deleted, how many blobs went)."""
        if not self._in_range(owner_id):
            raise InvalidArgument("owner_id", f"{owner_id} is not a user id")
        if post_id and not self._in_range(post_id):
            raise InvalidArgument("post_id", f"{post_id} is not a post id")
        _at_most_a_batch(media_ids)
        deleted = await self.repo.release(owner_id, [m for m in dict.fromkeys(media_ids) if self._in_range(m)],
                                          post_id)
        return deleted, await collect_garbage(self.repo, self.blobs, shard_of(owner_id))

    # --- internals --------------------------------------------------------------

    async def _store(self, owner_id: int, data: bytes, processed: ProcessedImage,
                     completes_upload: int | None = None, alt_text: str = "", edit: Edit | None = None,
                     original_format: str | None = None, captured_at: datetime | None = None) -> MediaRecord:
        """Store a processed image as a new media item. An edit passes what it keeps of its original
        (format, capture time): EXIF is read from the original's bytes again, the format stays."""
        record = MediaRecord(
            id=self.ids.new_id(shard_of(owner_id)), owner_id=owner_id, width=processed.width,
            height=processed.height, placeholder=processed.placeholder, original_key=blob_key(data),
            original_format=original_format or processed.format, original_bytes=len(data),
            captured_at=captured_at if edit else processed.captured_at,
            variants=tuple(StoredVariant(v.size, v.format, v.width, v.height, blob_key(v.data), len(v.data))
                           for v in processed.variants),
            alt_text=alt_text, edit=edit,
        )

        def put_all() -> None:
            for blob, key in zip((data, *(v.data for v in processed.variants)), record.blob_keys):
                self.blobs.put(blob, key)

        created_at = await self.repo.add_media(record, lambda: asyncio.to_thread(put_all), completes_upload)
        return dataclasses.replace(record, created_at=created_at)

    async def _complete_video(self, upload: Upload) -> MediaRecord:
        """A complete video upload: checked, its header probed in a child process (limits: 400), stored
        as the original, and recorded PROCESSING with its transcoding job (services.media.transcoder)."""
        path = self.parts.path(upload.id)
        if await asyncio.to_thread(file_sha256, path) != upload.sha256:
            raise InvalidArgument("sha256", "the bytes received do not match the sha256 given when the upload "
                                  "was created", reason="SHA256_MISMATCH")
        head = await asyncio.to_thread(self.parts.read, upload.id, 16)
        if video.sniff(head) is None:
            raise video.VideoRejected("UNSUPPORTED_FORMAT", f"not a video format we accept: send {video.ACCEPTED}")
        outcome = await videobox.probe(path, self.config.video, self.config.probe_timeout_s,
                                       self.config.video_memory_limit_bytes)
        found = outcome.data.get("probe") if outcome.kind == "ok" else None
        if outcome.kind == "rejected" and outcome.data["reason"] != "CORRUPT_VIDEO":
            # What the header declares beyond a limit, or a format we do not take: refused now.
            raise outcome.rejection(self.config.video, self.config.video_memory_limit_bytes,
                                    self.config.probe_timeout_s)
        # NOTE: a file the probe cannot read is still taken: the transcoder tries it under its own
        # bounds and the item ends FAILED with the reason, like any file whose header lies.
        width, height = video.Probe(**found).size if found else (0, 0)
        record = MediaRecord(
            id=self.ids.new_id(shard_of(upload.owner_id)), owner_id=upload.owner_id, width=width, height=height,
            placeholder="", original_key=upload.sha256, original_format=found["container"] if found else "video",
            original_bytes=upload.size_bytes, captured_at=None, variants=(), alt_text=upload.alt_text,
            kind="video", state=PROCESSING, duration_ms=found["duration_ms"] if found else 0,
            has_audio=bool(found and found["audio_codec"]))
        created_at = await self.repo.add_video(
            record, lambda: asyncio.to_thread(self.blobs.put_file, path, upload.sha256), upload.id)
        await asyncio.to_thread(self.parts.delete, upload.id)
        return dataclasses.replace(record, created_at=created_at)

    async def _check_videos(self, owner_id: int, media_ids: list[int], story: bool) -> None:
        """Videos a post (or a story: `story`, which stands for every confirmed holder, messages too) may
        not hold: FAILED ones, and those past the holder's length."""
        limits = self.config.video
        longest = video.duration_limit_for(limits, story)
        for record in (await self.repo.get_media(media_ids)).values():
            if record.owner_id != owner_id or record.kind != "video":
                continue
            if record.state == FAILED:
                raise InvalidArgument("media_ids", f"video {record.id} failed to process: {record.failure_reason}",
                                      reason="MEDIA_FAILED")
            if record.duration_ms > longest * 1000:
                error = InvalidArgument(
                    "media_ids", f"video {record.id} lasts {record.duration_ms / 1000:.1f} s; a "
                    f"{'story (or message)' if story else 'post'} takes at most {longest:g} s", reason="VIDEO_TOO_LONG")
                error.metadata["limit"] = f"{longest:g}s"
                raise error

    def _view(self, record: MediaRecord) -> MediaView:
        exp, sig = self.signer.sign(record.id, self.clock())
        template = f"{self.config.public_url}/v1/media/{record.id}/{VARIANT}?exp={exp}&sig={sig}"
        images = [v for v in record.variants if v.is_image and v.size != pipeline.FULL_SCREEN]

        def signed(found: list[StoredVariant]) -> tuple[SignedVariant, ...]:
            return tuple(SignedVariant(v.size, v.format, v.width, v.height, template.replace(VARIANT, v.file))
                         for v in found)

        variants = signed(images)
        full_screen = signed([v for v in record.variants if v.is_image and v.size == pipeline.FULL_SCREEN])
        renditions = tuple(SignedRendition(v.size, v.width, v.height, v.byte_size, template.replace(VARIANT, v.file))
                           for v in record.variants if v.format == "mp4")
        ready_video = record.kind == "video" and record.state == READY
        return MediaView(record.id, record.owner_id, record.width, record.height, record.placeholder,
                         variants, record.captured_at, record.created_at, template,
                         tuple(sorted({v.size for v in images})), record.alt_text, record.edit,
                         kind=record.kind, state=record.state, failure_reason=record.failure_reason,
                         duration_ms=record.duration_ms, has_audio=record.has_audio,
                         hls_url=template.replace(VARIANT, MASTER_PLAYLIST) if ready_video else "",
                         renditions=renditions if ready_video else (), full_screen=full_screen)

    async def _blob(self, key: str, gone: NotFound) -> bytes:
        """A blob's bytes; `gone` when it is (collected between the read of its row and now)."""
        try:
            return await asyncio.to_thread(self.blobs.get, key)
        except BlobNotFound:
            raise gone from None

    async def _record(self, media_id: int) -> MediaRecord | None:
        return (await self.repo.get_media([media_id])).get(media_id) if self._in_range(media_id) else None

    async def _media_for_owner(self, caller_id: int, media_id: int) -> MediaView:
        return self._view(await self._owned_record(caller_id, media_id))

    async def _owned_record(self, caller_id: int, media_id: int) -> MediaRecord:
        record = await self._record(media_id)
        # Someone else's media answers like missing media.
        if record is None or record.owner_id != caller_id:
            raise NotFound(f"media {media_id} not found", reason="MEDIA_NOT_FOUND")
        return record

    def _in_range(self, any_id: int) -> bool:
        return any_id > 0 and shard_of(any_id) < self.ids.logical_shards

    def _upload_id(self, raw: str) -> int:
        upload_id = decimal_int64(raw.strip())
        if upload_id is None or not self._in_range(upload_id):
            raise NotFound(f"upload {raw!r} not found", reason="UPLOAD_NOT_FOUND")
        return upload_id

    async def _owned_upload(self, owner_id: int, upload_id: int) -> Upload:
        upload = await self.repo.get_upload(upload_id)
        if upload is None or upload.owner_id != owner_id or upload.expires_at.timestamp() < self.clock():
            raise NotFound(f"upload {upload_id} not found (uploads expire after "
                           f"{self.config.upload_ttl_s // 3600} h)", reason="UPLOAD_NOT_FOUND")
        return upload

    @contextlib.asynccontextmanager
    async def _lock(self, upload_id: int) -> AsyncIterator[None]:
        """One request at a time per upload in this process, so that its own requests queue rather than
        race; across replicas the database decides (advance_upload's row lock, add_media's conditional
        completion, see complete_upload). The lock goes when nobody holds or awaits it."""
        entry = self._upload_locks.setdefault(upload_id, _UploadLock())
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._upload_locks[upload_id]

    @staticmethod
    def _check_declared_type(content_type: str) -> None:
        declared = content_type.split(";")[0].strip().lower()
        if declared not in DECLARED_TYPES:
            raise InvalidArgument("content_type", f"content_type {content_type!r} is not accepted; send one of "
                                  f"{', '.join(DECLARED_TYPES)}", reason="UNSUPPORTED_FORMAT")


def is_video_type(content_type: str) -> bool:
    return content_type.split(";")[0].strip().lower().startswith("video/")


def file_sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """(first, last) byte of a single-range `Range` header, None without one (or with several: the
    whole file is the answer then), (-1, -1) when it cannot be satisfied (416)."""
    match = RANGE_RE.match(header.strip().replace(" ", "")) if header else None
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        n = int(last)
        return (max(0, size - n), size - 1) if n > 0 and size > 0 else (-1, -1)
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or (last and int(last) < start):
        return (-1, -1)
    return start, end


_URI_ATTR = re.compile(r'URI="([^"?]+)"')


def sign_playlist(text: str, query: str) -> str:
    """The playlist with `?query` on every URI (segment lines and URI="..." attributes): a player
    resolves them against the playlist's URL without its query, and every file needs the signature."""
    lines = []
    for line in text.splitlines():
        if line and not line.startswith("#"):
            line = f"{line}?{query}"
        elif "URI=" in line:
            line = _URI_ATTR.sub(lambda m: f'URI="{m.group(1)}?{query}"', line)
        lines.append(line)
    return "\n".join(lines) + "\n"


def checked_alt_text(alt_text: str, field_name: str = "alt_text") -> str:
    """The alt text to store (surrounding whitespace gone); InvalidArgument when it cannot be."""
    text = alt_text.strip()
    if len(text) > MAX_ALT_TEXT:
        raise InvalidArgument(field_name, f"alt_text is {len(text)} characters; at most {MAX_ALT_TEXT} are "
                              "accepted", reason="ALT_TEXT_TOO_LONG")
    return without_nul(field_name, text, name="alt_text")


async def collect_garbage(repo: MediaRepository, blobs: BlobStore, shard: int) -> int:
    """Delete the shard's queued blobs that no media names; returns how many were deleted."""

    def delete(keys: list[str]) -> None:
        for key in keys:
            blobs.delete(key)

    deleted = 0
    while keys := await repo.queued_garbage(shard, GARBAGE_BATCH):
        async with repo.unused_blobs(keys) as unused:
            await asyncio.to_thread(delete, sorted(unused))
        # Named keys leave the queue too: whoever deletes their last media queues them again.
        await repo.drop_garbage(shard, keys)
        deleted += len(unused)
    return deleted
