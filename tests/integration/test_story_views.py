"""The view write path against the real PostgreSQL: batched inserts, each view durable before its answer,
the count exact under a burst; and the tray's index against the real Redis."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from services.common.ids import shard_of
from services.stories.index import RedisStoryIndex
from services.stories.repository import PostgresStoryRepository
from services.stories.service import Story
from services.stories.views import ViewBatcher


async def new_story(repo: PostgresStoryRepository, ids, author_id: int, *, ttl_s: int = 3600,
                    audience: str = "EVERYONE") -> Story:
    now = datetime.now(UTC)
    story = Story(id=ids.new_id(shard_of(author_id)), author_id=author_id, media_id=1, audience=audience,
                  allow_replies=True, created_at=now, expires_at=now + timedelta(seconds=ttl_s))
    assert await repo.insert(story, max_active=100)
    return story


async def test_a_burst_of_views_is_counted_exactly_and_each_view_once(db, ids):
    repo = PostgresStoryRepository(db)
    author = ids.new_id_in_random_shard()
    story = await new_story(repo, ids, author)
    batcher = ViewBatcher(repo)
    viewers = [ids.new_id_in_random_shard() for _ in range(500)]
    answers = await asyncio.gather(*(batcher.record(story, v) for v in viewers + viewers[:100]))
    assert sum(answers) == 500
    assert (await repo.get(story.id)).view_count == 500
    assert len(await repo.viewers(story.id, 1000, None)) == 500


async def test_a_view_is_committed_when_its_answer_comes(db, ids):
    repo = PostgresStoryRepository(db)
    story = await new_story(repo, ids, ids.new_id_in_random_shard())
    viewer = ids.new_id_in_random_shard()
    assert await ViewBatcher(repo).record(story, viewer)
    assert await repo.seen(viewer, [story.id]) == {story.id}


async def test_the_tray_index_counts_only_active_stories_and_close_friends_for_their_list(db, ids, client):
    repo = PostgresStoryRepository(db)
    index = RedisStoryIndex(client, repo, 3600)
    author, friend, other = (ids.new_id_in_random_shard() for _ in range(3))
    await index.set_close_friend(author, friend, True)
    public = await new_story(repo, ids, author)
    secret = await new_story(repo, ids, author, audience="CLOSE_FRIENDS")
    for story in (public, secret):
        await index.add(story)
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    [seen_by_friend] = await index.tray(friend, [author], now_ms)
    [seen_by_other] = await index.tray(other, [author], now_ms)
    assert (seen_by_friend.story_count, seen_by_friend.latest_story_id) == (2, secret.id)
    assert (seen_by_other.story_count, seen_by_other.latest_story_id) == (1, public.id)
    later = int(secret.expires_at.timestamp() * 1000)
    assert await index.tray(friend, [author], later) == []


async def test_the_tray_says_unseen_until_the_newest_story_is_viewed(db, ids, client):
    repo = PostgresStoryRepository(db)
    index = RedisStoryIndex(client, repo, 3600)
    author, viewer = ids.new_id_in_random_shard(), ids.new_id_in_random_shard()
    older, newer = await new_story(repo, ids, author), await new_story(repo, ids, author)
    for story in (older, newer):
        await index.add(story)
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    await index.mark_seen(viewer, older)
    assert (await index.tray(viewer, [author], now_ms))[0].has_unseen
    await index.mark_seen(viewer, newer)
    await index.mark_seen(viewer, older)  # an older view never moves the marker back
    assert not (await index.tray(viewer, [author], now_ms))[0].has_unseen


def now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)


async def test_an_author_whose_stories_were_all_deleted_leaves_the_tray(db, ids, client):
    repo = PostgresStoryRepository(db)
    index = RedisStoryIndex(client, repo, 3600)
    author, viewer = ids.new_id_in_random_shard(), ids.new_id_in_random_shard()
    story = await new_story(repo, ids, author)
    await index.add(story)
    await index.remove(story)  # {st}:live still names the author, until the story would have expired
    assert await index.tray(viewer, [author], now_ms()) == []


async def test_the_tray_reads_past_the_first_thousand_accounts_followed(db, ids, client):
    repo = PostgresStoryRepository(db)
    index = RedisStoryIndex(client, repo, 3600)
    viewer = ids.new_id_in_random_shard()
    following = [ids.new_id_in_random_shard() for _ in range(2500)]
    posting, muted = following[2400], following[1500]
    for author in (posting, muted):
        await index.add(await new_story(repo, ids, author))
    await index.set_muted(viewer, muted, True)
    assert [e.user_id for e in await index.tray(viewer, following, now_ms())] == [posting]


async def test_a_redis_that_lost_the_tray_structures_is_rebuilt_from_postgresql(db, ids, client):
    from services.stories import keys

    repo = PostgresStoryRepository(db)
    index = RedisStoryIndex(client, repo, 3600)
    author, viewer = ids.new_id_in_random_shard(), ids.new_id_in_random_shard()
    story = await new_story(repo, ids, author)  # in PostgreSQL only, as after a Redis lost its data
    await client.delete(keys.BUILT)
    [entry] = await index.tray(viewer, [author], now_ms())
    assert (entry.user_id, entry.latest_story_id) == (author, story.id)
