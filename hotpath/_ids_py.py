"""Pure-Python reference implementation of ``hotpath.ids`` (see that module for the API)."""

from __future__ import annotations

import operator
import threading
import time
from array import array
from collections.abc import Callable

from hotpath._ids_common import (
    DEFAULT_MAX_BACKWARDS_WAIT_MS,
    EPOCH_MS,
    MAX_ID,
    MAX_SEQUENCE,
    MAX_SHARD,
    MAX_TIMESTAMP_OFFSET_MS,
    SEQUENCE_BITS,
    TIMESTAMP_SHIFT,
    ClockMovedBackwardsError,
    DecodedId,
    checked_generator_args,
    low_bits_layout,
    timestamp_out_of_range,
)


def system_clock_ms() -> int:
    """Unix time in whole milliseconds (CLOCK_REALTIME, like the compiled generator)."""
    return time.time_ns() // 1_000_000


class IdGenerator:
    """Issues strictly increasing ids for one shard; safe to share between threads."""

    def __init__(
        self,
        shard: int,
        clock: Callable[[], int] | None = None,
        max_backwards_wait_ms: int = DEFAULT_MAX_BACKWARDS_WAIT_MS,
        worker: int | None = None,
    ) -> None:
        shard, max_backwards_wait_ms = checked_generator_args(shard, max_backwards_wait_ms)
        self._max_counter, self._counter_shift, self._worker_field = low_bits_layout(worker)
        self._worker = worker
        self._shard = shard
        self._shard_field = shard << SEQUENCE_BITS
        self._max_backwards_wait_ms = max_backwards_wait_ms
        self._clock = system_clock_ms if clock is None else clock
        self._lock = threading.Lock()
        self._last_ms = 0
        self._sequence = 0

    @property
    def shard(self) -> int:
        return self._shard

    @property
    def max_backwards_wait_ms(self) -> int:
        return self._max_backwards_wait_ms

    @property
    def worker(self) -> int | None:
        return self._worker

    def next_id(self) -> int:
        with self._lock:
            return self._issue()

    def next_ids(self, n: int) -> array:
        """``n`` consecutive ids as ``array('q')``, issued under one lock acquisition."""
        n = operator.index(n)
        if n < 0:
            raise ValueError("n must be >= 0")
        ids = array("q")
        append = ids.append
        issue = self._issue
        with self._lock:
            for _ in range(n):
                append(issue())
        return ids

    def _issue(self) -> int:
        """Issue one id; the caller holds the lock.

        A clock behind the last issued millisecond is slept out, but only while the total
        sleep for this id stays within ``max_backwards_wait_ms``. When the millisecond's
        1,024 sequence values are used up, the clock is read again until it ticks.
        """
        waited = 0
        while True:
            now = self._clock()
            offset = now - EPOCH_MS
            if not 0 <= offset <= MAX_TIMESTAMP_OFFSET_MS:
                raise timestamp_out_of_range(now)
            behind = self._last_ms - now
            if behind > 0:
                if waited + behind > self._max_backwards_wait_ms:
                    raise ClockMovedBackwardsError(behind, self._max_backwards_wait_ms)
                time.sleep(behind / 1000)
                waited += behind
                continue
            if behind == 0:
                if self._sequence == self._max_counter:
                    continue
                sequence = self._sequence + 1
            else:
                sequence = 0
            self._last_ms = now
            self._sequence = sequence
            return ((offset << TIMESTAMP_SHIFT) | self._shard_field | (sequence << self._counter_shift)
                    | self._worker_field)


def _check_id(post_id: int) -> None:
    if post_id < 0:
        raise ValueError(f"ids are non-negative, got {post_id}")
    if post_id > MAX_ID:
        raise OverflowError(f"ids fit in a signed int64, got {post_id}")


def decode(post_id: int) -> DecodedId:
    _check_id(post_id)
    return DecodedId(
        (post_id >> TIMESTAMP_SHIFT) + EPOCH_MS,
        (post_id >> SEQUENCE_BITS) & MAX_SHARD,
        post_id & MAX_SEQUENCE,
    )


def shard_of(post_id: int) -> int:
    _check_id(post_id)
    return (post_id >> SEQUENCE_BITS) & MAX_SHARD


def min_id_for(timestamp_ms: int) -> int:
    offset = timestamp_ms - EPOCH_MS
    if offset < 0:
        return 0
    if offset > MAX_TIMESTAMP_OFFSET_MS:
        raise timestamp_out_of_range(timestamp_ms)
    return offset << TIMESTAMP_SHIFT
