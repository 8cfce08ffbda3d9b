"""The engagement service's Redis keys: the one module that spells them.

Written and read by engagement (the service, its flusher and reconciliation)
only; the Lua scripts in services.engagement.counters take their prefixes from
here. `counts` is the counters' prefix (tests use their own):

  counts:likes:<post_id>:<n>     STRING  likes not yet drained, n in 0..SHARDS-1
  counts:comments:<post_id>:<n>  STRING  comments not yet drained
  counts:dirty                   SET     posts with deltas not yet drained
  counts:flushing                SET     ids of flushes drained, not yet finished
  counts:flush:<flush_id>        HASH    post_id -> the drained shard values, "l0,..,lN-1,c0,..,cN-1"
  counts:dead                    SET     flushes set aside because their totals leave int64 (their
                                         hashes stay for a person to look at)
  pc:<post_id>                   HASH    likes, comments: post_counts as of the last finished flush
                                         (the read model; kept COUNTS_TTL_S after the post's last change;
                                         zeros for PURGED_COUNTS_TTL_S once the post is purged)
  counts:recheck                 ZSET    posts to recount from their rows, scored by when (Unix s):
                                         filled from the engagement events (reconcile.Rechecks)
  vs:<viewer>                    HASH    "l<post>" / "s<post>" -> "1" or "0": whether the viewer liked,
                                         saved the post, as far as asked (services.engagement.viewer_state)

On a Redis Cluster the counters are split in PARTITIONS: a post's keys, and the
dirty, flushing, flush and dead keys of its partition, carry the partition's hash
tag ({p<n>}: counts:{p3}:dirty, pc:{p3}:<post_id>), so that each script runs in
one slot (CounterKeys.partition). counts:recheck stays one key.

NOTE: the scripts of services.engagement.counters that touch many posts build
their shard and flush keys in Lua from the prefix, in the layout above
(`prefix .. ':' .. kind .. ':' .. post .. ':' .. n`); change both together.

Other services learn about likes and comments from engagement's events (the
feed keeps its own ranking features from them) or its RPCs. The one exception
reads and never writes: the feed and posts read pc:, the pending counts and
vs: for the posts they show, through services.engagement.warm_states,
engagement's own code.
"""

from __future__ import annotations

from dataclasses import dataclass

COUNTS_PREFIX = "pc:"
COUNTS_TTL_S = 30 * 86_400
# A purged post's pc: (zeros): long enough to outlast any read that asked PostgreSQL before the purge.
PURGED_COUNTS_TTL_S = 3_600
VIEWER_STATE_TTL_S = 3_600


def counts_key(post_id: int) -> str:
    return f"{COUNTS_PREFIX}{post_id}"


def viewer_state_key(viewer_id: int) -> str:
    return f"vs:{viewer_id}"


@dataclass(frozen=True)
class CounterKeys:
    """The keys of one partition of the counters (see services.engagement.counters)."""

    prefix: str = "counts"
    counts_prefix: str = COUNTS_PREFIX

    def partition(self, number: int, partitions: int) -> CounterKeys:
        """Partition `number` of `partitions`: these keys themselves when there is one; else keys
        that share one Redis Cluster slot per partition (a hash tag in each)."""
        if partitions == 1:
            return self
        return CounterKeys(f"{self.prefix}:{{p{number}}}", f"{self.counts_prefix}{{p{number}}}:")

    def counts(self, post_id: int) -> str:
        return f"{self.counts_prefix}{post_id}"

    def shard(self, kind: str, post_id: int, n: int) -> str:
        return f"{self.prefix}:{kind}:{post_id}:{n}"

    @property
    def dirty(self) -> str:
        return f"{self.prefix}:dirty"

    @property
    def flushing(self) -> str:
        return f"{self.prefix}:flushing"

    def flush(self, flush_id: str) -> str:
        return f"{self.prefix}:flush:{flush_id}"

    @property
    def dead(self) -> str:
        return f"{self.prefix}:dead"

    @property
    def recheck(self) -> str:
        return f"{self.prefix}:recheck"
