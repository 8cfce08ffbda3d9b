"""Saves' rules and the per-post state the post hydrator asks for."""

from __future__ import annotations

import pytest

from services.common.errors import InvalidArgument, NotFound
from services.engagement.service import Counts
from tests.unit.engagement.conftest import ALICE, BOB, CAROL, OTHER_POST, POST


async def test_saving_twice_keeps_one_save(world):
    assert await world.service.save(BOB, POST) is True
    await world.service.save(BOB, POST)
    assert list(world.repo.saves) == [(BOB, POST)]


async def test_unsave_removes_the_save(world):
    await world.service.save(BOB, POST)
    assert await world.service.unsave(BOB, POST) is False
    assert not world.repo.saves


async def test_saving_an_invisible_post_is_not_found(world):
    world.posts.hidden_from[POST] = {BOB}
    with pytest.raises(NotFound):
        await world.service.save(BOB, POST)


async def test_saved_posts_are_newest_saved_first_and_only_mine(world):
    await world.service.save(BOB, POST)
    await world.service.save(BOB, OTHER_POST)
    await world.service.save(CAROL, POST)
    first, token = await world.service.saved(BOB, 1, "")
    second, token = await world.service.saved(BOB, 1, token)
    assert first + second == [OTHER_POST, POST] and token == ""


async def test_states_carry_counts_and_the_viewers_like_and_save(world):
    world.repo.durable[POST] = Counts(10, 3)
    await world.service.like(BOB, POST)
    await world.service.save(BOB, OTHER_POST)
    states = await world.service.states(BOB, [POST, OTHER_POST])
    assert [(s.post_id, s.like_count, s.comment_count, s.liked_by_me, s.saved_by_me) for s in states] == [
        (POST, 11, 3, True, False), (OTHER_POST, 0, 0, False, True)]


async def test_a_second_read_of_the_same_states_asks_the_rows_nothing(world):
    await world.service.states(BOB, [POST, OTHER_POST])
    reads = world.repo.state_reads
    await world.service.states(BOB, [OTHER_POST, POST])
    assert world.repo.state_reads == reads


async def test_likes_and_saves_after_a_cached_answer_show_at_once(world):
    assert [(s.liked_by_me, s.saved_by_me) for s in await world.service.states(BOB, [POST])] == [(False, False)]
    await world.service.like(BOB, POST)
    await world.service.save(BOB, POST)
    assert [(s.liked_by_me, s.saved_by_me) for s in await world.service.states(BOB, [POST])] == [(True, True)]
    await world.service.unlike(BOB, POST)
    await world.service.unsave(BOB, POST)
    assert [(s.liked_by_me, s.saved_by_me) for s in await world.service.states(BOB, [POST])] == [(False, False)]


async def test_states_for_a_signed_out_viewer_like_and_save_nothing(world):
    await world.service.like(BOB, POST)
    assert [(s.liked_by_me, s.saved_by_me) for s in await world.service.states(0, [POST])] == [(False, False)]


async def test_states_answer_once_per_post_in_the_order_asked(world):
    states = await world.service.states(ALICE, [OTHER_POST, POST, OTHER_POST])
    assert [s.post_id for s in states] == [OTHER_POST, POST]


async def test_states_for_more_than_500_posts_are_refused(world):
    with pytest.raises(InvalidArgument) as error:
        await world.service.states(ALICE, list(range(1, 502)))
    assert error.value.field == "post_ids"


async def test_states_do_not_ask_the_posts_service_about_visibility(world):
    await world.service.states(ALICE, [POST])
    assert world.posts.calls == 0
