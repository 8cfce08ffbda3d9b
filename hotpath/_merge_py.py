"""Pure-Python reference implementation of ``hotpath.merge`` (see that module for the API)."""

from __future__ import annotations

import math
import re
from array import array
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from heapq import heapify, heappop, heapreplace
from itertools import pairwise
from operator import neg

from hotpath._ids_common import EPOCH_MS, TIMESTAMP_SHIFT
from hotpath._merge_common import (
    DEFAULT_WEIGHTS,
    DEFAULT_WINDOW,
    SENTINEL_MEMBER,
    Page,
    RankedCursor,
    Weights,
    check_page_size,
    ranked_at_ms,
)

_MEMBER = re.compile(rb"([0-9]+):([0-9]+)")
_INT64_MAX = 2**63 - 1


def chronological_page(
    ids: Sequence[int],
    offsets: Sequence[int],
    *,
    limit: int,
    before_id: int | None = None,
    excluded: Iterable[int] = (),
) -> Page:
    check_page_size(limit)
    _check_offsets(ids, offsets)
    stream = _eligible_positions(ids, offsets, before_id, set(excluded))
    page = array("q")
    for position in stream:
        page.append(ids[position])
        if len(page) == limit:
            break
    more = next(stream, None) is not None
    return Page(page, page[-1] if more else None)


def newest_members(
    lists: Iterable[Iterable[bytes]],
    *,
    limit: int,
    before_id: int | None = None,
    excluded_authors: Iterable[int] = (),
) -> tuple[array, array]:
    check_page_size(limit)
    excluded = set(excluded_authors)
    authors: dict[int, int] = {}
    for members in lists:
        for raw in members:
            if raw == SENTINEL_MEMBER:
                continue
            post_id, author_id = _member(raw)
            if (before_id is None or post_id < before_id) and author_id not in excluded:
                authors.setdefault(post_id, author_id)
    newest = sorted(authors, reverse=True)[:limit]
    return array("q", newest), array("q", [authors[post_id] for post_id in newest])


def _member(raw: bytes) -> tuple[int, int]:
    if not isinstance(raw, bytes):
        raise TypeError(f"a post-list member is bytes, got {type(raw).__name__}")
    match = _MEMBER.fullmatch(raw)
    if match is None or max(int(match[1]), int(match[2])) > _INT64_MAX:
        raise ValueError(f"malformed post-list member {raw!r}")
    return int(match[1]), int(match[2])


def ranked_page(
    ids: Sequence[int],
    offsets: Sequence[int],
    affinity: Sequence[float],
    likes: Sequence[int],
    comments: Sequence[int],
    interest: Sequence[float],
    *,
    limit: int,
    cursor: RankedCursor | None = None,
    excluded: Iterable[int] = (),
    now_ms: int | None = None,
    weights: Weights = DEFAULT_WEIGHTS,
    window: int = DEFAULT_WINDOW,
) -> Page:
    check_page_size(limit, window)
    _check_offsets(ids, offsets)
    for column in (affinity, likes, comments, interest):
        if len(column) != len(ids):
            raise ValueError("every feature column must be as long as ids")
    ranked_at = ranked_at_ms(cursor, now_ms)
    decay_scale = -1.0 / weights.half_life_ms

    def rank(positions: list[int]) -> list[tuple[float, int]]:
        """(score, id) pairs, best first; equal scores put the higher id first."""
        keys = []
        for position in positions:
            post_id = ids[position]
            age_ms = max(ranked_at - ((post_id >> TIMESTAMP_SHIFT) + EPOCH_MS), 0)
            engagement = float(max(likes[position], 0)) + float(max(comments[position], 0))
            score = (
                weights.interest * interest[position]
                + weights.recency * math.exp2(age_ms * decay_scale)
                + weights.relationship * affinity[position]
                + weights.engagement * math.log1p(engagement)
            )
            keys.append((score, post_id))
        keys.sort(reverse=True)
        return keys

    before_id = None if cursor is None else cursor.window_newest + 1
    stream = _eligible_positions(ids, offsets, before_id, set(excluded))
    pending = next(stream, None)
    ranked: list[tuple[float, int]] = []
    served = 0
    if cursor is not None:
        newest, oldest = cursor.window_newest, cursor.window_oldest
        members = []
        while pending is not None and ids[pending] >= oldest:
            members.append(pending)
            pending = next(stream, None)
        last_key = (cursor.last_score, cursor.last_id)
        ranked = [key for key in rank(members) if key < last_key]

    page = array("q")
    while len(page) < limit:
        if served == len(ranked):
            if pending is None:
                break
            members = []
            while pending is not None and len(members) < window:
                members.append(pending)
                pending = next(stream, None)
            newest, oldest = ids[members[0]], ids[members[-1]]
            ranked = rank(members)
            served = 0
        last_key = ranked[served]
        served += 1
        page.append(last_key[1])

    if not page or (served == len(ranked) and pending is None):
        return Page(page, None)
    return Page(page, RankedCursor(newest, oldest, ranked_at, *last_key))


def _check_offsets(ids: Sequence[int], offsets: Sequence[int]) -> None:
    if len(offsets) < 1:
        raise ValueError("offsets needs at least one entry (K lists take K + 1)")
    if offsets[0] < 0 or offsets[-1] > len(ids):
        raise ValueError("offsets must lie within ids")
    if any(start > end for start, end in pairwise(offsets)):
        raise ValueError("offsets must be non-decreasing")


def _eligible_positions(
    ids: Sequence[int], offsets: Sequence[int], before_id: int | None, excluded: set[int]
) -> Iterator[int]:
    """Positions in ``ids`` of the merged candidates, newest first: each id once, none
    excluded, all below ``before_id``. Of equal ids the one in the first list wins."""
    heap = []
    for list_index in range(len(offsets) - 1):
        start, end = offsets[list_index], offsets[list_index + 1]
        if before_id is not None:
            # The lists are descending, so their negations ascend.
            start = bisect_right(ids, -before_id, start, end, key=neg)
        if start < end:
            heap.append((-ids[start], list_index, start, end))
    heapify(heap)
    previous = None
    while heap:
        negated_id, list_index, position, end = heap[0]
        if position + 1 < end:
            heapreplace(heap, (-ids[position + 1], list_index, position + 1, end))
        else:
            heappop(heap)
        post_id = -negated_id
        if post_id != previous and post_id not in excluded:
            yield position
        previous = post_id
