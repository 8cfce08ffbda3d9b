"""Pure-Python reference implementation of ``hotpath.counters`` (see that module for the API)."""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from itertools import accumulate, pairwise

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1


def coalesce(
    keys: Sequence[int], deltas: Sequence[int], *, drop_zero: bool = False
) -> tuple[array, array]:
    if len(keys) != len(deltas):
        raise ValueError(f"{len(keys)} keys but {len(deltas)} deltas")
    totals: dict[int, int] = {}
    total_of = totals.get  # NOTE: a little faster than defaultdict's += here
    for key, delta in zip(keys, deltas):
        totals[key] = total_of(key, 0) + delta
    for key, total in totals.items():
        if not INT64_MIN <= total <= INT64_MAX:
            raise OverflowError(f"the total of key {key} does not fit in int64")
    if drop_zero:
        totals = {key: total for key, total in totals.items() if total}
    return array("q", totals.keys()), array("q", totals.values())


def sum_sharded(values: Sequence[int], shards_per_key: int | Sequence[int]) -> array:
    if isinstance(shards_per_key, int):
        if shards_per_key < 1:
            raise ValueError("shards_per_key must be >= 1")
        if len(values) % shards_per_key:
            raise ValueError("len(values) must be a multiple of shards_per_key")
        starts = range(0, len(values) + 1, shards_per_key)
    else:
        if any(count < 0 for count in shards_per_key):
            raise ValueError("shard counts must be >= 0")
        starts = list(accumulate(shards_per_key, initial=0))
        if starts[-1] != len(values):
            raise ValueError("the shard counts must add up to len(values)")
    totals = [sum(values[start:end]) for start, end in pairwise(starts)]
    for key_index, total in enumerate(totals):
        if not INT64_MIN <= total <= INT64_MAX:
            raise OverflowError(f"the total of key #{key_index} does not fit in int64")
    return array("q", totals)
