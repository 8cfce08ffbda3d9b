"""Sharded, time-ordered 64-bit post ids (Instagram's layout).

An id packs, from the most significant bit down::

    | 41 bits: ms since EPOCH_MS | 13 bits: logical shard | 10 bits: sequence |
      (id >> 23) + EPOCH_MS        (id >> 10) & 8191        id & 1023

- ``EPOCH_MS`` is 2026-01-01T00:00:00Z = 1,767,225,600,000 Unix ms.
- The shard (0..``MAX_SHARD`` = 8191) is the logical shard that owns the post.
- The sequence counts the ids one generator issued within one millisecond: at most 1,024,
  so one generator's ceiling is 1,024 ids per ms (~1M ids/s).
- A generator given a ``worker`` number (0..``MAX_WORKER`` = 63; the services lease one per
  process, services.common.ids) splits those 10 bits: | 4 bits: counter | 6 bits: worker |
  (``worker_of(id)`` = id & 63), so processes holding different numbers never issue one id;
  its ceiling is 16 ids per ms per shard. Ids issued before workers existed stay valid: the
  layout of time and shard is unchanged, and they are older than any new one.

Because the timestamp leads, sorting ids sorts posts by creation time ("newest first" is
"descending id"), and ``min_id_for(t)`` turns "posts newer than t" into ``id >= ...``.
Ids are non-negative signed int64 values: the generator stops (OverflowError) at
2**40 - 1 ms after the epoch (2060-11-03) rather than set the sign bit. The lead's
PL/pgSQL twin in the SQL migrations uses the same layout.

API (the compiled and the reference implementation are identical):

- ``IdGenerator(shard, clock=None, max_backwards_wait_ms=50, worker=None)``: ``clock`` is a callable
  returning Unix ms (for tests); by default the system clock (CLOCK_REALTIME).
  ``next_id() -> int``; ``next_ids(n) -> array('q')`` (bulk, one lock acquisition).
  Ids from one generator strictly increase, also across threads (it holds a lock).
  When the 1,024 sequence values of a millisecond run out it waits for the next one. A
  clock behind the last issued millisecond is slept out while the total sleep for one id
  stays within ``max_backwards_wait_ms``; past that it raises ClockMovedBackwardsError,
  never a duplicate. A clock reading outside the layout raises OverflowError.
  A shard outside 0..8191 raises ValueError.
- ``decode(id) -> DecodedId(timestamp_ms, shard, sequence)``, timestamp in Unix ms.
- ``shard_of(id) -> int``.
- ``min_id_for(timestamp_ms) -> int``: the smallest id with that Unix-ms timestamp; 0 for
  a time before the epoch (every id is newer); OverflowError past the layout's end.
- ``decode`` and ``shard_of`` raise ValueError for a negative id, OverflowError beyond int64.
"""

from hotpath._ids_common import (
    EPOCH_MS,
    MAX_SEQUENCE,
    MAX_SHARD,
    MAX_WORKER,
    SEQUENCE_BITS,
    SHARD_BITS,
    TIMESTAMP_BITS,
    TIMESTAMP_SHIFT,
    WORKER_BITS,
    ClockMovedBackwardsError,
    DecodedId,
    worker_of,
)
from hotpath._select import load

_implementation_module, IMPLEMENTATION = load("ids")

IdGenerator = _implementation_module.IdGenerator
decode = _implementation_module.decode
shard_of = _implementation_module.shard_of
min_id_for = _implementation_module.min_id_for

__all__ = [
    "EPOCH_MS",
    "IMPLEMENTATION",
    "MAX_SEQUENCE",
    "MAX_SHARD",
    "MAX_WORKER",
    "SEQUENCE_BITS",
    "SHARD_BITS",
    "TIMESTAMP_BITS",
    "TIMESTAMP_SHIFT",
    "WORKER_BITS",
    "ClockMovedBackwardsError",
    "DecodedId",
    "IdGenerator",
    "decode",
    "min_id_for",
    "shard_of",
    "worker_of",
]
