"""The media repository against the stack's real PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from services.common.db import shard_schema
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
        captured_at=datetime(2024, 5, 1, 10, tzinfo=UTC),
        variants=tuple(StoredVariant(size, fmt, size, size * 3 // 4, f"{size:02x}".ljust(64, "b"), 1000)
                       for size in (150, 320, 640, 1080) for fmt in ("jpeg", "webp")),
    )


async def no_blobs() -> None:
    """These tests store rows only; the blob store is the service's business."""


def upload(upload_id: int, owner_id: int, expires_in_s: float = 3600) -> Upload:
    return Upload(id=upload_id, owner_id=owner_id, content_type="image/jpeg", size_bytes=1000, sha256="c" * 64,
                  received_bytes=0, expires_at=datetime.now(UTC) + timedelta(seconds=expires_in_s))


async def test_media_round_trips_with_its_variants(repo, ids):
    owner = ids.new_id_in_random_shard()
    media_id = ids.new_id(shard_of(owner))
    created_at = await repo.add_media(record(media_id, owner), no_blobs)
    stored = (await repo.get_media([media_id]))[media_id]
    assert stored == dataclasses.replace(record(media_id, owner), created_at=created_at)


async def test_get_media_spans_shards_and_skips_unknown(repo, ids):
    a, b = ids.new_id(0), ids.new_id(1)
    await repo.add_media(record(a, a), no_blobs)
    await repo.add_media(record(b, b), no_blobs)
    found = await repo.get_media([a, b, ids.new_id(2)])
    assert set(found) == {a, b}


FULL_SCREEN = tuple(StoredVariant(1920, fmt, 1080, 1920, ("e" if fmt == "jpeg" else "f") * 64, 2000)
                    for fmt in ("jpeg", "webp"))


async def test_full_screen_variants_are_added_once_to_an_existing_media_item(repo, ids):
    owner = ids.new_id_in_random_shard()
    media_id = ids.new_id(shard_of(owner))
    await repo.add_media(record(media_id, owner), no_blobs)
    assert await repo.add_variants(media_id, FULL_SCREEN, no_blobs) is True
    assert await repo.add_variants(media_id, FULL_SCREEN, no_blobs) is False
    stored = (await repo.get_media([media_id]))[media_id].variants
    assert sorted((v for v in stored if v.size == 1920), key=lambda v: v.format) == list(FULL_SCREEN)


async def test_variants_of_a_media_item_that_is_gone_are_not_added(repo, ids):
    owner = ids.new_id_in_random_shard()
    assert await repo.add_variants(ids.new_id(shard_of(owner)), FULL_SCREEN, no_blobs) is False


async def test_completing_an_upload_is_atomic_with_the_media(repo, ids):
    owner = ids.new_id_in_random_shard()
    upload_id = ids.new_id(shard_of(owner))
    await repo.add_upload(upload(upload_id, owner), 100, 1 << 30)
    first = ids.new_id(shard_of(owner))
    await repo.add_media(record(first, owner), no_blobs, completes_upload=upload_id)
    assert (await repo.get_upload(upload_id)).media_id == first
    second = ids.new_id(shard_of(owner))
    with pytest.raises(Conflict):
        await repo.add_media(record(second, owner), no_blobs, completes_upload=upload_id)
    assert await repo.get_media([second]) == {}  # rolled back with the refused completion


async def test_advance_upload_is_a_compare_and_set_that_writes_only_when_it_holds(repo, ids):
    owner = ids.new_id_in_random_shard()
    upload_id = ids.new_id(shard_of(owner))
    await repo.add_upload(upload(upload_id, owner), 100, 1 << 30)
    writes = []

    async def write(what: str):
        writes.append(what)

    assert (await repo.advance_upload(upload_id, 0, 400, lambda: write("first"))).received_bytes == 400
    assert await repo.advance_upload(upload_id, 0, 800, lambda: write("second")) is None  # moved meanwhile
    assert (await repo.get_upload(upload_id)).received_bytes == 400
    assert writes == ["first"]


async def test_two_appends_at_one_offset_take_turns_and_the_second_writes_nothing(repo, ids):
    owner = ids.new_id_in_random_shard()
    upload_id = ids.new_id(shard_of(owner))
    await repo.add_upload(upload(upload_id, owner), 100, 1 << 30)
    writing, written = asyncio.Event(), asyncio.Event()
    writes = []

    async def slow_write():
        writes.append("first")
        writing.set()
        await written.wait()

    async def other_write():
        writes.append("second")

    first = asyncio.create_task(repo.advance_upload(upload_id, 0, 400, slow_write))
    await writing.wait()
    second = asyncio.create_task(repo.advance_upload(upload_id, 0, 500, other_write))
    await asyncio.sleep(0.3)
    assert not second.done()  # waits for the first append's row lock
    written.set()
    assert (await first).received_bytes == 400
    assert await second is None
    assert writes == ["first"]


async def test_only_expired_uploads_are_collected(repo, ids):
    # Expired as of an hour from now, not yet: the stack's media collector, which deletes what has expired
    # by the clock, takes neither from under the test.
    owner = ids.new_id_in_random_shard()
    shard = shard_of(owner)
    old, fresh = ids.new_id(shard), ids.new_id(shard)
    await repo.add_upload(upload(old, owner, expires_in_s=1800), 100, 1 << 30)
    await repo.add_upload(upload(fresh, owner, expires_in_s=7200), 100, 1 << 30)
    collected = await repo.delete_expired_uploads(shard, datetime.now(UTC) + timedelta(hours=1), limit=1000)
    assert old in collected and fresh not in collected
    assert await repo.get_upload(old) is None and await repo.get_upload(fresh) is not None


# --- releasing media and collecting their blobs -------------------------------------------


def fresh_record(media_id: int, owner_id: int, shared_key: str | None = None) -> MediaRecord:
    """A record whose blob keys no other test uses (the first variant's may be given, to share it)."""
    keys = [secrets.token_hex(32) for _ in range(9)]
    if shared_key:
        keys[1] = shared_key
    base = record(media_id, owner_id)
    return dataclasses.replace(base, original_key=keys[0], variants=tuple(
        dataclasses.replace(v, blob_key=k) for v, k in zip(base.variants, keys[1:])))


async def test_release_deletes_only_the_owners_media_that_no_post_uses(repo, ids):
    owner = ids.new_id(3)
    in_live, in_released, in_none = (ids.new_id(3) for _ in range(3))
    someone_elses = ids.new_id(3)
    for media_id in (in_live, in_released, in_none):
        await repo.add_media(fresh_record(media_id, owner), no_blobs)
    await repo.add_media(fresh_record(someone_elses, ids.new_id(3)), no_blobs)
    live_post, deleted_post = ids.new_id(3), ids.new_id(3)
    assert await repo.attach(owner, live_post, [in_live]) == set()
    assert await repo.attach(owner, deleted_post, [in_live, in_released]) == set()
    before = await repo.get_media([in_live, in_released, in_none])

    assert sorted(await repo.release(owner, [in_live, in_released, in_none, someone_elses], deleted_post)) == sorted(
        [in_released, in_none])

    assert set(await repo.get_media([in_live, in_released, in_none, someone_elses])) == {in_live, someone_elses}
    queued = set(await repo.queued_garbage(3, 10_000))
    assert set(before[in_released].blob_keys) | set(before[in_none].blob_keys) <= queued
    assert not set(before[in_live].blob_keys) & queued
    assert await repo.release(owner, [in_released, in_none], deleted_post) == []  # again: nothing left to do


async def test_attach_takes_only_the_owners_existing_media_and_records_nothing_otherwise(repo, ids):
    owner, other = ids.new_id(2), ids.new_id(2)
    mine, theirs, unknown = ids.new_id(2), ids.new_id(2), ids.new_id(2)
    await repo.add_media(fresh_record(mine, owner), no_blobs)
    await repo.add_media(fresh_record(theirs, other), no_blobs)
    post_id = ids.new_id(2)
    assert await repo.attach(owner, post_id, [mine, theirs, unknown]) == {theirs, unknown}
    # The refused attach recorded nothing: a release of the post's media deletes them.
    assert await repo.release(owner, [mine], post_id) == [mine]


async def hold_attach_open(settings, shard: int, media_id: int, post_id: int) -> psycopg.AsyncConnection:
    """A connection in the middle of what AttachMedia does: the media row locked (FOR SHARE) and the
    attachment inserted, not yet committed."""
    s = shard_schema(shard)
    conn = await psycopg.AsyncConnection.connect(settings.database_for_shard(shard))
    await conn.execute(f"SELECT id FROM {s}.media WHERE id = %s FOR SHARE", (media_id,))
    await conn.execute(f"INSERT INTO {s}.media_attachments (media_id, post_id) VALUES (%s, %s)", (media_id, post_id))
    return conn


async def test_release_waits_for_an_attach_in_flight_and_keeps_the_media(repo, ids, settings):
    owner = ids.new_id(4)
    media_id = ids.new_id(4)
    await repo.add_media(fresh_record(media_id, owner), no_blobs)
    attaching = await hold_attach_open(settings, 4, media_id, ids.new_id(4))
    try:
        releasing = asyncio.create_task(repo.release(owner, [media_id]))
        await asyncio.sleep(0.3)
        assert not releasing.done()  # FOR UPDATE waits for the attach to commit...
        await attaching.commit()
    finally:
        await attaching.close()
    assert await releasing == []  # ...and then sees the attachment
    assert media_id in await repo.get_media([media_id])


async def test_attach_waits_for_a_release_in_flight_and_then_finds_the_media_gone(repo, ids, settings):
    owner = ids.new_id(4)
    media_id = ids.new_id(4)
    await repo.add_media(fresh_record(media_id, owner), no_blobs)
    s = shard_schema(4)
    async with await psycopg.AsyncConnection.connect(settings.database_for_shard(4)) as releasing:
        # What release does: lock the row, find no attachment holds it, delete it.
        await releasing.execute(f"SELECT id FROM {s}.media WHERE id = %s FOR UPDATE", (media_id,))
        attaching = asyncio.create_task(repo.attach(owner, ids.new_id(4), [media_id]))
        await asyncio.sleep(0.3)
        assert not attaching.done()
        await releasing.execute(f"DELETE FROM {s}.media WHERE id = %s", (media_id,))
        await releasing.commit()
    assert await attaching == {media_id}  # refused: the post is never created with deleted media


async def test_unused_media_older_than_the_cutoff_are_collected_with_their_blobs(repo, ids):
    owner = ids.new_id(6)
    unused, in_a_post = ids.new_id(6), ids.new_id(6)
    for media_id in (unused, in_a_post):
        await repo.add_media(fresh_record(media_id, owner), no_blobs)
    await repo.attach(owner, ids.new_id(6), [in_a_post])
    keys = (await repo.get_media([unused]))[unused].blob_keys
    assert unused not in await repo.collect_unused(6, datetime.now(UTC) - timedelta(hours=1), 10_000)
    collected = await repo.collect_unused(6, datetime.now(UTC) + timedelta(seconds=1), 10_000)
    assert unused in collected and in_a_post not in collected
    assert set(await repo.get_media([unused, in_a_post])) == {in_a_post}
    assert set(keys) <= set(await repo.queued_garbage(6, 10_000))


async def test_the_collector_leaves_media_an_attach_in_flight_holds(repo, ids, settings):
    owner = ids.new_id(7)
    media_id = ids.new_id(7)
    await repo.add_media(fresh_record(media_id, owner), no_blobs)
    attaching = await hold_attach_open(settings, 7, media_id, ids.new_id(7))
    try:
        collecting = asyncio.create_task(
            repo.collect_unused(7, datetime.now(UTC) + timedelta(seconds=1), 10_000))
        await asyncio.sleep(0.3)
        await attaching.commit()
    finally:
        await attaching.close()
    assert media_id not in await collecting
    assert media_id in await repo.get_media([media_id])


async def test_unconfirmed_attachments_are_confirmed_or_dropped(repo, ids, settings):
    owner = ids.new_id(5)
    media_id = ids.new_id(5)
    await repo.add_media(fresh_record(media_id, owner), no_blobs)
    created, never_created = ids.new_id(5), ids.new_id(5)
    await repo.attach(owner, created, [media_id])
    await repo.attach(owner, never_created, [media_id])
    later = datetime.now(UTC) + timedelta(seconds=1)
    assert {created, never_created} <= set(await repo.unconfirmed_posts(5, later, 10_000))
    assert not {created, never_created} & set(
        await repo.unconfirmed_posts(5, later - timedelta(minutes=1), 10_000))  # too recent

    assert await repo.settle_attachments(5, [created], [never_created]) == 1
    assert not {created, never_created} & set(await repo.unconfirmed_posts(5, later, 10_000))
    # The confirmed post still holds the media; the other's attachment is gone.
    assert await repo.release(owner, [media_id], never_created) == []
    assert await repo.release(owner, [media_id], created) == [media_id]


async def test_an_owners_open_uploads_are_limited_in_number_and_bytes(repo, ids):
    owner = ids.new_id_in_random_shard()
    first = upload(ids.new_id(shard_of(owner)), owner)
    assert await repo.add_upload(first, max_open=2, max_bytes=1500) is None
    assert await repo.add_upload(upload(ids.new_id(shard_of(owner)), owner), 2, 1500) == (1, 1000)  # bytes
    assert await repo.add_upload(upload(ids.new_id(shard_of(owner)), owner), 1, 10_000) == (1, 1000)  # number
    await repo.add_upload(upload(ids.new_id(shard_of(owner)), owner, expires_in_s=-60), 2, 10_000)
    # An expired upload is not open, and completing one closes it.
    assert await repo.add_upload(upload(ids.new_id(shard_of(owner)), owner), 2, 10_000) is None
    media_id = ids.new_id(shard_of(owner))
    await repo.add_media(fresh_record(media_id, owner), no_blobs, completes_upload=first.id)
    assert await repo.add_upload(upload(ids.new_id(shard_of(owner)), owner), 2, 10_000) is None


async def test_unused_blobs_leaves_out_keys_that_media_in_any_shard_name(repo, ids):
    shared = secrets.token_hex(32)
    gone, kept = ids.new_id(1), ids.new_id(2)
    await repo.add_media(fresh_record(gone, gone, shared), no_blobs)
    await repo.add_media(fresh_record(kept, kept, shared), no_blobs)
    keys = (await repo.get_media([gone]))[gone].blob_keys
    assert await repo.release(gone, [gone]) == [gone]
    async with repo.unused_blobs(keys) as unused:
        assert unused == set(keys) - {shared}


async def test_the_collector_waits_for_an_upload_that_holds_the_keys(repo, ids):
    media_id = ids.new_id(5)
    stored = fresh_record(media_id, media_id)
    writing, written = asyncio.Event(), asyncio.Event()

    async def write_blobs() -> None:
        writing.set()
        await written.wait()

    adding = asyncio.create_task(repo.add_media(stored, write_blobs))
    await writing.wait()

    async def collect() -> set[str]:
        async with repo.unused_blobs(stored.blob_keys) as unused:
            return unused

    collecting = asyncio.create_task(collect())
    await asyncio.sleep(0.3)
    assert not collecting.done()  # the upload holds the keys: no blob of it may go now
    written.set()
    await adding
    assert await collecting == set()  # ...and once its row is in, every key is named


async def test_collected_garbage_leaves_the_queue(repo, ids):
    media_id = ids.new_id(6)
    await repo.add_media(fresh_record(media_id, media_id), no_blobs)
    await repo.release(media_id, [media_id])
    queued = await repo.queued_garbage(6, 10_000)
    await repo.drop_garbage(6, queued)
    assert await repo.queued_garbage(6, 10_000) == []
