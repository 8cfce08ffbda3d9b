"""Posts' PostgreSQL repository against the stack's real database: the bookkeeping of cleanups
after a delete. (Media held by a post being created: media's attachments,
tests/integration/test_media_repository.py.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.common.ids import IdAllocator, shard_of
from services.posts.repository import PostgresPostsRepository
from services.posts.service import Location, Post


@pytest.fixture
def repo(db):
    return PostgresPostsRepository(db)


def new_post(ids: IdAllocator, author: int, media_ids: list[int], caption: str = "hi #tag @ada") -> Post:
    return Post(id=ids.new_id(shard_of(author)), author_id=author, media_ids=media_ids, caption=caption,
                hashtags=["tag"], mentions=["ada"], location=Location("Brighton", 50.8, -0.1))


async def test_a_deleted_post_is_uncleaned_until_marked_then_scrubbed(repo, db, ids):
    author = ids.new_id(4)
    media_id = ids.new_id(4)  # media are media's business: posts keeps their ids only
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
