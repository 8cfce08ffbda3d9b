"""Comments' rules: what a comment may say, replies one level deep, who may delete."""

from __future__ import annotations

import pytest

from services.common.errors import InvalidArgument, NotFound, PermissionDenied
from services.engagement.service import Order
from tests.unit.engagement.conftest import ALICE, BOB, CAROL, OTHER_POST, POST


@pytest.mark.parametrize("text", ["", "   \n\t", "x" * 2201, "bad\x00byte"])
async def test_bad_text_is_invalid_and_names_the_field(world, text):
    with pytest.raises(InvalidArgument) as error:
        await world.service.create_comment(BOB, POST, text)
    assert error.value.field == "text"


async def test_text_of_2200_characters_after_trimming_is_accepted(world):
    comment = await world.service.create_comment(BOB, POST, "  " + "é" * 2200 + "\n")
    assert comment.text == "é" * 2200


async def test_mentions_are_parsed_from_the_text(world):
    comment = await world.service.create_comment(BOB, POST, "nice one @Alice and @carol.")
    assert comment.mentions == ["alice", "carol"]


async def test_commenting_on_an_invisible_post_is_post_not_found(world):
    world.posts.hidden_from[POST] = {BOB}
    with pytest.raises(NotFound) as error:
        await world.service.create_comment(BOB, POST, "hi")
    assert error.value.reason == "POST_NOT_FOUND"


async def test_a_comment_counts_one(world):
    await world.service.create_comment(BOB, POST, "hi")
    assert world.counters.total(POST, "comments") == 1


async def test_a_comment_publishes_an_event_for_notifications(world):
    comment = await world.service.create_comment(BOB, POST, "hi @carol")
    assert world.events.published == [("engagement", "comment", {
        "post_id": POST, "user_id": BOB, "author_id": ALICE, "comment_id": comment.id, "parent_comment_id": 0,
        "mentions": ["carol"]})]


async def test_a_reply_counts_on_its_parent(world):
    parent = await world.service.create_comment(BOB, POST, "first")
    await world.service.create_comment(CAROL, POST, "reply", parent.id)
    assert world.repo.comment_rows[parent.id].reply_count == 1


async def test_a_reply_to_an_unknown_comment_is_invalid(world):
    with pytest.raises(InvalidArgument) as error:
        await world.service.create_comment(BOB, POST, "reply", 424242)
    assert error.value.field == "parent_comment_id" and error.value.reason == "PARENT_NOT_FOUND"


async def test_a_reply_to_a_comment_on_another_post_is_invalid(world):
    elsewhere = await world.service.create_comment(BOB, OTHER_POST, "over there")
    with pytest.raises(InvalidArgument) as error:
        await world.service.create_comment(BOB, POST, "reply", elsewhere.id)
    assert error.value.field == "parent_comment_id"


async def test_a_reply_to_a_reply_is_invalid(world):
    parent = await world.service.create_comment(BOB, POST, "first")
    reply = await world.service.create_comment(CAROL, POST, "reply", parent.id)
    with pytest.raises(InvalidArgument) as error:
        await world.service.create_comment(BOB, POST, "deeper", reply.id)
    assert error.value.field == "parent_comment_id" and error.value.reason == "REPLY_TO_REPLY"


async def test_the_comment_author_may_delete_it(world):
    comment = await world.service.create_comment(BOB, POST, "oops")
    await world.service.delete_comment(BOB, comment.id)
    assert comment.id not in world.repo.comment_rows


async def test_the_post_author_may_delete_any_comment_on_the_post(world):
    comment = await world.service.create_comment(BOB, POST, "rude")
    await world.service.delete_comment(ALICE, comment.id)
    assert comment.id not in world.repo.comment_rows


async def test_a_stranger_may_not_delete_a_comment(world):
    comment = await world.service.create_comment(BOB, POST, "mine")
    with pytest.raises(PermissionDenied):
        await world.service.delete_comment(CAROL, comment.id)
    assert comment.id in world.repo.comment_rows


async def test_deleting_a_comment_uncounts_it_with_its_replies(world):
    parent = await world.service.create_comment(BOB, POST, "first")
    for _ in range(3):
        await world.service.create_comment(CAROL, POST, "reply", parent.id)
    await world.service.delete_comment(BOB, parent.id)
    assert world.counters.total(POST, "comments") == 0 and not world.repo.comment_rows


async def test_deleting_a_reply_uncounts_it_on_its_parent(world):
    parent = await world.service.create_comment(BOB, POST, "first")
    reply = await world.service.create_comment(CAROL, POST, "reply", parent.id)
    await world.service.delete_comment(CAROL, reply.id)
    assert world.repo.comment_rows[parent.id].reply_count == 0


async def test_deleting_a_comment_on_an_invisible_post_is_comment_not_found(world):
    comment = await world.service.create_comment(BOB, POST, "hi")
    world.posts.hidden_from[POST] = {BOB}
    with pytest.raises(NotFound) as error:
        await world.service.delete_comment(BOB, comment.id)
    assert error.value.reason == "COMMENT_NOT_FOUND"


async def test_deleting_an_unknown_comment_is_not_found(world):
    with pytest.raises(NotFound):
        await world.service.delete_comment(BOB, 777)


async def test_top_level_comments_list_newest_or_oldest_first_without_replies(world):
    made = [await world.service.create_comment(BOB, POST, f"c{i}") for i in range(3)]
    await world.service.create_comment(CAROL, POST, "reply", made[0].id)
    newest, _ = await world.service.list_comments(0, POST, Order.NEWEST, 10, "")
    oldest, _ = await world.service.list_comments(0, POST, Order.OLDEST, 10, "")
    assert [c.id for c in newest] == [c.id for c in reversed(made)]
    assert [c.id for c in oldest] == [c.id for c in made]


async def test_a_comment_page_token_keeps_the_order_it_was_made_with(world):
    made = [await world.service.create_comment(BOB, POST, f"c{i}") for i in range(3)]
    first, token = await world.service.list_comments(0, POST, Order.OLDEST, 2, "")
    second, token = await world.service.list_comments(0, POST, Order.NEWEST, 2, token)
    assert [c.id for c in first + second] == [c.id for c in made] and token == ""


async def test_comment_page_size_is_coerced_down_to_the_maximum(world):
    for i in range(101):
        await world.service.create_comment(BOB, POST, f"c{i}")
    page, token = await world.service.list_comments(0, POST, Order.NEWEST, 1000, "")
    assert len(page) == 100 and token


async def test_comments_by_people_blocked_with_the_viewer_are_left_out(world):
    await world.service.create_comment(BOB, POST, "hello")
    await world.service.create_comment(CAROL, POST, "hi")
    world.graph.blocks.add(frozenset((ALICE, BOB)))
    assert [c.author_id for c in (await world.service.list_comments(ALICE, POST, Order.NEWEST, 10, ""))[0]] == [CAROL]


async def test_replies_list_oldest_first_and_page(world):
    parent = await world.service.create_comment(BOB, POST, "first")
    replies = [await world.service.create_comment(CAROL, POST, f"r{i}", parent.id) for i in range(3)]
    first, token = await world.service.list_replies(0, parent.id, 2, "")
    second, token = await world.service.list_replies(0, parent.id, 2, token)
    assert [c.id for c in first + second] == [r.id for r in replies] and token == ""


async def test_replies_of_a_comment_on_an_invisible_post_are_not_found(world):
    parent = await world.service.create_comment(BOB, POST, "first")
    world.posts.hidden_from[POST] = {CAROL}
    with pytest.raises(NotFound):
        await world.service.list_replies(CAROL, parent.id, 10, "")
