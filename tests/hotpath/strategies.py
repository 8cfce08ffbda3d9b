"""Helpers and Hypothesis strategies shared by the hot-path tests."""

from __future__ import annotations

from array import array
from dataclasses import dataclass

from hypothesis import strategies as st

from hotpath._ids_common import (
    EPOCH_MS,
    MAX_SEQUENCE,
    MAX_SHARD,
    MAX_TIMESTAMP_OFFSET_MS,
    SEQUENCE_BITS,
    TIMESTAMP_SHIFT,
)
from hotpath._merge_common import Weights, pack_lists

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1

# A fixed "now" for feeds: ten days into the id epoch.
FEED_NOW_MS = EPOCH_MS + 10 * 86_400_000


def compose_id(timestamp_ms: int, shard: int, sequence: int) -> int:
    return ((timestamp_ms - EPOCH_MS) << TIMESTAMP_SHIFT) | (shard << SEQUENCE_BITS) | sequence


unix_timestamps = st.integers(EPOCH_MS, EPOCH_MS + MAX_TIMESTAMP_OFFSET_MS)
shards = st.integers(0, MAX_SHARD)
sequences = st.integers(0, MAX_SEQUENCE)
valid_ids = st.integers(0, INT64_MAX)


@st.composite
def feed_post_ids(draw: st.DrawFn) -> int:
    """A post created in the ten days before FEED_NOW_MS."""
    created_ms = draw(st.integers(EPOCH_MS, FEED_NOW_MS))
    return compose_id(created_ms, draw(st.integers(0, 15)), draw(st.integers(0, 3)))


@dataclass
class Feed:
    """Arguments for the merge kernels; lists overlap and may repeat ids."""

    ids: array
    offsets: array
    affinity: array
    likes: array
    comments: array
    interest: array
    excluded: list[int]
    weights: Weights

    @property
    def features(self) -> tuple[array, array, array, array]:
        return self.affinity, self.likes, self.comments, self.interest

    def eligible(self, excluded: set[int] | None = None) -> set[int]:
        return set(self.ids) - set(self.excluded if excluded is None else excluded)


# Every post scores 0: the order is the id tie-break alone.
ALL_TIED = Weights(interest=0.0, recency=0.0, relationship=0.0, engagement=0.0)

# Few distinct values make equal scores (the id tie-break) likely.
unit_floats = st.one_of(st.sampled_from([0.0, 0.5, 1.0]), st.floats(0, 1))
counts = st.one_of(st.sampled_from([0, 1]), st.integers(-3, 10**9))
weight = st.one_of(st.just(0.0), st.floats(0, 3))


@st.composite
def feeds(draw: st.DrawFn, max_lists: int = 6, max_list_length: int = 15) -> Feed:
    pool = draw(st.lists(feed_post_ids(), min_size=1, max_size=40, unique=True))
    post = st.sampled_from(pool)
    lists = [
        sorted(draw(st.lists(post, max_size=max_list_length)), reverse=True)
        for _ in range(draw(st.integers(0, max_lists)))
    ]
    ids, offsets = pack_lists(lists)
    size = len(ids)
    return Feed(
        ids=ids,
        offsets=offsets,
        affinity=array("d", draw(st.lists(unit_floats, min_size=size, max_size=size))),
        likes=array("q", draw(st.lists(counts, min_size=size, max_size=size))),
        comments=array("q", draw(st.lists(counts, min_size=size, max_size=size))),
        interest=array("d", draw(st.lists(unit_floats, min_size=size, max_size=size))),
        excluded=draw(st.lists(st.one_of(post, valid_ids), max_size=8)),
        weights=draw(
            st.one_of(
                st.just(ALL_TIED),
                st.builds(
                    Weights,
                    interest=weight,
                    recency=weight,
                    relationship=weight,
                    engagement=weight,
                    half_life_ms=st.floats(1, 1e10),
                ),
            )
        ),
    )
