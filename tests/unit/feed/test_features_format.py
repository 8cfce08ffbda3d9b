"""The features string's reading, and the conversion's measure of how far its SCAN has come."""

from __future__ import annotations

from services.feed.features import _scanned, parse_counts


def test_posts_counts_read_from_their_strings_in_order_and_never_below_zero():
    assert parse_counts([b"12:3", None, b"-1:2", b"0:-4", b"7:0"]) == ([12, 0, 0, 0, 7], [3, 0, 2, 0, 0])
    assert parse_counts([b"1:2"]) == ([1], [2])
    assert parse_counts([]) == ([], [])


def test_a_scans_cursors_measure_the_buckets_it_has_passed():
    # Redis walks a table of 8 buckets as 0 4 2 6 1 5 3 7, answering each call with the next bucket.
    cursors = [4, 2, 6, 1, 5, 3, 7, 0]
    assert [_scanned(c) for c in cursors] == [n / 8 for n in range(1, 9)]
