"""After a post is deleted, through the gateway: its likes, comments, saves, media and blobs go
afterwards (services/posts/cleanup.py), while what other posts and users still hold stays.

The stack runs the cleanup 200 ms after a delete and sweeps every second
(tests/conftest.py); these tests look at PostgreSQL and the blob directory
to see that rows and files are really gone, not only hidden.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg
import pytest

from services.common.db import shard_schema
from services.common.ids import shard_of
from services.common.mesh_tls import gateway_channel
from services.media.config import load_media_config
from tests.e2e.media_files import unique_jpeg

pytestmark = pytest.mark.e2e


class Store:
    """What PostgreSQL and the blob directory hold, read directly."""

    def __init__(self, settings) -> None:
        self.settings = settings
        self.blob_dir = load_media_config(settings).blob_dir

    def query(self, some_id: int | str, sql: str, *params) -> list[tuple]:
        shard = shard_of(int(some_id))
        with psycopg.connect(self.settings.database_for_shard(shard)) as conn:
            return conn.execute(sql.format(s=shard_schema(shard)), params).fetchall()

    def wait_for(self, post_id: str, sql: str, what: str, timeout_s: float = 15) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.query(post_id, sql, int(post_id)):
            assert time.monotonic() < deadline, f"post {post_id}: {what} not after {timeout_s} s"
            time.sleep(0.1)

    def wait_cleaned(self, post_id: str) -> None:
        self.wait_for(post_id, "SELECT 1 FROM {s}.posts WHERE id = %s AND cleaned_at IS NOT NULL", "cleaned up")

    def engagement_rows(self, post_id: str) -> int:
        rows = sum(self.query(post_id, f"SELECT count(*) FROM {{s}}.{table} WHERE post_id = %s", int(post_id))[0][0]
                   for table in ("likes", "comments", "post_counts"))
        for shard in range(self.settings.logical_shards):
            with psycopg.connect(self.settings.database_for_shard(shard)) as conn:
                rows += conn.execute(f"SELECT count(*) FROM {shard_schema(shard)}.saves WHERE post_id = %s",
                                     (int(post_id),)).fetchone()[0]
        return rows

    def blob_files(self, media_id: str) -> list[Path]:
        keys = self.query(media_id, "SELECT original_key FROM {s}.media WHERE id = %s UNION ALL "
                          "SELECT blob_key FROM {s}.media_variants WHERE media_id = %s", int(media_id), int(media_id))
        assert len(keys) == 9, keys
        return [self.blob_dir / key[:2] / key for (key,) in keys]


@pytest.fixture
def store(settings) -> Store:
    return Store(settings)


def upload(user, data: bytes | None = None) -> dict:
    r = user.upload(data or unique_jpeg(), "image/jpeg")
    assert r.status == 200, r.body
    return r.json


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as error:
        return error.code


def test_a_deleted_posts_engagement_media_and_blobs_go_and_shared_media_stays(new_user, store):
    alice, bob = new_user(), new_user()
    only_here, also_elsewhere = upload(alice), upload(alice)
    post = alice.post("/v1/posts", {"media_ids": [only_here["id"], also_elsewhere["id"]],
                                    "caption": "gone soon #bye @bob", "location": {"name": "Pier", "lat": 1, "lng": 2}})
    other = alice.post("/v1/posts", {"media_ids": [also_elsewhere["id"]], "caption": "stays"})
    assert post.status == other.status == 200, post.body
    post_id = post.json["id"]
    assert bob.post(f"/v1/posts/{post_id}/like").status == 200
    assert bob.post(f"/v1/posts/{post_id}/save").status == 200
    comment = bob.post(f"/v1/posts/{post_id}/comments", {"text": "lovely"})
    assert comment.status == 200, comment.body
    assert alice.post(f"/v1/posts/{post_id}/comments",
                      {"text": "thanks", "parent_comment_id": comment.json["id"]}).status == 200
    gone_files, kept_files = store.blob_files(only_here["id"]), store.blob_files(also_elsewhere["id"])
    gone_url = only_here["variants"][0]["url"]
    store.wait_for(post_id, "SELECT 1 FROM {s}.post_counts WHERE post_id = %s", "counts flushed")
    assert store.engagement_rows(post_id) == 5  # like, save, comment, reply and the count row
    assert all(f.exists() for f in gone_files + kept_files)

    assert alice.delete(f"/v1/posts/{post_id}").status == 200
    store.wait_cleaned(post_id)

    assert store.engagement_rows(post_id) == 0
    assert alice.get(f"/v1/media/{only_here['id']}").status == 404
    assert status_of(gone_url) == 404
    assert not any(f.exists() for f in gone_files)
    # The media another live post holds, and its files, stay.
    assert alice.get(f"/v1/media/{also_elsewhere['id']}").status == 200
    assert all(status_of(v["url"]) == 200 for v in also_elsewhere["variants"])
    assert all(f.exists() for f in kept_files)
    assert store.query(post_id, "SELECT caption, hashtags, mentions, location_name FROM {s}.posts WHERE id = %s",
                       int(post_id)) == [("", [], [], None)]
    assert alice.delete(f"/v1/posts/{post_id}").status == 200  # deleting again still succeeds

    assert alice.delete(f"/v1/posts/{other.json['id']}").status == 200
    store.wait_cleaned(other.json["id"])
    assert alice.get(f"/v1/media/{also_elsewhere['id']}").status == 404
    assert not any(f.exists() for f in kept_files)


def test_blobs_another_users_media_shares_stay(new_user, store):
    alice, carol = new_user(), new_user()
    same_photo = unique_jpeg()
    mine, theirs = upload(alice, same_photo), upload(carol, same_photo)
    assert store.blob_files(mine["id"])[0] == store.blob_files(theirs["id"])[0]  # content-addressed: one file
    post = alice.post("/v1/posts", {"media_ids": [mine["id"]]})
    assert alice.delete(f"/v1/posts/{post.json['id']}").status == 200
    store.wait_cleaned(post.json["id"])

    assert alice.get(f"/v1/media/{mine['id']}").status == 404
    assert carol.get(f"/v1/media/{theirs['id']}").status == 200
    assert all(status_of(v["url"]) == 200 for v in theirs["variants"])
    assert all(f.exists() for f in store.blob_files(theirs["id"]))


def test_a_delete_whose_event_was_lost_is_cleaned_by_the_sweep(new_user, store):
    alice = new_user()
    media = upload(alice)
    post = alice.post("/v1/posts", {"media_ids": [media["id"]], "caption": "crash after commit"})
    files = store.blob_files(media["id"])
    # What DeletePost commits, without the event it publishes afterwards (as if it crashed in between).
    store.query(post.json["id"], "UPDATE {s}.posts SET deleted_at = now() WHERE id = %s RETURNING id",
                int(post.json["id"]))

    store.wait_cleaned(post.json["id"])
    assert alice.get(f"/v1/media/{media['id']}").status == 404
    assert not any(f.exists() for f in files)


def test_a_post_with_media_released_meanwhile_is_400_media_not_found(new_user, store):
    alice = new_user()
    media = upload(alice)
    post = alice.post("/v1/posts", {"media_ids": [media["id"]]})
    assert alice.delete(f"/v1/posts/{post.json['id']}").status == 200
    store.wait_cleaned(post.json["id"])  # its media released and deleted

    again = alice.post("/v1/posts", {"media_ids": [media["id"]], "caption": "too late"})
    assert again.status == 400, again.body
    assert again.json["details"][0]["reason"] == "MEDIA_NOT_FOUND"
    assert again.json["details"][0]["metadata"]["field"] == "media_ids"


def test_a_post_may_not_take_someone_elses_media(new_user):
    alice, mallory = new_user(), new_user()
    media = upload(alice)
    r = mallory.post("/v1/posts", {"media_ids": [media["id"]]})
    assert r.status == 400 and r.json["details"][0]["reason"] == "MEDIA_NOT_FOUND", r.body


def test_the_cleanup_calls_are_refused_at_the_gateway(settings):
    import grpc
    from pictor.engagement.v1 import engagement_service_pb2 as epb
    from pictor.engagement.v1 import engagement_service_pb2_grpc
    from pictor.media.v1 import media_service_pb2 as mpb
    from pictor.media.v1 import media_service_pb2_grpc
    from pictor.posts.v1 import posts_service_pb2 as ppb
    from pictor.posts.v1 import posts_service_pb2_grpc

    with gateway_channel(settings, aio=False) as channel:
        calls = (
            lambda: engagement_service_pb2_grpc.EngagementServiceStub(channel).PurgePost(
                epb.PurgePostRequest(post_id=1), timeout=5),
            lambda: media_service_pb2_grpc.MediaServiceStub(channel).ReleaseMedia(
                mpb.ReleaseMediaRequest(owner_id=1, media_ids=[1]), timeout=5),
            lambda: media_service_pb2_grpc.MediaServiceStub(channel).AttachMedia(
                mpb.AttachMediaRequest(owner_id=1, post_id=1, media_ids=[1]), timeout=5),
            lambda: posts_service_pb2_grpc.PostsServiceStub(channel).CheckPostsExist(
                ppb.CheckPostsExistRequest(post_ids=[1]), timeout=5),
        )
        for call in calls:
            with pytest.raises(grpc.RpcError) as error:
                call()
            assert error.value.code() in (grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.NOT_FOUND)
