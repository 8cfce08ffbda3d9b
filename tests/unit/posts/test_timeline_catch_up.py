"""The "post-timelines" consumer: a post.created event puts a live post in its author's timeline."""

from __future__ import annotations

from services.common.events import Event
from services.posts.service import Post
from services.posts.timelines import TimelineCatchUp


class Posts:
    def __init__(self, *posts: Post) -> None:
        self.posts = {p.id: p for p in posts}

    async def get_many(self, post_ids: list[int]) -> dict[int, Post]:
        return {i: self.posts[i] for i in post_ids if i in self.posts}


class Timelines:
    def __init__(self) -> None:
        self.added_posts: list[tuple[int, int]] = []

    async def added(self, post_id: int, author_id: int) -> None:
        self.added_posts.append((post_id, author_id))


def created(post_id: int, type: str = "post.created") -> Event:
    return Event("posts", type, {"post_id": post_id, "author_id": 7})


async def test_a_created_post_goes_into_its_authors_timeline():
    timelines = Timelines()
    await TimelineCatchUp(Posts(Post(id=11, author_id=7, media_ids=[1])), timelines).handle(created(11))
    assert timelines.added_posts == [(11, 7)]


async def test_a_post_deleted_before_its_event_arrives_stays_out():
    timelines = Timelines()
    catch_up = TimelineCatchUp(Posts(Post(id=11, author_id=7, media_ids=[1], deleted=True)), timelines)
    await catch_up.handle(created(11))
    await catch_up.handle(created(12))  # gone altogether
    assert timelines.added_posts == []


async def test_other_post_events_are_ignored():
    timelines = Timelines()
    catch_up = TimelineCatchUp(Posts(Post(id=11, author_id=7, media_ids=[1])), timelines)
    for type in ("post.updated", "post.deleted"):
        await catch_up.handle(created(11, type))
    assert timelines.added_posts == []
