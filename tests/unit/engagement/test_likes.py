"""Likes' rules: idempotent, only on visible posts, counted once, published (the feed's ranker counts them)."""

from __future__ import annotations

import pytest

from services.common.errors import InvalidArgument, NotFound
from services.engagement.service import Counts
from tests.unit.engagement.conftest import ALICE, BOB, CAROL, POST


async def test_liking_twice_is_one_like_counted_once(world):
    await world.service.like(BOB, POST)
    await world.service.like(BOB, POST)
    assert list(world.repo.likes) == [(POST, BOB)]
    assert world.counters.total(POST, "likes") == 1


async def test_like_answers_with_the_count_including_deltas_not_flushed_yet(world):
    world.repo.durable[POST] = Counts(likes=41)
    assert await world.service.like(BOB, POST) == (True, 42)


async def test_like_publishes_one_event_naming_post_liker_and_author(world):
    await world.service.like(BOB, POST)
    await world.service.like(BOB, POST)
    assert world.events.published == [("engagement", "like", {"post_id": POST, "user_id": BOB, "author_id": ALICE})]


async def test_liking_an_invisible_post_is_post_not_found_and_records_nothing(world):
    world.posts.hidden_from[POST] = {BOB}
    with pytest.raises(NotFound) as error:
        await world.service.like(BOB, POST)
    assert error.value.reason == "POST_NOT_FOUND"
    assert not world.repo.likes and not world.counters.deltas


async def test_liking_an_unknown_post_answers_like_an_invisible_one(world):
    with pytest.raises(NotFound) as error:
        await world.service.like(BOB, 12345)
    assert error.value.reason == "POST_NOT_FOUND"


async def test_a_negative_post_id_is_not_found_without_asking_the_posts_service(world):
    with pytest.raises(NotFound):
        await world.service.like(BOB, -1)
    assert world.posts.calls == 0


async def test_unlike_takes_one_off_and_a_second_unlike_nothing(world):
    await world.service.like(BOB, POST)
    assert (await world.service.unlike(BOB, POST))[0] is False
    await world.service.unlike(BOB, POST)
    assert world.counters.total(POST, "likes") == 0 and not world.repo.likes
    assert [e[1] for e in world.events.published] == ["like", "unlike"]


async def test_unliking_an_invisible_post_is_not_found(world):
    world.posts.hidden_from[POST] = {BOB}
    with pytest.raises(NotFound):
        await world.service.unlike(BOB, POST)


async def test_like_count_never_shows_below_zero(world):
    world.repo.durable[POST] = Counts(likes=0)
    world.counters.deltas.append((POST, "likes", -1))  # an unlike folded in before its like
    assert (await world.service.unlike(CAROL, POST))[1] == 0


async def test_likers_are_newest_first_and_paged(world):
    for user in (BOB, CAROL, ALICE):
        await world.service.like(user, POST)
    first, token = await world.service.likers(0, POST, 2, "")
    assert first == [ALICE, CAROL] and token
    second, token = await world.service.likers(0, POST, 2, token)
    assert second == [BOB] and token == ""


async def test_likers_leave_out_people_blocked_with_the_viewer(world):
    await world.service.like(BOB, POST)
    await world.service.like(CAROL, POST)
    world.graph.blocks.add(frozenset((ALICE, CAROL)))
    assert (await world.service.likers(ALICE, POST, 10, ""))[0] == [BOB]


async def test_likers_of_an_invisible_post_are_not_found(world):
    world.posts.hidden_from[POST] = {CAROL}
    with pytest.raises(NotFound):
        await world.service.likers(CAROL, POST, 10, "")


@pytest.mark.parametrize("token", ["garbage!", "eyJ0IjogMX0"])  # not base64 JSON; {"t": 1} lacks "id"
async def test_likers_reject_foreign_page_tokens(world, token):
    with pytest.raises(InvalidArgument) as error:
        await world.service.likers(0, POST, 10, token)
    assert error.value.field == "page_token"


async def test_likers_reject_a_negative_page_size(world):
    with pytest.raises(InvalidArgument) as error:
        await world.service.likers(0, POST, -1, "")
    assert error.value.field == "page_size"
