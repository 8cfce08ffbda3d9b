"""Media's collector worker, in the running stack (every second there: tests/conftest.py): expired
uploads, media in no post and attachments of posts that never appeared go on a schedule, without
anyone touching them. The tests age rows in PostgreSQL instead of waiting a day."""

from __future__ import annotations

import hashlib
import time

import psycopg
import pytest
from pictor.media.v1 import media_service_pb2 as pb
from pictor.media.v1 import media_service_pb2_grpc

from services.common.db import shard_schema
from services.common.ids import IdAllocator, shard_of
from services.common.mesh_tls import service_channel
from services.media.config import load_media_config
from tests.e2e.media_files import unique_jpeg

pytestmark = pytest.mark.e2e


class Media:
    """PostgreSQL and the media folders, read and aged directly."""

    def __init__(self, settings) -> None:
        self.settings = settings
        self.config = load_media_config(settings)

    def sql(self, some_id: int | str, sql: str, *params) -> list[tuple]:
        shard = shard_of(int(some_id))
        with psycopg.connect(self.settings.database_for_shard(shard)) as conn:
            cur = conn.execute(sql.format(s=shard_schema(shard)), params)
            return cur.fetchall() if cur.description else []

    def age_media(self, media_id: str) -> None:
        self.sql(media_id, "UPDATE {s}.media SET created_at = now() - interval '2 days' WHERE id = %s", int(media_id))

    def exists(self, media_id: str) -> bool:
        return bool(self.sql(media_id, "SELECT 1 FROM {s}.media WHERE id = %s", int(media_id)))

    def blob_files(self, media_id: str) -> list:
        keys = self.sql(media_id, "SELECT original_key FROM {s}.media WHERE id = %s UNION ALL "
                        "SELECT blob_key FROM {s}.media_variants WHERE media_id = %s", int(media_id), int(media_id))
        return [self.config.blob_dir / key[:2] / key for (key,) in keys]

    def wait_gone(self, media_id: str, timeout_s: float = 15) -> None:
        deadline = time.monotonic() + timeout_s
        while self.exists(media_id):
            assert time.monotonic() < deadline, f"media {media_id} not collected after {timeout_s} s"
            time.sleep(0.1)


@pytest.fixture
def media(settings) -> Media:
    return Media(settings)


def upload(user) -> dict:
    r = user.upload(unique_jpeg(), "image/jpeg")
    assert r.status == 200, r.body
    return r.json


def test_media_in_no_post_for_a_day_go_with_their_blobs_and_posted_media_stay(new_user, media):
    alice = new_user()
    unused, posted = upload(alice), upload(alice)
    assert alice.post("/v1/posts", {"media_ids": [posted["id"]]}).status == 200
    files = media.blob_files(unused["id"])
    media.age_media(unused["id"])
    media.age_media(posted["id"])

    media.wait_gone(unused["id"])
    deadline = time.monotonic() + 10
    while any(f.exists() for f in files):
        assert time.monotonic() < deadline, "the blobs of collected media stayed"
        time.sleep(0.1)
    time.sleep(2)  # two more rounds
    assert media.exists(posted["id"]) and all(f.exists() for f in media.blob_files(posted["id"]))


def test_an_expired_upload_and_its_partial_file_go(new_user, gateway, media):
    alice = new_user()
    data = unique_jpeg()
    created = alice.post("/v1/uploads", {"content_type": "image/jpeg", "size_bytes": str(len(data)),
                                         "sha256": hashlib.sha256(data).hexdigest()})
    upload_id = created.json["upload_id"]
    assert gateway.request("PUT", f"/v1/uploads/{upload_id}?offset=0", raw=data[:100], token=alice.token,
                           headers={"content-type": "application/octet-stream"}).status == 200
    part = media.config.upload_dir / f"{upload_id}.part"
    assert part.exists()
    media.sql(upload_id, "UPDATE {s}.uploads SET expires_at = now() - interval '1 second' WHERE id = %s",
              int(upload_id))

    deadline = time.monotonic() + 15
    while media.sql(upload_id, "SELECT 1 FROM {s}.uploads WHERE id = %s", int(upload_id)) or part.exists():
        assert time.monotonic() < deadline, "the expired upload was not collected"
        time.sleep(0.1)


def test_an_attachment_whose_post_never_appeared_is_dropped_and_its_media_collected(new_user, media, settings):
    alice = new_user()
    item = upload(alice)
    # What posts does before inserting a post, for a post that then failed to commit.
    never_created = IdAllocator(settings.logical_shards).new_id(shard_of(int(alice.id)))
    with service_channel(settings, "media", "posts", aio=False) as channel:
        media_service_pb2_grpc.MediaServiceStub(channel).AttachMedia(
            pb.AttachMediaRequest(owner_id=int(alice.id), post_id=never_created, media_ids=[int(item["id"])]),
            timeout=10)
    media.age_media(item["id"])
    media.sql(item["id"], "UPDATE {s}.media_attachments SET attached_at = now() - interval '2 days' "
              "WHERE post_id = %s", never_created)

    media.wait_gone(item["id"])
    assert not media.sql(item["id"], "SELECT 1 FROM {s}.media_attachments WHERE post_id = %s", never_created)


def test_an_old_attachment_of_a_real_post_is_confirmed_and_keeps_its_media(new_user, media):
    alice = new_user()
    item = upload(alice)
    post = alice.post("/v1/posts", {"media_ids": [item["id"]]})
    assert post.status == 200, post.body
    media.age_media(item["id"])
    media.sql(item["id"], "UPDATE {s}.media_attachments SET attached_at = now() - interval '2 days' "
              "WHERE post_id = %s", int(post.json["id"]))

    deadline = time.monotonic() + 15
    while not media.sql(item["id"], "SELECT 1 FROM {s}.media_attachments WHERE post_id = %s AND confirmed",
                        int(post.json["id"])):
        assert time.monotonic() < deadline, "the attachment was not confirmed"
        time.sleep(0.1)
    assert media.exists(item["id"])
    assert alice.get(f"/v1/posts/{post.json['id']}").json["media"][0]["id"] == item["id"]


def test_a_photo_sent_in_a_message_stays_until_the_message_is_unsent(new_user, media):
    alice, bob = new_user(), new_user()
    item = upload(alice)
    direct = alice.post("/v1/conversations", {"member_ids": [bob.id]})
    sent = alice.post(f"/v1/conversations/{direct.json['id']}/messages",
                      {"client_message_id": "photo", "media_id": item["id"]})
    assert sent.status == 200, sent.body
    media.age_media(item["id"])
    # A media item in no post and aged a day goes within a couple of the collector's one-second
    # rounds (the test above); this one is held by the message.
    time.sleep(3)
    assert media.exists(item["id"])
    shown = bob.get(f"/v1/conversations/{direct.json['id']}/messages").json["messages"][0]
    assert shown["media"]["id"] == item["id"]

    assert alice.delete(f"/v1/messages/{sent.json['id']}").status == 200
    media.wait_gone(item["id"])
