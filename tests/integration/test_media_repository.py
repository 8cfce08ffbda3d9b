"""The media repository against the stack's real PostgreSQL."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import pytest

from services.common.errors import Conflict
from services.common.ids import shard_of
from services.media.repository import PostgresMediaRepository
from services.media.service import MediaRecord, StoredVariant, Upload


@pytest.fixture
def repo(db):
    return PostgresMediaRepository(db)


def record(media_id: int, owner_id: int) -> MediaRecord:
    return MediaRecord(
        id=media_id, owner_id=owner_id, width=4000, height=3000, placeholder="LKO2?U%2Tw=w]~RBVZRi};RPxuwH",
        original_key="a" * 64, original_format="jpeg", original_bytes=123456,
        captured_at=datetime(2024, 5, 1, 10, tzinfo=timezone.utc),
        variants=tuple(StoredVariant(size, fmt, size, size * 3 // 4, f"{size:02x}".ljust(64, "b"), 1000)
                       for size in (150, 320, 640, 1080) for fmt in ("jpeg", "webp")),
    )


def upload(upload_id: int, owner_id: int, expires_in_s: float = 3600) -> Upload:
    return Upload(id=upload_id, owner_id=owner_id, content_type="image/jpeg", size_bytes=1000, sha256="c" * 64,
                  received_bytes=0, expires_at=datetime.now(timezone.utc) + timedelta(seconds=expires_in_s))


async def test_media_round_trips_with_its_variants(repo, ids):
    owner = ids.new_id_in_random_shard()
    media_id = ids.new_id(shard_of(owner))
    created_at = await repo.add_media(record(media_id, owner))
    stored = (await repo.get_media([media_id]))[media_id]
    assert stored == dataclasses.replace(record(media_id, owner), created_at=created_at)


async def test_get_media_spans_shards_and_skips_unknown(repo, ids):
    a, b = ids.new_id(0), ids.new_id(1)
    await repo.add_media(record(a, a))
    await repo.add_media(record(b, b))
    found = await repo.get_media([a, b, ids.new_id(2)])
    assert set(found) == {a, b}


async def test_completing_an_upload_is_atomic_with_the_media(repo, ids):
    owner = ids.new_id_in_random_shard()
    upload_id = ids.new_id(shard_of(owner))
    await repo.add_upload(upload(upload_id, owner))
    first = ids.new_id(shard_of(owner))
    await repo.add_media(record(first, owner), completes_upload=upload_id)
    assert (await repo.get_upload(upload_id)).media_id == first
    second = ids.new_id(shard_of(owner))
    with pytest.raises(Conflict):
        await repo.add_media(record(second, owner), completes_upload=upload_id)
    assert await repo.get_media([second]) == {}  # rolled back with the refused completion


async def test_advance_upload_is_a_compare_and_set(repo, ids):
    owner = ids.new_id_in_random_shard()
    upload_id = ids.new_id(shard_of(owner))
    await repo.add_upload(upload(upload_id, owner))
    assert (await repo.advance_upload(upload_id, 0, 400)).received_bytes == 400
    assert await repo.advance_upload(upload_id, 0, 800) is None  # someone else moved it first
    assert (await repo.get_upload(upload_id)).received_bytes == 400


async def test_only_expired_uploads_are_collected(repo, ids):
    owner = ids.new_id_in_random_shard()
    shard = shard_of(owner)
    old, fresh = ids.new_id(shard), ids.new_id(shard)
    await repo.add_upload(upload(old, owner, expires_in_s=-60))
    await repo.add_upload(upload(fresh, owner))
    collected = await repo.delete_expired_uploads(shard, datetime.now(timezone.utc), limit=1000)
    assert old in collected and fresh not in collected
    assert await repo.get_upload(old) is None and await repo.get_upload(fresh) is not None
