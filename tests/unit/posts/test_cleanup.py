"""The cleanup worker's decisions (services.posts.cleanup), with the mesh and storage stubbed: when a
post.deleted event is handled, what a cleanup calls, and what the sweep takes."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime

import pytest

from services.common.events import Event, Postpone
from services.posts.cleanup import Cleanup, CleanupConfig
from services.posts.service import Post

NOW = 1_800_000_000.0


class Posts:
    def __init__(self, *posts: Post) -> None:
        self.posts = {p.id: p for p in posts}
        self.swept_before: list[datetime] = []

    async def get_many(self, post_ids: list[int]) -> dict[int, Post]:
        return {i: self.posts[i] for i in post_ids if i in self.posts}

    async def mark_cleaned(self, post_id: int) -> bool:
        self.posts[post_id] = dataclasses.replace(self.posts[post_id], cleaned=True)
        return True

    async def uncleaned(self, shard: int, deleted_before: datetime, limit: int) -> list[int]:
        self.swept_before.append(deleted_before)
        return [p.id for p in self.posts.values() if p.deleted and not p.cleaned and p.id % 10 == shard]


class Calls:
    def __init__(self) -> None:
        self.made: list[tuple] = []

    async def purge_post(self, post_id: int) -> None:
        self.made.append(("purge", post_id))

    async def release_media(self, owner_id: int, media_ids: list[int], post_id: int) -> None:
        self.made.append(("release", owner_id, media_ids, post_id))


def deleted(post_id: int, cleaned: bool = False) -> Post:
    return Post(id=post_id, author_id=7, media_ids=[70, 71], deleted=True, cleaned=cleaned)


def cleanup(posts: Posts, calls: Calls, delay_s: float = 0.2) -> Cleanup:
    return Cleanup(posts, calls, calls, CleanupConfig(delay_s=delay_s, sweep_s=60), logical_shards=10,
                   clock=lambda: NOW)


def event(post_id: int, age_s: float, type: str = "post.deleted") -> Event:
    return Event("posts", type, {"post_id": post_id, "author_id": 7}, id=f"{int((NOW - age_s) * 1000)}-0")


async def test_a_deleted_post_is_purged_then_released_then_marked():
    posts, calls = Posts(deleted(1)), Calls()
    await cleanup(posts, calls).handle(event(1, age_s=5))
    assert calls.made == [("purge", 1), ("release", 7, [70, 71], 1)]
    assert posts.posts[1].cleaned


@pytest.mark.parametrize("post", [None, Post(id=1, author_id=7, media_ids=[70]), deleted(1, cleaned=True)])
async def test_a_missing_live_or_already_cleaned_post_is_left_alone(post):
    posts, calls = Posts(*([post] if post else [])), Calls()
    assert await cleanup(posts, calls).clean(1) is False
    assert calls.made == []


async def test_other_events_are_ignored():
    calls = Calls()
    await cleanup(Posts(deleted(1)), calls).handle(event(1, age_s=5, type="post.created"))
    assert calls.made == []


async def test_a_fresh_event_waits_out_the_delay():
    calls = Calls()
    job = asyncio.create_task(cleanup(Posts(deleted(1)), calls, delay_s=0.3).handle(event(1, age_s=0.1)))
    await asyncio.sleep(0.1)
    assert calls.made == []  # 0.2 s old of the 0.3 s
    await asyncio.wait_for(job, 1)
    assert calls.made[0] == ("purge", 1)


async def test_stopping_while_waiting_postpones_the_event():
    calls = Calls()
    worker = cleanup(Posts(deleted(1)), calls, delay_s=30)
    job = asyncio.create_task(worker.handle(event(1, age_s=0)))
    await asyncio.sleep(0.05)
    worker.stop.set()
    with pytest.raises(Postpone):
        await asyncio.wait_for(job, 1)
    assert calls.made == []


async def test_the_sweep_cleans_uncleaned_posts_deleted_long_enough_ago_in_every_shard():
    posts, calls = Posts(deleted(11), deleted(23), deleted(35, cleaned=True)), Calls()
    assert await cleanup(posts, calls).sweep() == 2
    assert {c[1] for c in calls.made if c[0] == "purge"} == {11, 23}
    assert len(posts.swept_before) == 10
    assert posts.swept_before[0].timestamp() == pytest.approx(NOW - 0.2 - 60)
