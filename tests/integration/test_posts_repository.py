"""Posts' PostgreSQL repository against the stack's real database: media held by a post being
created, and the bookkeeping of cleanups after a delete."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from services.common.db import shard_schema
from services.common.errors import InvalidArgument
from services.common.ids import IdAllocator, shard_of
from services.posts.repository import PostgresPostsRepository
from services.posts.service import Location, Post


@pytest.fixture
def repo(db):
    return PostgresPostsRepository(db)


async def add_media(db, media_id: int, owner_id: int) -> None:
    s = shard_schema(shard_of(media_id))
    async with db.for_shard(shard_of(media_id)).connection() as conn:
        await conn.execute(f"INSERT INTO {s}.media (id, owner_id, width, height, placeholder, original_key, "
                           "original_format, original_bytes) VALUES (%s, %s, 1, 1, '', 'k', 'jpeg', 1)",
                           (media_id, owner_id))


def new_post(ids: IdAllocator, author: int, media_ids: list[int], caption: str = "hi #tag @ada") -> Post:
    return Post(id=ids.new_id(shard_of(author)), author_id=author, media_ids=media_ids, caption=caption,
                hashtags=["tag"], mentions=["ada"], location=Location("Brighton", 50.8, -0.1))


async def test_a_post_takes_only_its_authors_media(repo, db, ids):
    author, other = ids.new_id(2), ids.new_id(2)
    mine, theirs = ids.new_id(2), ids.new_id(2)
    await add_media(db, mine, author)
    await add_media(db, theirs, other)
    for media_ids in ([mine, theirs], [mine, ids.new_id(2)]):
        with pytest.raises(InvalidArgument) as refused:
            await repo.create(new_post(ids, author, media_ids))
        assert refused.value.reason == "MEDIA_NOT_FOUND"
    assert (await repo.create(new_post(ids, author, [mine]))).media_ids == [mine]


async def test_a_post_created_while_its_media_is_released_waits_and_is_refused(repo, db, ids, settings):
    author = ids.new_id(3)
    media_id = ids.new_id(3)
    await add_media(db, media_id, author)
    s = shard_schema(3)
    async with await psycopg.AsyncConnection.connect(settings.database_for_shard(3)) as releasing:
        # What media's release does: lock the row, find no live post holds it, delete it.
        await releasing.execute(f"SELECT id FROM {s}.media WHERE id = %s FOR UPDATE", (media_id,))
        creating = asyncio.create_task(repo.create(new_post(ids, author, [media_id])))
        await asyncio.sleep(0.3)
        assert not creating.done()
        await releasing.execute(f"DELETE FROM {s}.media WHERE id = %s", (media_id,))
        await releasing.commit()
    with pytest.raises(InvalidArgument):
        await creating


async def test_a_deleted_post_is_uncleaned_until_marked_then_scrubbed(repo, db, ids):
    author = ids.new_id(4)
    media_id = ids.new_id(4)
    await add_media(db, media_id, author)
    live = await repo.create(new_post(ids, author, [media_id]))
    deleted = await repo.create(new_post(ids, author, [media_id]))
    await repo.soft_delete(deleted.id)
    later = datetime.now(UTC) + timedelta(seconds=5)

    uncleaned = await repo.uncleaned(4, later, 10_000)
    assert deleted.id in uncleaned and live.id not in uncleaned
    assert deleted.id not in await repo.uncleaned(4, later - timedelta(minutes=1), 10_000)  # too recent

    assert await repo.mark_cleaned(live.id) is False
    assert await repo.mark_cleaned(deleted.id) is True
    scrubbed = (await repo.get_many([deleted.id]))[deleted.id]
    assert scrubbed.cleaned and scrubbed.deleted
    assert (scrubbed.caption, scrubbed.hashtags, scrubbed.mentions, scrubbed.location) == ("", [], [], None)
    assert deleted.id not in await repo.uncleaned(4, later, 10_000)
    assert (await repo.get_many([live.id]))[live.id].caption == "hi #tag @ada"
