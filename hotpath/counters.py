"""Counter aggregation: like/unlike and comment events into one write per key.

- ``coalesce(keys, deltas, *, drop_zero=False) -> (keys, totals)``: a batch of events
  ``(keys[i], deltas[i])`` (int64 key, int64 delta, negative for unlike/delete) becomes
  one total per key, so a stream of events turns into one UPSERT per post. Both results
  are ``array('q')`` in first-seen order (the order in which each key first appears in
  the batch). With ``drop_zero=True`` keys whose total is 0 are left out. Totals are
  exact: intermediate sums may leave int64 and come back, but a final total outside
  int64 raises OverflowError (nothing wraps silently). Unequal lengths raise ValueError.
- ``sum_sharded(values, shards_per_key) -> array('q')``: totals of counters split over
  several shards (a viral post's likes spread over N Redis keys). ``values`` holds each
  key's shard values one after another. ``shards_per_key`` is either an int (every key
  has that many shards) or one count per key (int64 buffer or sequence, each >= 0, adding
  up to ``len(values)``). A total outside int64 raises OverflowError; malformed shapes
  raise ValueError.

Inputs are int64 buffers (``array('q')``, memoryview, ...) for speed; other iterables of
ints are accepted and copied into arrays first. Both implementations give identical
results and raise the same exception types.
"""

from hotpath._select import load

_implementation_module, IMPLEMENTATION = load("counters")

coalesce = _implementation_module.coalesce
sum_sharded = _implementation_module.sum_sharded

__all__ = ["IMPLEMENTATION", "coalesce", "sum_sharded"]
