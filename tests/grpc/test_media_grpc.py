"""The media servicer on a real grpc.aio server (port 0) against the real PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib

import grpc
import pytest
from google.api import httpbody_pb2
from google.rpc import error_details_pb2
from pictor.media.v1 import media_service_pb2 as pb
from pictor.media.v1 import media_service_pb2_grpc

from services.common.auth import TokenSigner
from services.common.ids import IdAllocator, shard_of
from services.media.config import load_media_config
from services.media.pipeline import FORMATS, SIZES
from services.media.server import SPEC, setup
from services.media.signing import ExpiryKey, UrlSigner, load_or_create_key
from tests.grpc.status import error_info
from tests.unit.media.conftest import media_corpus_dir


@pytest.fixture
async def stub(serve):
    # As posts, which attaches, reads and (its cleanup) releases media.
    return await serve(SPEC, setup, media_service_pb2_grpc.MediaServiceStub, "posts")


@pytest.fixture
async def tool_stub(serve):
    """As an operator's tool: StreamUpload is for internal clients, which are those."""
    return await serve(SPEC, setup, media_service_pb2_grpc.MediaServiceStub)


@pytest.fixture(scope="module")
def corpus():
    return media_corpus_dir()


@pytest.fixture
def new_user(settings):
    """A user id and the metadata carrying its access token (media trusts the token, not accounts)."""
    signer = TokenSigner.from_files(settings.jwt_private_key_file, settings.jwt_issuer, 600)
    ids = IdAllocator(settings.logical_shards)

    def make() -> tuple[int, list[tuple[str, str]]]:
        user_id = ids.new_id_in_random_shard()
        return user_id, [("authorization", f"Bearer {signer.sign(user_id)}")]

    return make


async def failure(call) -> tuple[grpc.StatusCode, error_details_pb2.ErrorInfo, str]:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value.code(), error_info(error.value), error.value.details()


def upload_request(data: bytes, content_type: str = "image/jpeg") -> pb.UploadMediaRequest:
    return pb.UploadMediaRequest(body=httpbody_pb2.HttpBody(content_type=content_type, data=data))


def query(url: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in url.split("?", 1)[1].split("&"))


# --- one request ----------------------------------------------------------------


async def test_upload_returns_eight_signed_variants(stub, new_user, corpus, settings):
    user_id, auth = new_user()
    media = await stub.UploadMedia(upload_request((corpus / "flower.jpg").read_bytes()), metadata=auth, timeout=30)
    assert (media.width, media.height, media.owner_id) == (480, 360, user_id)
    assert {(v.size, v.format) for v in media.variants} == {(s, f) for s in SIZES for f in FORMATS}
    assert media.placeholder and media.HasField("created_at")
    assert media.captured_at.ToDatetime().isoformat() == "2003-12-14T12:01:44"
    for v in media.variants:
        ext = "jpg" if v.format == "jpeg" else "webp"
        assert v.url.startswith(f"{settings.gateway_url}/v1/media/{media.id}/{v.size}.{ext}?exp=")


async def test_upload_without_a_token_is_unauthenticated(stub, corpus):
    code, info, _ = await failure(stub.UploadMedia(upload_request((corpus / "hopper.jpg").read_bytes()), timeout=10))
    assert code == grpc.StatusCode.UNAUTHENTICATED and info.reason == "TOKEN_MISSING"


@pytest.mark.parametrize("name, reason", [("truncated_jpeg.jpg", "CORRUPT_IMAGE"),
                                          ("decompression_bomb.gif", "IMAGE_TOO_LARGE")])
async def test_bad_image_is_invalid_argument_naming_the_body(stub, new_user, corpus, name, reason):
    _, auth = new_user()
    code, info, _ = await failure(stub.UploadMedia(upload_request((corpus / name).read_bytes()), metadata=auth,
                                                   timeout=10))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert (info.reason, info.metadata["field"]) == (reason, "body")


async def test_unknown_format_is_unsupported(stub, new_user):
    _, auth = new_user()
    code, info, message = await failure(stub.UploadMedia(upload_request(b"%PDF-1.7 not an image"), metadata=auth,
                                                         timeout=10))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and info.reason == "UNSUPPORTED_FORMAT"
    assert "JPEG" in message


async def test_get_media_is_for_its_owner_only(stub, new_user, corpus):
    _, owner = new_user()
    _, stranger = new_user()
    media = await stub.UploadMedia(upload_request((corpus / "hopper.png").read_bytes()), metadata=owner, timeout=30)
    again = await stub.GetMedia(pb.GetMediaRequest(media_id=media.id), metadata=owner, timeout=10)
    assert again.id == media.id and len(again.variants) == 8
    code, info, _ = await failure(stub.GetMedia(pb.GetMediaRequest(media_id=media.id), metadata=stranger, timeout=10))
    assert code == grpc.StatusCode.NOT_FOUND and info.reason == "MEDIA_NOT_FOUND"


async def test_batch_get_keeps_order_skips_unknown_and_names_owners(stub, new_user, corpus):
    a, auth_a = new_user()
    b, auth_b = new_user()
    first = await stub.UploadMedia(upload_request((corpus / "hopper.jpg").read_bytes()), metadata=auth_a, timeout=30)
    second = await stub.UploadMedia(upload_request((corpus / "hopper.gif").read_bytes()), metadata=auth_b, timeout=30)
    reply = await stub.BatchGetMedia(pb.BatchGetMediaRequest(media_ids=[second.id, 12345, first.id]), timeout=10)
    assert [(m.id, m.owner_id) for m in reply.media] == [(second.id, b), (first.id, a)]
    assert all(len(m.variants) == 8 for m in reply.media)


async def test_batch_get_refuses_more_than_500_ids(stub):
    code, info, _ = await failure(stub.BatchGetMedia(pb.BatchGetMediaRequest(media_ids=range(1, 502)), timeout=10))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and info.metadata["field"] == "media_ids"


async def test_sign_media_urls_gives_each_item_a_signature_its_files_open_with(stub, new_user, corpus):
    _, auth = new_user()
    media = await stub.UploadMedia(upload_request((corpus / "hopper.jpg").read_bytes()), metadata=auth, timeout=30)
    reply = await stub.SignMediaUrls(pb.SignMediaUrlsRequest(media_ids=[media.id, media.id]), timeout=10)
    assert [s.media_id for s in reply.signatures] == [media.id]
    signature = reply.signatures[0]
    assert signature.exp >= int(query(media.url_template.replace("{variant}", "150.jpg"))["exp"])
    call = stub.GetMediaFile(pb.GetMediaFileRequest(media_id=media.id, file="150.jpg", exp=signature.exp,
                                                    sig=signature.sig), timeout=10)
    assert (await call).content_type == "image/jpeg"
    code, info, _ = await failure(stub.SignMediaUrls(pb.SignMediaUrlsRequest(media_ids=range(1, 502)), timeout=10))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and info.metadata["field"] == "media_ids"


async def test_sign_media_urls_is_for_posts_only(serve):
    as_stories = await serve(SPEC, setup, media_service_pb2_grpc.MediaServiceStub, "stories")
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await as_stories.SignMediaUrls(pb.SignMediaUrlsRequest(media_ids=[1]), timeout=10)
    assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_the_url_signing_key_signs_what_the_files_open_with_and_is_for_the_feed_only(serve, new_user,
                                                                                        corpus):
    as_feed = await serve(SPEC, setup, media_service_pb2_grpc.MediaServiceStub, "feed")
    as_posts = await serve(SPEC, setup, media_service_pb2_grpc.MediaServiceStub, "posts")
    _, auth = new_user()
    media = await as_posts.UploadMedia(upload_request((corpus / "hopper.jpg").read_bytes()), metadata=auth,
                                       timeout=30)
    reply = await as_feed.GetUrlSigningKey(pb.GetUrlSigningKeyRequest(), timeout=10)
    key = ExpiryKey(reply.exp, reply.key)
    assert key.exp >= int(query(media.url_template.replace("{variant}", "150.jpg"))["exp"])
    call = as_posts.GetMediaFile(pb.GetMediaFileRequest(media_id=media.id, file="150.jpg", exp=key.exp,
                                                        sig=key.signature(media.id)), timeout=10)
    assert (await call).content_type == "image/jpeg"
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await as_posts.GetUrlSigningKey(pb.GetUrlSigningKeyRequest(), timeout=10)
    assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED


# --- serving ----------------------------------------------------------------------


async def test_media_file_serves_bytes_with_type_and_cache_headers(stub, new_user, corpus):
    _, auth = new_user()
    media = await stub.UploadMedia(upload_request((corpus / "hopper.jpg").read_bytes()), metadata=auth, timeout=30)
    variant = next(v for v in media.variants if (v.size, v.format) == (640, "webp"))
    q = query(variant.url)
    call = stub.GetMediaFile(pb.GetMediaFileRequest(media_id=media.id, file="640.webp", exp=int(q["exp"]),
                                                    sig=q["sig"]), timeout=10)  # no token: the signature suffices
    body = await call
    assert body.content_type == "image/webp" and body.data[8:12] == b"WEBP"
    headers = dict(await call.initial_metadata())
    assert headers["cache-control"].startswith("public, max-age=")


async def test_tampered_signature_is_permission_denied(stub, new_user, corpus):
    _, auth = new_user()
    media = await stub.UploadMedia(upload_request((corpus / "hopper.jpg").read_bytes()), metadata=auth, timeout=30)
    q = query(media.variants[0].url)
    # The signature of one item does not open another's files.
    other = await stub.UploadMedia(upload_request((corpus / "hopper.png").read_bytes()), metadata=auth, timeout=30)
    code, info, _ = await failure(stub.GetMediaFile(pb.GetMediaFileRequest(
        media_id=other.id, file="150.jpg", exp=int(q["exp"]), sig=q["sig"]), timeout=10))
    assert code == grpc.StatusCode.PERMISSION_DENIED and info.reason == "URL_SIGNATURE_INVALID"


async def test_expired_url_is_permission_denied(stub, new_user, corpus, settings):
    _, auth = new_user()
    media = await stub.UploadMedia(upload_request((corpus / "hopper.jpg").read_bytes()), metadata=auth, timeout=30)
    config = load_media_config(settings)
    signer = UrlSigner(load_or_create_key(config.url_key_file), config.url_ttl_s, config.url_bucket_s)
    exp = 1_700_000_000  # long past, and correctly signed
    code, info, _ = await failure(stub.GetMediaFile(pb.GetMediaFileRequest(
        media_id=media.id, file="150.jpg", exp=exp, sig=signer.signature(media.id, exp)), timeout=10))
    assert code == grpc.StatusCode.PERMISSION_DENIED and info.reason == "URL_EXPIRED"


async def test_signed_url_of_unknown_media_is_not_found(stub, settings):
    config = load_media_config(settings)
    signer = UrlSigner(load_or_create_key(config.url_key_file), config.url_ttl_s, config.url_bucket_s)
    exp, sig = signer.sign(12345)
    code, info, _ = await failure(stub.GetMediaFile(pb.GetMediaFileRequest(media_id=12345, file="150.jpg", exp=exp,
                                                                           sig=sig), timeout=10))
    assert code == grpc.StatusCode.NOT_FOUND and info.reason == "MEDIA_NOT_FOUND"


# --- client stream ------------------------------------------------------------------


async def test_stream_upload_assembles_chunks(tool_stub, new_user, corpus):
    user_id, auth = new_user()
    data = (corpus / "flower2.jpg").read_bytes()

    async def messages():
        yield pb.StreamUploadRequest(content_type="image/jpeg", data=data[:1000])
        for i in range(1000, len(data), 10_000):
            yield pb.StreamUploadRequest(data=data[i:i + 10_000])

    media = await tool_stub.StreamUpload(messages(), metadata=auth, timeout=30)
    assert (media.width, media.height, media.owner_id) == (300, 225, user_id)
    assert len(media.variants) == 8


async def test_stream_upload_needs_a_content_type_first(tool_stub, new_user, corpus):
    _, auth = new_user()

    async def messages():
        yield pb.StreamUploadRequest(data=(corpus / "hopper.jpg").read_bytes())

    code, info, _ = await failure(tool_stub.StreamUpload(messages(), metadata=auth, timeout=10))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and info.metadata["field"] == "content_type"


# --- resumable --------------------------------------------------------------------


async def create_upload(stub, auth, data: bytes, **overrides) -> pb.Upload:
    fields = {"content_type": "image/jpeg", "size_bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
              **overrides}
    return await stub.CreateUpload(pb.CreateUploadRequest(**fields), metadata=auth, timeout=10)


def chunk(upload_id: str, offset: int, data: bytes) -> pb.AppendUploadRequest:
    return pb.AppendUploadRequest(upload_id=upload_id, offset=offset,
                                  body=httpbody_pb2.HttpBody(content_type="application/octet-stream", data=data))


async def test_resumable_upload_in_chunks_completes_into_media(stub, new_user, corpus):
    user_id, auth = new_user()
    data = (corpus / "flower.jpg").read_bytes()
    upload = await create_upload(stub, auth, data)
    assert upload.received_bytes == 0 and upload.chunk_size > 0 and upload.upload_id
    step = 10_000
    for offset in range(0, len(data), step):
        upload = await stub.AppendUpload(chunk(upload.upload_id, offset, data[offset:offset + step]), metadata=auth,
                                         timeout=10)
        assert upload.received_bytes == min(len(data), offset + step)
    media = await stub.CompleteUpload(pb.CompleteUploadRequest(upload_id=upload.upload_id), metadata=auth, timeout=30)
    assert (media.width, media.height, media.owner_id) == (480, 360, user_id)


async def test_repeating_a_chunk_is_harmless(stub, new_user, corpus):
    _, auth = new_user()
    data = (corpus / "hopper.jpg").read_bytes()
    upload = await create_upload(stub, auth, data)
    first = await stub.AppendUpload(chunk(upload.upload_id, 0, data[:4000]), metadata=auth, timeout=10)
    repeated = await stub.AppendUpload(chunk(upload.upload_id, 0, data[:4000]), metadata=auth, timeout=10)
    assert first.received_bytes == repeated.received_bytes == 4000
    await stub.AppendUpload(chunk(upload.upload_id, 4000, data[4000:]), metadata=auth, timeout=10)
    media = await stub.CompleteUpload(pb.CompleteUploadRequest(upload_id=upload.upload_id), metadata=auth, timeout=30)
    assert media.width == 128


async def test_wrong_offset_is_aborted_with_the_current_offset(stub, new_user, corpus):
    _, auth = new_user()
    data = (corpus / "hopper.jpg").read_bytes()
    upload = await create_upload(stub, auth, data)
    await stub.AppendUpload(chunk(upload.upload_id, 0, data[:1000]), metadata=auth, timeout=10)
    code, info, message = await failure(stub.AppendUpload(chunk(upload.upload_id, 3000, data[3000:4000]),
                                                          metadata=auth, timeout=10))
    assert code == grpc.StatusCode.ABORTED
    assert info.reason == "UPLOAD_OFFSET_MISMATCH" and info.metadata["received_bytes"] == "1000"
    assert "offset 1000" in message


async def test_complete_before_every_byte_is_aborted(stub, new_user, corpus):
    _, auth = new_user()
    data = (corpus / "hopper.jpg").read_bytes()
    upload = await create_upload(stub, auth, data)
    await stub.AppendUpload(chunk(upload.upload_id, 0, data[:1000]), metadata=auth, timeout=10)
    code, info, _ = await failure(stub.CompleteUpload(pb.CompleteUploadRequest(upload_id=upload.upload_id),
                                                      metadata=auth, timeout=10))
    assert code == grpc.StatusCode.ABORTED
    assert info.reason == "UPLOAD_INCOMPLETE" and info.metadata["received_bytes"] == "1000"


async def test_completing_twice_gives_the_same_media(stub, new_user, corpus):
    _, auth = new_user()
    data = (corpus / "hopper.webp").read_bytes()
    upload = await create_upload(stub, auth, data, content_type="image/webp")
    await stub.AppendUpload(chunk(upload.upload_id, 0, data), metadata=auth, timeout=10)
    request = pb.CompleteUploadRequest(upload_id=upload.upload_id)
    first = await stub.CompleteUpload(request, metadata=auth, timeout=30)
    second = await stub.CompleteUpload(request, metadata=auth, timeout=30)
    assert first.id == second.id


async def test_sha256_mismatch_is_invalid_argument(stub, new_user, corpus):
    _, auth = new_user()
    data = (corpus / "hopper.jpg").read_bytes()
    upload = await create_upload(stub, auth, data, sha256=hashlib.sha256(b"other bytes").hexdigest())
    await stub.AppendUpload(chunk(upload.upload_id, 0, data), metadata=auth, timeout=10)
    code, info, _ = await failure(stub.CompleteUpload(pb.CompleteUploadRequest(upload_id=upload.upload_id),
                                                      metadata=auth, timeout=10))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert (info.reason, info.metadata["field"]) == ("SHA256_MISMATCH", "sha256")


async def test_someone_elses_upload_is_not_found(stub, new_user, corpus):
    _, owner = new_user()
    _, stranger = new_user()
    data = (corpus / "hopper.jpg").read_bytes()
    upload = await create_upload(stub, owner, data)
    mine = await stub.GetUpload(pb.GetUploadRequest(upload_id=upload.upload_id), metadata=owner, timeout=10)
    assert mine.size_bytes == len(data) and mine.HasField("expires_at")
    for call in (stub.GetUpload(pb.GetUploadRequest(upload_id=upload.upload_id), metadata=stranger, timeout=10),
                 stub.AppendUpload(chunk(upload.upload_id, 0, data[:10]), metadata=stranger, timeout=10)):
        code, info, _ = await failure(call)
        assert code == grpc.StatusCode.NOT_FOUND and info.reason == "UPLOAD_NOT_FOUND"


@pytest.mark.parametrize("overrides, field", [
    ({"size_bytes": 60 * 1024 * 1024}, "size_bytes"),
    ({"sha256": "not hex"}, "sha256"),
    ({"content_type": "image/tiff"}, "content_type"),
])
async def test_create_upload_validates_its_fields(stub, new_user, overrides, field):
    _, auth = new_user()
    code, info, _ = await failure(create_upload(stub, auth, b"x" * 100, **overrides))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and info.metadata["field"] == field


async def test_chunk_past_the_declared_size_is_refused(stub, new_user, corpus):
    _, auth = new_user()
    data = (corpus / "hopper.jpg").read_bytes()
    upload = await create_upload(stub, auth, data[:100])
    code, info, _ = await failure(stub.AppendUpload(chunk(upload.upload_id, 0, data[:200]), metadata=auth,
                                                    timeout=10))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and info.reason == "UPLOAD_SIZE_EXCEEDED"


async def test_malformed_upload_id_is_not_found(stub, new_user):
    _, auth = new_user()
    code, info, _ = await failure(stub.GetUpload(pb.GetUploadRequest(upload_id="../etc"), metadata=auth, timeout=10))
    assert code == grpc.StatusCode.NOT_FOUND and info.reason == "UPLOAD_NOT_FOUND"


# --- releasing (the posts cleanup worker's call) --------------------------------------


async def test_release_deletes_unposted_media_once_and_only_the_owners(stub, new_user, corpus):
    owner, auth = new_user()
    stranger, _ = new_user()
    media = await stub.UploadMedia(upload_request((corpus / "hopper.webp").read_bytes()), metadata=auth, timeout=30)
    # Someone else's id releases nothing.
    kept = await stub.ReleaseMedia(pb.ReleaseMediaRequest(owner_id=stranger, media_ids=[media.id]), timeout=10)
    assert list(kept.deleted_media_ids) == []
    released = await stub.ReleaseMedia(pb.ReleaseMediaRequest(owner_id=owner, media_ids=[media.id]), timeout=10)
    assert list(released.deleted_media_ids) == [media.id]
    again = await stub.ReleaseMedia(pb.ReleaseMediaRequest(owner_id=owner, media_ids=[media.id]), timeout=10)
    assert list(again.deleted_media_ids) == [] and again.deleted_blobs == 0
    code, info, _ = await failure(stub.GetMedia(pb.GetMediaRequest(media_id=media.id), metadata=auth, timeout=10))
    assert code == grpc.StatusCode.NOT_FOUND and info.reason == "MEDIA_NOT_FOUND"


@pytest.mark.parametrize("request_", [pb.ReleaseMediaRequest(owner_id=-3, media_ids=[1]),
                                      pb.ReleaseMediaRequest(owner_id=1 << 40, media_ids=range(1, 502))],
                         ids=["bad-owner", "too-many"])
async def test_release_refuses_bad_requests(stub, request_):
    code, _, _ = await failure(stub.ReleaseMedia(request_, timeout=10))
    assert code == grpc.StatusCode.INVALID_ARGUMENT


# --- resumable: what an append may do ----------------------------------------------


async def upload_with_4000_bytes(stub, new_user, corpus) -> tuple[list, bytes, pb.Upload]:
    """A new user's upload of hopper.jpg whose first 4,000 bytes are in: (auth, the file, the upload)."""
    _, auth = new_user()
    data = (corpus / "hopper.jpg").read_bytes()
    upload = await create_upload(stub, auth, data)
    await stub.AppendUpload(chunk(upload.upload_id, 0, data[:4000]), metadata=auth, timeout=10)
    return auth, data, upload


async def test_a_resend_that_differs_from_what_was_received_is_aborted_and_changes_nothing(stub, new_user, corpus):
    auth, data, upload = await upload_with_4000_bytes(stub, new_user, corpus)
    altered = data[1000:1999] + bytes([data[1999] ^ 0xFF])  # the last byte differs
    code, info, _ = await failure(stub.AppendUpload(chunk(upload.upload_id, 1000, altered), metadata=auth,
                                                    timeout=10))
    assert code == grpc.StatusCode.ABORTED
    assert info.reason == "UPLOAD_OFFSET_MISMATCH" and info.metadata["received_bytes"] == "4000"
    await stub.AppendUpload(chunk(upload.upload_id, 4000, data[4000:]), metadata=auth, timeout=10)
    media = await stub.CompleteUpload(pb.CompleteUploadRequest(upload_id=upload.upload_id), metadata=auth, timeout=30)
    assert media.width == 128  # the sha256 still matches: nothing was overwritten


async def test_an_exact_resend_of_a_middle_chunk_is_harmless(stub, new_user, corpus):
    auth, data, upload = await upload_with_4000_bytes(stub, new_user, corpus)
    again = await stub.AppendUpload(chunk(upload.upload_id, 1000, data[1000:2000]), metadata=auth, timeout=10)
    assert again.received_bytes == 4000


async def test_a_resend_overlapping_past_the_end_is_aborted(stub, new_user, corpus):
    auth, data, upload = await upload_with_4000_bytes(stub, new_user, corpus)
    code, info, _ = await failure(stub.AppendUpload(chunk(upload.upload_id, 3000, data[3000:5000]), metadata=auth,
                                                    timeout=10))
    assert code == grpc.StatusCode.ABORTED and info.metadata["received_bytes"] == "4000"
    now = await stub.GetUpload(pb.GetUploadRequest(upload_id=upload.upload_id), metadata=auth, timeout=10)
    assert now.received_bytes == 4000


@pytest.fixture
async def limited_stub(serve, monkeypatch):
    """The service with small per-user upload limits: 2 open uploads, 1 MiB declared in all."""
    monkeypatch.setenv("PICTOR_MEDIA_MAX_OPEN_UPLOADS", "2")
    monkeypatch.setenv("PICTOR_MEDIA_MAX_UPLOAD_MB", "1")
    return await serve(SPEC, setup, media_service_pb2_grpc.MediaServiceStub)


async def test_more_open_uploads_than_allowed_are_resource_exhausted(limited_stub, new_user):
    _, auth = new_user()
    for _ in range(2):
        await create_upload(limited_stub, auth, b"x" * 1000)
    code, info, message = await failure(create_upload(limited_stub, auth, b"x" * 1000))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert info.reason == "TOO_MANY_OPEN_UPLOADS" and "PICTOR_MEDIA_MAX_OPEN_UPLOADS" in message
    _, other = new_user()
    await create_upload(limited_stub, other, b"x" * 1000)  # a limit per user


async def test_more_bytes_in_flight_than_allowed_are_resource_exhausted(limited_stub, new_user):
    _, auth = new_user()
    await create_upload(limited_stub, auth, b"x" * 700_000)
    code, info, _ = await failure(create_upload(limited_stub, auth, b"x" * 400_000))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and info.reason == "UPLOAD_BYTES_EXHAUSTED"


async def test_a_completed_upload_no_longer_counts_against_the_limits(limited_stub, new_user, corpus):
    _, auth = new_user()
    data = (corpus / "hopper.jpg").read_bytes()
    done = await create_upload(limited_stub, auth, data)
    await limited_stub.AppendUpload(chunk(done.upload_id, 0, data), metadata=auth, timeout=10)
    await limited_stub.CompleteUpload(pb.CompleteUploadRequest(upload_id=done.upload_id), metadata=auth, timeout=30)
    for _ in range(2):
        await create_upload(limited_stub, auth, data)


# --- decoding in a box: hostile images (the decoders' test hooks, tests/conftest.py) ------------


def marked(corpus, marker: bytes) -> bytes:
    return (corpus / "hopper.jpg").read_bytes() + marker


@pytest.mark.parametrize("marker, reason", [(b"PICTOR-TEST-HANG", "IMAGE_TOO_COMPLEX"),
                                            (b"PICTOR-TEST-BOMB", "IMAGE_TOO_COMPLEX"),
                                            (b"PICTOR-TEST-CRASH", "IMAGE_UNDECODABLE")],
                         ids=["hang", "bomb", "crash"])
async def test_a_hostile_image_is_refused_and_other_uploads_go_on(stub, new_user, corpus, marker, reason):
    _, auth = new_user()
    hostile = stub.UploadMedia(upload_request(marked(corpus, marker)), metadata=auth, timeout=30)
    others = [stub.UploadMedia(upload_request((corpus / name).read_bytes()), metadata=auth, timeout=30)
              for name in ("flower.jpg", "hopper.png")]
    results = await asyncio.gather(hostile, *others, return_exceptions=True)
    error = results[0]
    assert isinstance(error, grpc.aio.AioRpcError) and error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error_info(error).reason, error_info(error).metadata["field"]) == (reason, "body")
    assert [m.width for m in results[1:]] == [480, 128]
    # The decoder that misbehaved was replaced: the service goes on processing.
    after = await stub.UploadMedia(upload_request((corpus / "hopper.gif").read_bytes()), metadata=auth, timeout=30)
    assert after.width == 128


async def test_a_saturated_pool_is_unavailable_with_a_reason(serve, monkeypatch, new_user, corpus):
    monkeypatch.setenv("PICTOR_MEDIA_JOBS", "1")
    monkeypatch.setenv("PICTOR_MEDIA_QUEUE_TIMEOUT_MS", "300")
    stub = await serve(SPEC, setup, media_service_pb2_grpc.MediaServiceStub)
    _, auth = new_user()
    hung = asyncio.ensure_future(stub.UploadMedia(upload_request(marked(corpus, b"PICTOR-TEST-HANG")), metadata=auth,
                                                  timeout=30))
    await asyncio.sleep(0.5)
    code, info, _ = await failure(stub.UploadMedia(upload_request((corpus / "hopper.jpg").read_bytes()),
                                                   metadata=auth, timeout=30))
    assert code == grpc.StatusCode.UNAVAILABLE and info.reason == "PROCESSING_BUSY"
    with pytest.raises(grpc.aio.AioRpcError):
        await hung


# --- attachments (posts' call before it creates a post) ---------------------------------


POST_IDS = IdAllocator(8)


def post_id_of(owner_id: int) -> int:
    """A new id of a post by owner_id (in the owner's shard)."""
    return POST_IDS.new_id(shard_of(owner_id))


async def test_attach_takes_only_the_owners_ready_media_and_is_idempotent(stub, new_user, corpus):
    owner, auth = new_user()
    _, stranger_auth = new_user()
    mine = await stub.UploadMedia(upload_request((corpus / "hopper.png").read_bytes()), metadata=auth, timeout=30)
    theirs = await stub.UploadMedia(upload_request((corpus / "hopper.png").read_bytes()), metadata=stranger_auth,
                                    timeout=30)
    post_id = post_id_of(owner)
    for media_ids in ([mine.id, theirs.id], [mine.id, 12345]):
        code, info, _ = await failure(stub.AttachMedia(
            pb.AttachMediaRequest(owner_id=owner, post_id=post_id, media_ids=media_ids), timeout=10))
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        assert (info.reason, info.metadata["field"]) == ("MEDIA_NOT_FOUND", "media_ids")
    request = pb.AttachMediaRequest(owner_id=owner, post_id=post_id, media_ids=[mine.id])
    await stub.AttachMedia(request, timeout=10)
    await stub.AttachMedia(request, timeout=10)  # again: harmless


async def test_released_media_stay_while_another_post_uses_them(stub, new_user, corpus):
    owner, auth = new_user()
    media = await stub.UploadMedia(upload_request((corpus / "hopper.webp").read_bytes()), metadata=auth, timeout=30)
    first, second = post_id_of(owner), post_id_of(owner)
    for post_id in (first, second):
        await stub.AttachMedia(pb.AttachMediaRequest(owner_id=owner, post_id=post_id, media_ids=[media.id]),
                               timeout=10)
    kept = await stub.ReleaseMedia(pb.ReleaseMediaRequest(owner_id=owner, media_ids=[media.id], post_id=first),
                                   timeout=10)
    assert list(kept.deleted_media_ids) == []
    gone = await stub.ReleaseMedia(pb.ReleaseMediaRequest(owner_id=owner, media_ids=[media.id], post_id=second),
                                   timeout=10)
    assert list(gone.deleted_media_ids) == [media.id]
    code, info, _ = await failure(stub.AttachMedia(
        pb.AttachMediaRequest(owner_id=owner, post_id=post_id_of(owner), media_ids=[media.id]), timeout=10))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and info.reason == "MEDIA_NOT_FOUND"


async def test_attach_refuses_a_post_id_outside_the_owners_shard(stub, new_user):
    owner, _ = new_user()
    elsewhere = POST_IDS.new_id((shard_of(owner) + 1) % 8)
    code, info, _ = await failure(stub.AttachMedia(
        pb.AttachMediaRequest(owner_id=owner, post_id=elsewhere, media_ids=[1]), timeout=10))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and info.metadata["field"] == "post_id"
