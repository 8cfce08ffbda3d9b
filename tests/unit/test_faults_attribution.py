"""The fault suite's attribution of feed differences to the turn that caused them."""

from __future__ import annotations

from tests.faults import FeedDifference, newly_differing


def test_a_post_lost_earlier_going_missing_from_another_feed_is_not_this_turns_doing():
    before = {"alice": FeedDifference(("p1",), ())}
    now = {"alice": FeedDifference(("p1",), ()), "bob": FeedDifference(("p1",), ())}
    assert newly_differing(now, before) == {}


def test_a_post_no_feed_differed_about_before_is_this_turns_doing():
    before = {"alice": FeedDifference(("p1",), ())}
    now = {"alice": FeedDifference(("p1", "p2"), ()), "bob": FeedDifference((), ("p3",))}
    assert set(newly_differing(now, before)) == {"alice", "bob"}


def test_a_later_post_of_an_author_the_feed_already_lacked_is_not_this_turns_doing():
    before = {"alice": FeedDifference(("p1",), (), post_authors=(("p1", "dave"),))}
    now = {"alice": FeedDifference(("p1", "p2"), (), post_authors=(("p1", "dave"), ("p2", "dave")))}
    assert newly_differing(now, before) == {}


def test_a_feed_that_stops_answering_is_new():
    assert set(newly_differing({"carol": FeedDifference((), (), answered=False)}, {})) == {"carol"}
