"""hotpath.merge: chronological and ranked feed pages, their cursors, and the two
implementations agreeing."""

from __future__ import annotations

import math
from array import array
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotpath import merge
from hotpath._merge_common import Page, PostFeatures, RankedCursor, Weights, pack_lists
from tests.hotpath.strategies import FEED_NOW_MS, Feed, compose_id, feeds

ONLY_INTEREST = Weights(interest=1.0, recency=0.0, relationship=0.0, engagement=0.0)
ONLY_RECENCY = Weights(interest=0.0, recency=1.0, relationship=0.0, engagement=0.0)
ONLY_ENGAGEMENT = Weights(interest=0.0, recency=0.0, relationship=0.0, engagement=1.0)


def chronological(impl: ModuleType, lists: list[list[int]], **options: object) -> Page:
    ids, offsets = pack_lists(lists)
    options.setdefault("limit", 100)
    return impl.chronological_page(ids, offsets, **options)


def ranked(
    impl: ModuleType,
    lists: list[list[int]],
    features: dict[int, PostFeatures] | None = None,
    **options: object,
) -> Page:
    ids, offsets = pack_lists(lists)
    columns = merge.pack_features(ids, features or {})
    options.setdefault("limit", 100)
    options.setdefault("now_ms", FEED_NOW_MS)
    return impl.ranked_page(ids, offsets, *columns, **options)


def every_chronological_page(impl: ModuleType, feed: Feed, limit: int) -> list[array]:
    pages, before_id = [], None
    for _ in range(len(feed.ids) + 1):
        page = impl.chronological_page(
            feed.ids, feed.offsets, limit=limit, before_id=before_id, excluded=feed.excluded
        )
        pages.append(page.ids)
        if page.next_cursor is None:
            return pages
        before_id = page.next_cursor
    raise AssertionError("the feed did not end")


def every_ranked_page(
    impl: ModuleType, feed: Feed, limit: int, window: int, exclude_served: bool = False
) -> list[tuple[array, RankedCursor | None]]:
    pages, cursor, excluded = [], None, list(feed.excluded)
    for _ in range(len(feed.ids) + 1):
        page = impl.ranked_page(
            feed.ids,
            feed.offsets,
            *feed.features,
            limit=limit,
            cursor=cursor,
            excluded=excluded,
            now_ms=FEED_NOW_MS,
            weights=feed.weights,
            window=window,
        )
        pages.append(page)
        if page.next_cursor is None:
            return pages
        cursor = RankedCursor.decode(page.next_cursor.encode())
        if exclude_served:
            excluded.extend(page.ids)
    raise AssertionError("the feed did not end")


# --- chronological -------------------------------------------------------------------------


def test_chronological_merges_the_lists_newest_first(merge_impl: ModuleType) -> None:
    page = chronological(merge_impl, [[9, 5, 1], [8, 6, 2]])
    assert page.ids.tolist() == [9, 8, 6, 5, 2, 1]


def test_chronological_serves_a_repeated_id_once(merge_impl: ModuleType) -> None:
    page = chronological(merge_impl, [[9, 5, 5], [9, 4]])
    assert page.ids.tolist() == [9, 5, 4]


def test_chronological_leaves_out_excluded_ids(merge_impl: ModuleType) -> None:
    page = chronological(merge_impl, [[9, 5, 1], [8, 6]], excluded=[8, 5, 77])
    assert page.ids.tolist() == [9, 6, 1]


def test_chronological_serves_only_ids_below_before_id(merge_impl: ModuleType) -> None:
    page = chronological(merge_impl, [[9, 6, 5], [8, 6, 2]], before_id=6)
    assert page.ids.tolist() == [5, 2]


def test_chronological_page_stops_at_the_limit_with_the_last_id_as_cursor(
    merge_impl: ModuleType,
) -> None:
    page = chronological(merge_impl, [[9, 5, 1], [8, 6, 2]], limit=3)
    assert (page.ids.tolist(), page.next_cursor) == ([9, 8, 6], 6)


def test_chronological_cursor_is_none_when_the_feed_ends_on_a_full_page(
    merge_impl: ModuleType,
) -> None:
    page = chronological(merge_impl, [[9, 5], [8]], limit=3, excluded=[1])
    assert (page.ids.tolist(), page.next_cursor) == ([9, 8, 5], None)


def test_chronological_cursor_is_none_when_only_excluded_ids_remain(merge_impl: ModuleType) -> None:
    page = chronological(merge_impl, [[9, 5, 1]], limit=2, excluded=[1])
    assert page.next_cursor is None


@pytest.mark.parametrize("lists", [[], [[], []]])
def test_no_candidates_give_an_empty_last_page(merge_impl: ModuleType, lists: list) -> None:
    page = chronological(merge_impl, lists)
    assert (page.ids.tolist(), page.next_cursor) == ([], None)


def test_read_only_buffers_are_accepted(merge_impl: ModuleType) -> None:
    ids = memoryview(array("q", [9, 5, 8]).tobytes()).cast("q")
    offsets = memoryview(array("q", [0, 2, 3]).tobytes()).cast("q")
    assert ids.readonly
    page = merge_impl.chronological_page(ids, offsets, limit=10)
    assert page.ids.tolist() == [9, 8, 5]


def test_plain_lists_are_accepted(merge_impl: ModuleType) -> None:
    page = merge_impl.chronological_page([9, 5, 8], [0, 2, 3], limit=10, excluded={5})
    assert page.ids.tolist() == [9, 8]


@settings(max_examples=150, deadline=None)
@given(feed=feeds(), limit=st.integers(1, 7))
def test_chronological_pages_serve_every_eligible_post_once_newest_first(
    merge_impl: ModuleType, feed: Feed, limit: int
) -> None:
    served = [post_id for page in every_chronological_page(merge_impl, feed, limit) for post_id in page]
    assert served == sorted(feed.eligible(), reverse=True)


# --- ranked --------------------------------------------------------------------------------


def test_ranked_orders_posts_by_score(merge_impl: ModuleType) -> None:
    features = {9: PostFeatures(interest=0.1), 8: PostFeatures(interest=0.9), 7: PostFeatures(interest=0.5)}
    page = ranked(merge_impl, [[9, 8, 7]], features, weights=ONLY_INTEREST)
    assert page.ids.tolist() == [8, 7, 9]


def test_ranked_ties_put_the_higher_id_first(merge_impl: ModuleType) -> None:
    page = ranked(merge_impl, [[3, 1], [4, 2]], weights=ONLY_INTEREST)
    assert page.ids.tolist() == [4, 3, 2, 1]


def test_ranked_recency_halves_every_half_life(merge_impl: ModuleType) -> None:
    half_life_ms = 3_600_000
    weights = Weights(interest=0, recency=1, relationship=0, engagement=0, half_life_ms=half_life_ms)
    newer = compose_id(FEED_NOW_MS, 0, 0)
    older = compose_id(FEED_NOW_MS - half_life_ms, 0, 0)
    oldest = compose_id(FEED_NOW_MS - 2 * half_life_ms, 0, 0)
    page = ranked(merge_impl, [[newer, older, oldest]], limit=2, weights=weights)
    assert page.next_cursor.last_score == 0.5


def test_ranked_engagement_is_log1p_of_likes_plus_comments(merge_impl: ModuleType) -> None:
    features = {2: PostFeatures(likes=3, comments=4), 1: PostFeatures(likes=1)}
    page = ranked(merge_impl, [[2, 1]], features, limit=1, weights=ONLY_ENGAGEMENT)
    assert page.next_cursor.last_score == math.log1p(7)


def test_ranked_negative_counts_count_as_zero(merge_impl: ModuleType) -> None:
    features = {2: PostFeatures(likes=-5, comments=-1), 1: PostFeatures()}
    page = ranked(merge_impl, [[2, 1]], features, limit=1, weights=ONLY_ENGAGEMENT)
    assert page.next_cursor.last_score == 0.0


def test_ranked_takes_the_features_of_the_first_list_holding_a_post(merge_impl: ModuleType) -> None:
    ids, offsets = pack_lists([[5, 3], [5]])
    interest = array("d", [0.1, 0.5, 0.9])  # post 5 is 0.1 in list 0, 0.9 in list 1
    zeros, counts = array("d", [0.0] * 3), array("q", [0] * 3)
    page = merge_impl.ranked_page(
        ids, offsets, zeros, counts, counts, interest, limit=10, now_ms=FEED_NOW_MS,
        weights=ONLY_INTEREST,
    )
    assert page.ids.tolist() == [3, 5]


def test_ranked_ranks_only_within_the_window(merge_impl: ModuleType) -> None:
    features = {9: PostFeatures(interest=0.1), 8: PostFeatures(interest=0.2), 7: PostFeatures(interest=1.0)}
    page = ranked(merge_impl, [[9, 8, 7]], features, limit=2, window=2, weights=ONLY_INTEREST)
    assert page.ids.tolist() == [8, 9]


def test_ranked_page_continues_into_the_next_window(merge_impl: ModuleType) -> None:
    features = {9: PostFeatures(interest=0.1), 8: PostFeatures(interest=0.2), 7: PostFeatures(interest=1.0)}
    page = ranked(merge_impl, [[9, 8, 7, 6]], features, limit=3, window=2, weights=ONLY_INTEREST)
    assert page.ids.tolist() == [8, 9, 7]


def test_ranked_cursor_is_none_at_the_end(merge_impl: ModuleType) -> None:
    page = ranked(merge_impl, [[9, 8], [7]], limit=3, excluded=[6])
    assert page.next_cursor is None


def test_ranked_next_page_continues_within_the_window(merge_impl: ModuleType) -> None:
    features = {9: PostFeatures(interest=0.1), 8: PostFeatures(interest=0.9), 7: PostFeatures(interest=0.5)}
    first = ranked(merge_impl, [[9, 8, 7]], features, limit=1, weights=ONLY_INTEREST)
    second = ranked(merge_impl, [[9, 8, 7]], features, limit=5, weights=ONLY_INTEREST, cursor=first.next_cursor)
    assert (first.ids.tolist(), second.ids.tolist()) == ([8], [7, 9])


def test_ranked_cursor_pins_the_clock_of_the_first_page(merge_impl: ModuleType) -> None:
    hour_ms = 3_600_000
    weights = Weights(interest=0, recency=1, relationship=0, engagement=0, half_life_ms=hour_ms)
    lists = [[compose_id(FEED_NOW_MS - age * hour_ms, 0, 0) for age in range(3)]]
    first = ranked(merge_impl, lists, limit=1, weights=weights)
    later = ranked(
        merge_impl, lists, limit=1, weights=weights, cursor=first.next_cursor,
        now_ms=FEED_NOW_MS + hour_ms,
    )
    assert later.next_cursor.last_score == 0.5  # an hour old at the first page's time


def test_ranked_cursor_leaves_out_posts_newer_than_its_window(merge_impl: ModuleType) -> None:
    first = ranked(merge_impl, [[9, 8, 7, 6]], limit=2, window=3)
    rest = ranked(merge_impl, [[12, 11], [9, 8, 7, 6]], limit=10, window=3, cursor=first.next_cursor)
    assert sorted(first.ids.tolist() + rest.ids.tolist()) == [6, 7, 8, 9]


@settings(max_examples=150, deadline=None)
@given(feed=feeds(), limit=st.integers(1, 7), window=st.integers(1, 9))
def test_ranked_pages_serve_every_eligible_post_exactly_once(
    merge_impl: ModuleType, feed: Feed, limit: int, window: int
) -> None:
    pages = every_ranked_page(merge_impl, feed, limit, window)
    served = [post_id for page in pages for post_id in page.ids]
    assert sorted(served) == sorted(feed.eligible())


@settings(max_examples=100, deadline=None)
@given(feed=feeds(), limit=st.integers(1, 7), window=st.integers(1, 9))
def test_ranked_pages_are_full_until_the_last(
    merge_impl: ModuleType, feed: Feed, limit: int, window: int
) -> None:
    pages = every_ranked_page(merge_impl, feed, limit, window)
    assert all(len(page.ids) == limit for page in pages[:-1])


@settings(max_examples=100, deadline=None)
@given(feed=feeds(), limit=st.integers(1, 7), window=st.integers(1, 9))
def test_ranked_pages_survive_served_posts_becoming_excluded(
    merge_impl: ModuleType, feed: Feed, limit: int, window: int
) -> None:
    pages = every_ranked_page(merge_impl, feed, limit, window, exclude_served=True)
    served = [post_id for page in pages for post_id in page.ids]
    assert sorted(served) == sorted(feed.eligible())


# --- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ids", "offsets"),
    [([1, 2], []), ([9, 8], [0, 3]), ([9, 8], [-1, 2]), ([9, 8], [0, 2, 1])],
    ids=["no-offsets", "past-the-end", "negative", "decreasing"],
)
def test_malformed_offsets_are_rejected(merge_impl: ModuleType, ids: list, offsets: list) -> None:
    with pytest.raises(ValueError):
        merge_impl.chronological_page(ids, offsets, limit=5)


def test_limit_below_one_is_rejected(merge_impl: ModuleType) -> None:
    with pytest.raises(ValueError):
        merge_impl.chronological_page([9], [0, 1], limit=0)


def test_window_below_one_is_rejected(merge_impl: ModuleType) -> None:
    with pytest.raises(ValueError):
        ranked(merge_impl, [[9]], window=0)


def test_feature_column_of_the_wrong_length_is_rejected(merge_impl: ModuleType) -> None:
    with pytest.raises(ValueError):
        merge_impl.ranked_page([9, 8], [0, 2], [0.0], [0, 0], [0, 0], [0.0, 0.0], limit=5)


@pytest.mark.parametrize("half_life_ms", [0, -1, math.nan, math.inf])
def test_weights_need_a_positive_finite_half_life(half_life_ms: float) -> None:
    with pytest.raises(ValueError):
        Weights(half_life_ms=half_life_ms)


# --- the cursor token ----------------------------------------------------------------------


@given(
    newest=st.integers(0, 2**63 - 1),
    ranked_at_ms=st.integers(-(2**63), 2**63 - 1),
    last_score=st.floats(allow_nan=False, allow_infinity=False),
    data=st.data(),
)
def test_cursor_token_round_trips(
    newest: int, ranked_at_ms: int, last_score: float, data: st.DataObject
) -> None:
    last_id = data.draw(st.integers(0, newest))
    oldest = data.draw(st.integers(0, last_id))
    cursor = RankedCursor(newest, oldest, ranked_at_ms, last_score, last_id)
    assert RankedCursor.decode(cursor.encode()) == cursor


def test_cursor_token_is_url_safe() -> None:
    token = RankedCursor(2**62, 2**61, 1, -1.5e300, 2**61 + 1).encode()
    assert token.isascii() and set(token) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    )


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not a token",
        "ÿ",
        RankedCursor(9, 1, 0, 1.0, 5).encode()[:-2],
        RankedCursor(9, 1, 0, 1.0, 5).encode() + "AA",
        RankedCursor(5, 9, 0, 1.0, 7).encode(),  # oldest above newest
        RankedCursor(9, 1, 0, math.nan, 5).encode(),
    ],
)
def test_malformed_cursor_token_is_rejected(token: str) -> None:
    with pytest.raises(ValueError):
        RankedCursor.decode(token)


# --- the convenience wrappers (through the selector) ---------------------------------------


def test_chronological_feed_takes_plain_lists() -> None:
    assert merge.chronological_feed([[9, 5], [8]], limit=2, excluded={8}) == ([9, 5], None)


def test_ranked_feed_takes_a_feature_dict() -> None:
    features = {9: PostFeatures(interest=0.2), 8: PostFeatures(interest=0.7)}
    ids, cursor = merge.ranked_feed(
        [[9], [8, 7]], features, limit=2, now_ms=FEED_NOW_MS, weights=ONLY_INTEREST
    )
    assert (ids, cursor.last_id) == ([8, 9], 9)


# --- candidates from post lists' members ------------------------------------------------------


def members(*pairs: tuple[int, int]) -> list[bytes]:
    return [f"{post}:{author}".encode() for post, author in pairs]


def test_members_give_the_newest_distinct_posts_with_their_authors(merge_impl: ModuleType) -> None:
    lists = [[b"0", *members((5, 1), (3, 2))], [*members((4, 9), (5, 7)), b"0"], members((2, 2))]
    posts, authors = merge_impl.newest_members(lists, limit=3)
    assert (posts.tolist(), authors.tolist()) == ([5, 4, 3], [1, 9, 2])  # post 5's author from its first list


def test_members_below_the_bound_and_not_by_excluded_authors(merge_impl: ModuleType) -> None:
    lists = [members((6, 1), (5, 1), (4, 2)), members((3, 3), (2, 2))]
    posts, authors = merge_impl.newest_members(lists, limit=10, before_id=6, excluded_authors={2})
    assert (posts.tolist(), authors.tolist()) == ([5, 3], [1, 3])


def test_members_in_any_order_and_none_at_all(merge_impl: ModuleType) -> None:
    assert merge_impl.newest_members([members((1, 1), (9, 1), (5, 1))], limit=2)[0].tolist() == [9, 5]
    assert [a.tolist() for a in merge_impl.newest_members([[], [b"0"]], limit=2)] == [[], []]
    assert merge_impl.newest_members(iter([iter(members((2**63 - 1, 1)))]), limit=1)[0].tolist() == [2**63 - 1]


@pytest.mark.parametrize("member", [b"x", b"1:", b":1", b"1:2:3", b" 1:2", b"1:2 ", b"+1:2", b"1_0:2", b"",
                                    b"9223372036854775808:1", b"1:99999999999999999999", "1:2".encode("utf-16")])
def test_a_malformed_member_is_rejected(merge_impl: ModuleType, member: bytes) -> None:
    with pytest.raises(ValueError, match="malformed post-list member"):
        merge_impl.newest_members([members((1, 1)), [member]], limit=5)


def test_a_member_that_is_not_bytes_is_rejected(merge_impl: ModuleType) -> None:
    with pytest.raises(TypeError, match="bytes"):
        merge_impl.newest_members([["1:2"]], limit=5)


def test_members_need_a_limit_of_one_or_more(merge_impl: ModuleType) -> None:
    with pytest.raises(ValueError, match="limit"):
        merge_impl.newest_members([members((1, 1))], limit=0)


@settings(max_examples=200, deadline=None)
@given(lists=st.lists(st.lists(st.tuples(st.integers(1, 40), st.integers(1, 6)), max_size=25), max_size=6),
       limit=st.integers(1, 30), before_id=st.none() | st.integers(1, 45),
       excluded=st.sets(st.integers(1, 6), max_size=3))
def test_members_match_a_plain_model(merge_impl: ModuleType, lists: list, limit: int, before_id: int | None,
                                     excluded: set[int]) -> None:
    first: dict[int, int] = {}
    for pairs in lists:
        for post, author in pairs:
            if (before_id is None or post < before_id) and author not in excluded:
                first.setdefault(post, author)
    newest = sorted(first, reverse=True)[:limit]
    posts, authors = merge_impl.newest_members([[b"0", *members(*pairs)] for pairs in lists], limit=limit,
                                               before_id=before_id, excluded_authors=excluded)
    assert (posts.tolist(), authors.tolist()) == (newest, [first[p] for p in newest])


# --- the two implementations agree ---------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(feed=feeds(), limit=st.integers(1, 7))
def test_implementations_give_the_same_chronological_pages(
    merge_pair: tuple[ModuleType, ModuleType], feed: Feed, limit: int
) -> None:
    reference, compiled = merge_pair
    assert every_chronological_page(compiled, feed, limit) == every_chronological_page(
        reference, feed, limit
    )


@settings(max_examples=150, deadline=None)
@given(feed=feeds(), limit=st.integers(1, 7), window=st.integers(1, 9))
def test_implementations_give_the_same_ranked_pages_and_cursors(
    merge_pair: tuple[ModuleType, ModuleType], feed: Feed, limit: int, window: int
) -> None:
    reference, compiled = merge_pair
    assert every_ranked_page(compiled, feed, limit, window) == every_ranked_page(
        reference, feed, limit, window
    )
