"""Engagement's PostgreSQL repository against the stack's real database."""

from __future__ import annotations

import pytest

from services.common.ids import IdAllocator, shard_of
from services.engagement.repository import PostgresEngagementRepository
from services.engagement.service import Comment, Counts

# The posts' author, as the events name them (no such user needs to exist here).
AUTHOR = 1 << 23 | 7


@pytest.fixture
def repo(db):
    return PostgresEngagementRepository(db)


def comment(ids: IdAllocator, post_id: int, author_id: int, parent_id: int = 0, text: str = "hi") -> Comment:
    return Comment(id=ids.new_id(shard_of(post_id)), post_id=post_id, author_id=author_id, text=text,
                   parent_id=parent_id, mentions=["ada"])


async def test_a_like_is_added_once_and_removed_once(repo, ids):
    post, user = ids.new_id(1), ids.new_id(2)
    assert [await repo.like(post, user, AUTHOR), await repo.like(post, user, AUTHOR)] == [True, False]
    assert [await repo.unlike(post, user, AUTHOR), await repo.unlike(post, user, AUTHOR)] == [True, False]


async def test_likers_page_newest_first_by_cursor(repo, ids):
    post = ids.new_id(3)
    users = [ids.new_id_in_random_shard() for _ in range(5)]
    for user in users:
        await repo.like(post, user, AUTHOR)
    first = await repo.likers(post, 3, None)
    rest = await repo.likers(post, 3, (first[-1].created_at, first[-1].id))
    assert [e.id for e in first + rest] == users[::-1]


async def test_counts_and_likes_of_posts_across_shards_in_one_call(repo, ids):
    viewer = ids.new_id(0)
    liked, unliked = ids.new_id(4), ids.new_id(5)
    await repo.like(liked, viewer, AUTHOR)
    counts, found = await repo.counts([liked, unliked], viewer)
    assert found == {liked} and counts == {liked: Counts(), unliked: Counts()}


async def test_a_comment_round_trips_with_its_mentions_and_time(repo, ids):
    post = ids.new_id(1)
    made = await repo.add_comment(comment(ids, post, ids.new_id(2)), AUTHOR)
    assert made.created_at is not None and made.mentions == ["ada"]
    assert await repo.get_comment(made.id) == made


async def test_a_reply_bumps_its_parents_reply_count(repo, ids):
    post = ids.new_id(1)
    parent = await repo.add_comment(comment(ids, post, ids.new_id(2)), AUTHOR)
    await repo.add_comment(comment(ids, post, ids.new_id(3), parent.id), AUTHOR)
    assert (await repo.get_comment(parent.id)).reply_count == 1


async def test_a_reply_to_a_vanished_parent_is_not_added(repo, ids):
    post = ids.new_id(1)
    assert await repo.add_comment(comment(ids, post, ids.new_id(2), parent_id=ids.new_id(1)), AUTHOR) is None


async def test_deleting_a_comment_deletes_its_replies_and_counts_them(repo, ids):
    post = ids.new_id(6)
    parent = await repo.add_comment(comment(ids, post, ids.new_id(2)), AUTHOR)
    replies = [await repo.add_comment(comment(ids, post, ids.new_id(3), parent.id), AUTHOR) for _ in range(2)]
    assert await repo.delete_comment(parent, AUTHOR, AUTHOR) == 3
    assert [await repo.get_comment(c.id) for c in replies] == [None, None]
    assert await repo.delete_comment(parent, AUTHOR, AUTHOR) == 0


async def test_deleting_a_reply_lowers_its_parents_reply_count(repo, ids):
    post = ids.new_id(6)
    parent = await repo.add_comment(comment(ids, post, ids.new_id(2)), AUTHOR)
    reply = await repo.add_comment(comment(ids, post, ids.new_id(3), parent.id), AUTHOR)
    assert await repo.delete_comment(reply, AUTHOR, AUTHOR) == 1
    assert (await repo.get_comment(parent.id)).reply_count == 0


async def test_top_level_comments_page_in_both_orders_without_replies(repo, ids):
    post = ids.new_id(7)
    made = [await repo.add_comment(comment(ids, post, ids.new_id(2)), AUTHOR) for _ in range(3)]
    await repo.add_comment(comment(ids, post, ids.new_id(2), made[0].id), AUTHOR)
    newest = await repo.comments(post, True, 2, None) + await repo.comments(post, True, 2, made[1].id)
    oldest = await repo.comments(post, False, 2, None) + await repo.comments(post, False, 2, made[1].id)
    assert [c.id for c in newest] == [c.id for c in made[::-1]]
    assert [c.id for c in oldest] == [c.id for c in made]


async def test_saves_page_newest_first_and_belong_to_their_saver(repo, ids):
    saver, other = ids.new_id(2), ids.new_id(2)
    posts = [ids.new_id_in_random_shard() for _ in range(3)]
    for post in posts:
        await repo.save(saver, post)
    await repo.save(other, posts[0])
    first = await repo.saved(saver, 2, None)
    rest = await repo.saved(saver, 2, (first[-1].created_at, first[-1].id))
    assert [e.id for e in first + rest] == posts[::-1]
    assert await repo.saved_among(other, posts) == {posts[0]}
