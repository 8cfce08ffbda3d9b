"""Stories' rules with in-memory fakes: the tray's order, the checks on input, ids' times."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.common.errors import InvalidArgument
from services.common.ids import IdAllocator
from services.stories.service import StoriesService, TrayEntry, check_audience, check_emoji, id_time


class FakeIndex:
    def __init__(self, entries: list[TrayEntry]) -> None:
        self.entries = entries
        self.asked: list[int] = []

    async def tray(self, viewer_id: int, author_ids: list[int], now_ms: int) -> list[TrayEntry]:
        self.asked = author_ids
        return [e for e in self.entries if e.user_id in author_ids]


class FakeRelations:
    async def following_ids(self, viewer_id: int) -> list[int]:
        return [2, 3, 4, 5]


def service(index: FakeIndex) -> StoriesService:
    return StoriesService(repo=None, index=index, views=None, relations=FakeRelations(), media=None,
                          ids=IdAllocator(8))


async def test_the_tray_puts_me_first_then_unseen_before_seen_newest_first():
    index = FakeIndex([TrayEntry(2, 1, 200, False), TrayEntry(3, 1, 100, True), TrayEntry(4, 2, 300, True),
                       TrayEntry(1, 1, 50, False), TrayEntry(5, 1, 400, False)])
    entries = await service(index).tray(1)
    assert [e.user_id for e in entries] == [1, 4, 3, 5, 2]
    assert index.asked == [1, 2, 3, 4, 5]


def test_an_id_carries_its_creation_time():
    ids = IdAllocator(8)
    before = datetime.now(UTC)
    made = id_time(ids.new_id(3))
    assert abs((made - before).total_seconds()) < 1


@pytest.mark.parametrize("emoji", ["🔥", "❤️", "👍🏽", "😂"])
def test_an_emoji_is_a_reaction(emoji):
    assert check_emoji(emoji) == emoji


@pytest.mark.parametrize("emoji", ["", " ", "lol", "🔥 🔥", "🔥" * 9])
def test_anything_else_is_not(emoji):
    with pytest.raises(InvalidArgument) as refused:
        check_emoji(emoji)
    assert refused.value.field == "emoji"


def test_the_audience_defaults_to_everyone_and_refuses_unknown_names():
    assert check_audience("") == check_audience("AUDIENCE_UNSPECIFIED") == "EVERYONE"
    assert check_audience("CLOSE_FRIENDS") == "CLOSE_FRIENDS"
    with pytest.raises(InvalidArgument):
        check_audience("7")
