"""Folding drained counter shards into one delta per post (hotpath.counters underneath)."""

from __future__ import annotations

import pytest

from services.engagement.counters import Flush, fold
from services.engagement.flusher import by_shard
from services.engagement.service import Counts


def test_fold_sums_each_posts_shards_per_kind():
    posts, likes, comments = fold([Flush("a", {7: [1, 2, -1, 0, 5, 0], 9: [0, 0, 0, 1, 1, 1]})])
    assert (list(posts), list(likes), list(comments)) == ([7, 9], [2, 0], [5, 3])


def test_fold_coalesces_a_post_across_flushes_in_first_seen_order():
    posts, likes, comments = fold([Flush("a", {9: [1, 1], 7: [2, 0]}), Flush("b", {7: [3, 1], 8: [0, 4]})])
    assert (list(posts), list(likes), list(comments)) == ([9, 7, 8], [1, 5, 0], [1, 1, 4])


def test_fold_adds_flushes_drained_with_different_shard_counts():
    _, likes, comments = fold([Flush("a", {7: [1, 1, 1, 1]}), Flush("b", {7: [1] * 16})])
    assert (list(likes), list(comments)) == ([10], [10])


def test_fold_of_nothing_is_empty():
    assert [list(a) for a in fold([])] == [[], [], []]


def test_fold_refuses_to_wrap_outside_int64():
    big = 2**62
    with pytest.raises(OverflowError):
        fold([Flush("a", {7: [big, big, 0, 0]})])


def test_flushes_split_by_the_shard_of_their_posts():
    post_in_1, post_in_2, other_in_1 = 1 << 10, 2 << 10, (5 << 23) | (1 << 10)
    split = by_shard([Flush("a", {post_in_1: [1, 0], post_in_2: [2, 0]}), Flush("b", {other_in_1: [3, 0]})])
    assert split == {1: [Flush("a", {post_in_1: [1, 0]}), Flush("b", {other_in_1: [3, 0]})],
                     2: [Flush("a", {post_in_2: [2, 0]})]}


def test_counts_are_shown_never_below_zero():
    assert Counts(-1, 2).shown() == Counts(0, 2)
