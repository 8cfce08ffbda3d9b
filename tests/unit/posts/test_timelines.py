"""Rebuilding authors' timelines (PostsService.rebuild_timelines), posts being their only writer."""

from __future__ import annotations

import pytest

from services.common.errors import InvalidArgument
from services.common.ids import IdAllocator
from services.posts.keys import TIMELINE_MAX
from services.posts.service import PostsService


class Repo:
    def __init__(self) -> None:
        self.asked: list[tuple[list[int], int]] = []

    async def recent_ids(self, author_ids: list[int], limit: int) -> list[tuple[int, int]]:
        self.asked.append((author_ids, limit))
        return [(author_ids[0] * 100 + n, author_ids[0]) for n in (2, 1)]


class Timelines:
    def __init__(self, built: set[int]) -> None:
        self.built = built
        self.written: dict[int, list[tuple[int, int]]] = {}

    async def missing(self, author_ids: list[int]) -> list[int]:
        return [a for a in author_ids if a not in self.built]

    async def replace(self, author_id: int, posts: list[tuple[int, int]]) -> None:
        self.written[author_id] = posts


def service(repo: Repo, timelines: Timelines) -> PostsService:
    return PostsService(repo, IdAllocator(8), graph=None, timelines=timelines, media=None)  # type: ignore[arg-type]


async def test_only_missing_timelines_are_rebuilt_from_the_authors_newest_posts():
    repo, timelines = Repo(), Timelines(built={1})
    assert await service(repo, timelines).rebuild_timelines([1, 2, 2, 3]) == 2
    assert timelines.written == {2: [(202, 2), (201, 2)], 3: [(302, 3), (301, 3)]}
    assert repo.asked == [([2], TIMELINE_MAX), ([3], TIMELINE_MAX)]


async def test_more_than_a_thousand_authors_is_invalid():
    with pytest.raises(InvalidArgument) as error:
        await service(Repo(), Timelines(built=set())).rebuild_timelines(list(range(1, 1002)))
    assert error.value.field == "author_ids"
