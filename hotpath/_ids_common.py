"""The id layout and the types both id implementations share.

See ``hotpath.ids`` for the layout. Both ``_ids.pyx`` and ``_ids_py.py`` read their
constants from here, so the layout is written down once.
"""

from __future__ import annotations

import operator
from typing import NamedTuple

# 2026-01-01T00:00:00Z in Unix milliseconds.
EPOCH_MS = 1_767_225_600_000

TIMESTAMP_BITS = 41
SHARD_BITS = 13
SEQUENCE_BITS = 10

MAX_SHARD = (1 << SHARD_BITS) - 1  # 8191
MAX_SEQUENCE = (1 << SEQUENCE_BITS) - 1  # 1023
# A generator given a worker number (a process's lease, services.common.ids) splits the
# 10 low bits: | 4 bits: counter | 6 bits: worker |, so two processes never issue one id.
WORKER_BITS = 6
MAX_WORKER = (1 << WORKER_BITS) - 1  # 63
MAX_WORKER_COUNTER = (1 << (SEQUENCE_BITS - WORKER_BITS)) - 1  # 15
TIMESTAMP_SHIFT = SHARD_BITS + SEQUENCE_BITS  # 23

# NOTE: the top bit of the 41-bit timestamp field is the int64 sign bit. Ids travel as
# signed int64 everywhere (Postgres bigint, proto int64, the merge kernel's buffers), so
# the generator stops at 2**40 - 1 ms after EPOCH_MS (2060-11-03) instead of issuing
# negative ids.
MAX_TIMESTAMP_OFFSET_MS = (1 << (TIMESTAMP_BITS - 1)) - 1
MAX_ID = (1 << 63) - 1

DEFAULT_MAX_BACKWARDS_WAIT_MS = 50


class DecodedId(NamedTuple):
    """The three fields of an id; ``timestamp_ms`` is Unix milliseconds (epoch added back)."""

    timestamp_ms: int
    shard: int
    sequence: int


class ClockMovedBackwardsError(RuntimeError):
    """The clock stayed behind the last issued id for longer than the generator may wait.

    Raised instead of issuing an id that could repeat one already issued.
    """

    def __init__(self, behind_ms: int, max_wait_ms: int) -> None:
        super().__init__(
            f"the clock is {behind_ms} ms behind the last issued id and would not catch "
            f"up within {max_wait_ms} ms; refusing to risk a duplicate id"
        )
        self.behind_ms = behind_ms
        self.max_wait_ms = max_wait_ms


def checked_generator_args(shard: int, max_backwards_wait_ms: int) -> tuple[int, int]:
    """The generator's arguments as ints, or ValueError/TypeError."""
    shard = operator.index(shard)
    if not 0 <= shard <= MAX_SHARD:
        raise ValueError(f"shard must be in [0, {MAX_SHARD}], got {shard}")
    max_backwards_wait_ms = operator.index(max_backwards_wait_ms)
    if max_backwards_wait_ms < 0:
        raise ValueError("max_backwards_wait_ms must be >= 0")
    return shard, max_backwards_wait_ms


def low_bits_layout(worker: int | None) -> tuple[int, int, int]:
    """(largest counter, counter shift, worker field) of the 10 low bits: without a worker the
    counter takes them all (one process alone); with one, | counter (4) | worker (6) |."""
    if worker is None:
        return MAX_SEQUENCE, 0, 0
    worker = operator.index(worker)
    if not 0 <= worker <= MAX_WORKER:
        raise ValueError(f"worker must be in [0, {MAX_WORKER}], got {worker}")
    return MAX_WORKER_COUNTER, WORKER_BITS, worker


def worker_of(post_id: int) -> int:
    """The worker number in an id issued by a generator with one (meaningless without)."""
    return post_id & MAX_WORKER


def timestamp_out_of_range(now_ms: int) -> OverflowError:
    """The error for a clock reading the layout cannot represent."""
    return OverflowError(
        f"the clock reads {now_ms} ms, outside the id layout's range "
        f"[{EPOCH_MS}, {EPOCH_MS + MAX_TIMESTAMP_OFFSET_MS}]"
    )
