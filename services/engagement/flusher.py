"""The counter flusher: Redis deltas into post_counts, one UPSERT per post, every ~200 ms.

Each cycle, under the counters' advisory lock:
  1. finish what a dead or failed cycle left (flushes still in `counts:flushing`);
  2. drain a batch of dirty posts into new flushes, one per partition (counters.DRAIN, atomic);
  3. per shard, one transaction: record the flush ids, fold the shards
     (hotpath.counters.sum_sharded, then coalesce across flushes), UPSERT;
  4. in one MULTI per partition, write the posts' new counts to `pc:` (the read model) and forget
     the flushes.
A crash between any two steps loses nothing and adds nothing twice: until 4,
the flush is in Redis; after 3, PostgreSQL knows it was applied.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import psycopg

from services.common.ids import shard_of
from services.engagement.counters import Flush, RedisCounters
from services.engagement.repository import PostgresCountStore
from services.engagement.service import Counts

log = logging.getLogger(__name__)

BATCH_POSTS = 500
PRUNE_EVERY_S = 600
KEEP_FLUSH_IDS_S = 86_400
# A total outside int64: in hotpath's folding, or in PostgreSQL's addition.
OUT_OF_RANGE = (OverflowError, psycopg.errors.NumericValueOutOfRange)


def lock_name(prefix: str) -> str:
    return f"pictor.engagement.counters:{prefix}"


def by_shard(flushes: list[Flush]) -> dict[int, list[Flush]]:
    """Each flush split by the shard of its posts."""
    split: dict[int, list[Flush]] = {}
    for flush in flushes:
        parts: dict[int, dict[int, list[int]]] = {}
        for post_id, values in flush.values.items():
            parts.setdefault(shard_of(post_id), {})[post_id] = values
        for shard, values in parts.items():
            split.setdefault(shard, []).append(Flush(flush.id, values, flush.partition))
    return split


@dataclass
class Flusher:
    counters: RedisCounters
    store: PostgresCountStore
    batch_posts: int = BATCH_POSTS
    logical_shards: int = 8
    _last_prune: float = field(default=0.0, init=False)

    async def apply(self, flushes: list[Flush]) -> dict[int, Counts]:
        """Steps 3 and 4 for flushes already drained; returns the new counts of their posts."""
        counts: dict[int, Counts] = {}
        for shard, parts in sorted(by_shard(flushes).items()):
            if shard >= self.logical_shards:
                log.error("dropping counts of posts in unknown shard %d", shard)
                continue
            counts.update(await self.store.apply(shard, parts))
        await self.counters.finish(flushes, counts)
        return counts

    async def recover(self) -> int:
        """Apply the flushes an earlier cycle left unfinished; returns how many. Call under the lock.

        All together (finishing them one by one would let pc: count a flush
        twice while another holding the same post waits); when that fails
        because a total leaves int64, one at a time, so that the flush which
        can never apply is set aside instead of blocking every later one.
        """
        left = await self.counters.unfinished()
        if not left:
            return 0
        log.warning("finishing %d flush(es) left by an interrupted cycle", len(left))
        try:
            await self.apply(left)
        except OUT_OF_RANGE:
            for flush in left:
                try:
                    await self.apply([flush])
                except OUT_OF_RANGE:
                    log.error("flush %s leaves int64: set aside in %s", flush.id, self.counters.dead_key(flush))
                    await self.counters.set_aside(flush)
        return len(left)

    async def flush_once(self) -> int:
        """One cycle; returns how many posts it flushed (a full batch means more may be waiting)."""
        async with self.store.exclusive(lock_name(self.counters.keys.prefix)):
            await self.recover()
            drained = await self.counters.drain(self.batch_posts)
            if not drained:
                await self._prune()
                return 0
            await self.apply(drained)
            return sum(len(flush.values) for flush in drained)

    async def _prune(self) -> None:
        now = time.monotonic()
        if now - self._last_prune < PRUNE_EVERY_S:
            return
        self._last_prune = now
        for shard in range(self.logical_shards):
            await self.store.prune_flushes(shard, KEEP_FLUSH_IDS_S)
