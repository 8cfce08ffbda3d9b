"""hotpath.counters: coalescing counter events and summing sharded counters."""

from __future__ import annotations

import random
from array import array
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hotpath.strategies import INT64_MAX, INT64_MIN

int64s = st.integers(INT64_MIN, INT64_MAX)
# Near the int64 limits, or small: overflow is reachable but not everywhere.
deltas = st.one_of(st.integers(-5, 5), st.integers(INT64_MAX - 3, INT64_MAX), st.integers(INT64_MIN, INT64_MIN + 3))


def outcome(call, *args, **kwargs):
    """The result, or the type of the exception raised."""
    try:
        return call(*args, **kwargs)
    except (OverflowError, ValueError) as error:
        return type(error)


# --- coalesce ------------------------------------------------------------------------------


def test_coalesce_totals_each_key_in_first_seen_order(counters_impl: ModuleType) -> None:
    keys, totals = counters_impl.coalesce(array("q", [3, 1, 3, 2, 1]), array("q", [1, 1, 1, 1, -1]))
    assert (keys.tolist(), totals.tolist()) == ([3, 1, 2], [2, 0, 1])


def test_coalesce_returns_int64_arrays(counters_impl: ModuleType) -> None:
    keys, totals = counters_impl.coalesce(array("q", [3]), array("q", [1]))
    assert (type(keys), keys.typecode, type(totals), totals.typecode) == (array, "q", array, "q")


def test_coalesce_keeps_negative_totals(counters_impl: ModuleType) -> None:
    _, totals = counters_impl.coalesce([7, 7], [-1, -1])
    assert totals.tolist() == [-2]


def test_coalesce_can_drop_zero_totals(counters_impl: ModuleType) -> None:
    keys, totals = counters_impl.coalesce([3, 1, 3, 2, 1], [1, 1, 1, 1, -1], drop_zero=True)
    assert (keys.tolist(), totals.tolist()) == ([3, 2], [2, 1])


def test_coalesce_of_no_events_is_empty(counters_impl: ModuleType) -> None:
    keys, totals = counters_impl.coalesce(array("q"), array("q"))
    assert (len(keys), len(totals)) == (0, 0)


@pytest.mark.parametrize(("first", "second"), [(INT64_MAX, 1), (INT64_MIN, -1)])
def test_coalesce_total_outside_int64_raises(counters_impl: ModuleType, first: int, second: int) -> None:
    with pytest.raises(OverflowError):
        counters_impl.coalesce([5, 6, 5], [first, 1, second])


def test_coalesce_total_that_leaves_int64_and_returns_is_exact(counters_impl: ModuleType) -> None:
    _, totals = counters_impl.coalesce([5] * 5, [INT64_MAX, INT64_MAX, 3, INT64_MIN, INT64_MIN])
    assert totals.tolist() == [1]


def test_coalesce_of_unequal_lengths_is_rejected(counters_impl: ModuleType) -> None:
    with pytest.raises(ValueError):
        counters_impl.coalesce([1, 2], [1])


def test_coalesce_of_many_keys_keeps_first_seen_order(counters_impl: ModuleType) -> None:
    rng = random.Random(5)
    distinct = rng.sample(range(-(10**15), 10**15), 5_000)
    keys = array("q", distinct + rng.choices(distinct, k=20_000))
    result_keys, totals = counters_impl.coalesce(keys, array("q", [1] * len(keys)))
    assert result_keys.tolist() == distinct and sum(totals) == len(keys)


@settings(max_examples=200, deadline=None)
@given(
    events=st.lists(st.tuples(st.one_of(st.integers(-3, 3), int64s), deltas), max_size=60),
    drop_zero=st.booleans(),
)
def test_implementations_coalesce_alike(
    counters_pair: tuple[ModuleType, ModuleType], events: list[tuple[int, int]], drop_zero: bool
) -> None:
    keys = array("q", [key for key, _ in events])
    values = array("q", [delta for _, delta in events])
    reference, compiled = counters_pair
    assert outcome(compiled.coalesce, keys, values, drop_zero=drop_zero) == outcome(
        reference.coalesce, keys, values, drop_zero=drop_zero
    )


# --- sum_sharded ---------------------------------------------------------------------------


def test_sum_sharded_adds_a_fixed_number_of_shards_per_key(counters_impl: ModuleType) -> None:
    totals = counters_impl.sum_sharded(array("q", [1, 2, 3, 4, -5, 6]), 3)
    assert totals.tolist() == [6, 5]


def test_sum_sharded_adds_a_count_of_shards_per_key(counters_impl: ModuleType) -> None:
    totals = counters_impl.sum_sharded(array("q", [1, 2, 3, 4]), array("q", [1, 0, 3]))
    assert totals.tolist() == [1, 0, 9]


def test_sum_sharded_total_outside_int64_raises(counters_impl: ModuleType) -> None:
    with pytest.raises(OverflowError):
        counters_impl.sum_sharded([1, 1, INT64_MAX, 1], 2)


def test_sum_sharded_total_that_leaves_int64_and_returns_is_exact(counters_impl: ModuleType) -> None:
    assert counters_impl.sum_sharded([INT64_MAX, 5, -10], 3).tolist() == [INT64_MAX - 5]


@pytest.mark.parametrize(
    ("values", "shards_per_key"),
    [([1, 2, 3], 2), ([1, 2], 0), ([1, 2], [1, 2]), ([1, 2], [3, -1]), ([1, 2], [1])],
    ids=["not-a-multiple", "zero-shards", "counts-too-many", "negative-count", "counts-too-few"],
)
def test_sum_sharded_of_a_mismatched_shape_is_rejected(
    counters_impl: ModuleType, values: list[int], shards_per_key: object
) -> None:
    with pytest.raises(ValueError):
        counters_impl.sum_sharded(values, shards_per_key)


@settings(max_examples=200, deadline=None)
@given(
    groups=st.lists(st.lists(deltas, max_size=5), max_size=20),
    uniform=st.booleans(),
)
def test_implementations_sum_shards_alike(
    counters_pair: tuple[ModuleType, ModuleType], groups: list[list[int]], uniform: bool
) -> None:
    if uniform:
        width = max((len(group) for group in groups), default=1) or 1
        groups = [(group + [0] * width)[:width] for group in groups]
    values = array("q", [value for group in groups for value in group])
    shards_per_key = width if uniform else array("q", [len(group) for group in groups])
    reference, compiled = counters_pair
    assert outcome(compiled.sum_sharded, values, shards_per_key) == outcome(
        reference.sum_sharded, values, shards_per_key
    )
