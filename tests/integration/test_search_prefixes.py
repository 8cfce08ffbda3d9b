"""Autocomplete's prefix index against the real Redis: prefixes, one-edit typos, followed accounts
wherever they rank, renames, removal, follower counts and the cut to the most followed."""

from __future__ import annotations

import secrets

import pytest

from services.search.prefixes import CAP, MAX_PREFIX, RedisPrefixIndex, one_edit, prefixes, words


@pytest.fixture
async def index(client):
    """An index of its own (its own hash tag), emptied afterwards."""
    prefix_index = RedisPrefixIndex(client, tag=f"ac-test-{secrets.token_hex(4)}")
    yield prefix_index
    await prefix_index.clear()


def ids(found) -> list[int]:
    return [c.id for c in found]


def test_a_user_is_found_by_username_its_parts_and_display_name_words_folded():
    assert words("Zoe_Quill", "Zoë Ångström") == ["zoe_quill", "zoe", "quill", "angstrom"]
    assert prefixes(["abc"]) == ["a", "ab", "abc"]
    assert max(len(p) for p in prefixes(["x" * 40])) == MAX_PREFIX


def test_one_edit_covers_a_swap_a_missing_an_extra_and_a_wrong_letter():
    variants = set(one_edit("jhon"))
    assert {"john", "jon", "jhonn", "jhan"} <= variants and "jhon" not in variants


async def test_a_prefix_finds_the_most_followed_first_and_how_it_matched(index):
    await index.put(1, "ada_lovelace", "Ada L", 5)
    await index.put(2, "adam", "Adam Smith", 50)
    await index.put(3, "bob", "Ada Byron", 1)
    found = await index.match("ada", [], 20)
    assert ids(found) == [2, 1, 3]
    assert [c.match for c in found] == [3.0, 3.0, 2.5]  # bob is found by a word of his name
    assert ids(await index.match("lovel", [], 20)) == [1]
    assert await index.match("zzz", [], 20) == []


async def test_a_typo_finds_the_name_one_edit_away_only_when_too_few_match_as_typed(index):
    await index.put(1, "john_appleseed", "John A", 0)
    await index.put(2, "johanna", "Johanna K", 0)
    found = await index.match("jhon", [], 20)
    assert ids(found) == [1] and found[0].match == 1.5
    await index.put(3, "margarethe", "Margarethe Hoffmann", 0)
    assert ids(await index.match("margarete", [], 20)) == [3]  # a letter missing
    assert sorted(ids(await index.match("jo", [], 20))) == [1, 2]
    assert ids(await index.match("jon", [], 20)) == []  # under 4 characters: no typos


async def test_a_query_longer_than_the_indexed_prefixes_keeps_only_names_that_go_on_so(index):
    await index.put(1, "abcdefghijklmno", "", 0)
    await index.put(2, "abcdefghijklzzz", "", 9)  # the same first 12 letters, then two edits away
    assert ids(await index.match("abcdefghijklmn", [], 20)) == [1]
    assert ids(await index.match("abcdefghijklmnx", [], 20)) == [1]  # a wrong last letter


async def test_a_followed_account_is_found_though_the_prefix_holds_only_the_most_followed(index):
    for i in range(CAP + 10):
        await index.put(100 + i, f"sam{i:03d}", "", 1000 + i)
    await index.put(7, "sam_quiet", "", 0)
    assert 7 not in ids(await index.match("sam", [], 20))
    found = await index.match("sam", [7, 8], 20)
    assert 7 in ids(found) and 8 not in ids(found)
    assert ids(await index.match("quie", [7], 20)) == [7]  # by a part of the username
    assert ids(await index.match("xyz", [7], 20)) == []  # followed, but not by that name


async def test_a_rename_leaves_the_old_prefixes_and_a_removal_leaves_nothing(index):
    await index.put(1, "oldname", "First Word", 0)
    await index.put(1, "newname", "Second Word", 0)
    assert await index.match("oldn", [], 20) == [] and await index.match("first", [], 20) == []
    assert ids(await index.match("newn", [], 20)) == [1] and ids(await index.match("word", [], 20)) == [1]
    await index.remove(1)
    assert await index.match("newn", [], 20) == [] and await index.match("newn", [1], 20) == []


async def test_a_new_follower_count_reorders_and_brings_a_user_into_a_cut_prefix(index):
    for i in range(CAP):
        await index.put(100 + i, f"kim{i:03d}", "", 10)
    await index.put(1, "kimberly", "", 0)
    assert 1 not in ids(await index.match("kim", [], CAP + 5))
    await index.rescore(1, 11)
    found = await index.match("kim", [], 20)
    assert found[0].id == 1 and found[0].popularity == 11
    await index.rescore(99, 5)  # a user the index does not hold: nothing happens
    assert 99 not in ids(await index.match("kim", [], CAP + 5))


async def test_ready_only_after_marked_and_not_after_a_clear(index):
    assert not await index.ready()
    await index.mark_ready()
    index._ready = (False, 0.0)  # past the cached answer
    assert await index.ready()
    await index.put(1, "someone", "", 0)
    await index.clear()
    index._ready = (False, 0.0)
    assert not await index.ready() and await index.match("some", [], 20) == []


async def test_a_redis_that_does_not_answer_is_not_ready():
    import redis.asyncio as aioredis

    unreachable = aioredis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=1)
    try:
        assert not await RedisPrefixIndex(unreachable).ready()  # autocomplete asks PostgreSQL then
    finally:
        await unreachable.aclose()
