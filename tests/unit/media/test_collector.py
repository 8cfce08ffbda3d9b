"""The collector's round (services/media/collector.py) with an in-memory repository: each step runs,
and one that fails leaves the others to do their work."""

from __future__ import annotations

import contextlib
from datetime import datetime
from pathlib import Path

from services.media.blobstore import PartFiles
from services.media.collector import Collector
from services.media.config import Limits, MediaConfig


class Repo:
    """The repository methods the collector calls, over dicts."""

    def __init__(self) -> None:
        self.expired_uploads = [11, 12]
        # post_id -> confirmed
        self.attachments = {21: False, 22: False}
        self.unused = [31]
        self.garbage = ["a" * 64]

    async def delete_expired_uploads(self, shard: int, now: datetime, limit: int) -> list[int]:
        taken, self.expired_uploads = self.expired_uploads, []
        return taken

    async def unconfirmed_posts(self, shard: int, attached_before: datetime, limit: int) -> list[int]:
        return [p for p, confirmed in self.attachments.items() if not confirmed]

    async def settle_attachments(self, shard: int, existing: list[int], missing: list[int]) -> int:
        for post_id in existing:
            self.attachments[post_id] = True
        for post_id in missing:
            del self.attachments[post_id]
        return len(missing)

    async def collect_unused(self, shard: int, created_before: datetime, limit: int) -> list[int]:
        taken, self.unused = self.unused, []
        return taken

    async def queued_garbage(self, shard: int, limit: int) -> list[str]:
        return list(self.garbage)

    async def drop_garbage(self, shard: int, keys: list[str]) -> None:
        self.garbage = [k for k in self.garbage if k not in keys]

    @contextlib.asynccontextmanager
    async def unused_blobs(self, keys: list[str]):
        yield set(keys)


class Blobs:
    def __init__(self) -> None:
        self.deleted: list[str] = []

    def delete(self, key: str) -> None:
        self.deleted.append(key)


class Posts:
    def __init__(self, existing: set[int] | None) -> None:
        self.existing = existing

    async def existing_post_ids(self, post_ids: list[int]) -> set[int]:
        if self.existing is None:
            raise ConnectionError("posts is away")
        return self.existing & set(post_ids)


def collector(tmp_path: Path, repo: Repo, blobs: Blobs, posts: Posts) -> Collector:
    config = MediaConfig(
        blob_dir=tmp_path, upload_dir=tmp_path, url_key_file=tmp_path / "key", url_ttl_s=3600, url_bucket_s=300,
        public_url="http://x", limits=Limits(), chunk_size=1 << 20, upload_ttl_s=86400, max_jobs=1,
        queue_timeout_s=1, memory_limit_bytes=1 << 30, max_open_uploads=20, max_upload_bytes_in_flight=1 << 28,
        collect_interval_s=60, unused_media_ttl_s=86400, attachment_grace_s=3600)
    return Collector(repo, blobs, PartFiles(tmp_path), posts, config, logical_shards=1)


async def test_a_round_collects_uploads_settles_attachments_and_deletes_media_and_blobs(tmp_path):
    repo, blobs = Repo(), Blobs()
    (tmp_path / "11.part").write_bytes(b"partial")
    done = await collector(tmp_path, repo, blobs, Posts(existing={21})).collect()
    assert (done.uploads, done.attachments, done.media, done.blobs) == (2, 1, 1, 1)
    assert not (tmp_path / "11.part").exists()
    assert repo.attachments == {21: True}  # confirmed; 22 never appeared and went
    assert blobs.deleted == ["a" * 64]


async def test_with_posts_away_attachments_wait_and_everything_else_is_collected(tmp_path):
    repo, blobs = Repo(), Blobs()
    done = await collector(tmp_path, repo, blobs, Posts(existing=None)).collect()
    assert repo.attachments == {21: False, 22: False}
    assert (done.uploads, done.media, done.blobs) == (2, 1, 1)
