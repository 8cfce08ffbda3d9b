"""Recompute like and comment counts from the rows and repair drift: by hand, and on a schedule.

    python -m services.engagement.reconcile              # every post with likes, comments or a count
    python -m services.engagement.reconcile POST_ID ...  # just these

The counters worker (services.engagement.worker) also runs it by itself:
  - Rechecks: every like, unlike, comment and comment.deleted event (written
    with its row, in the outbox) schedules a recount of its post
    PICTOR_COUNTERS_RECHECK_DELAY_MS (2000) after it happened; a later event
    on the post moves it later, so the recount runs once the post has been
    quiet that long, when every request's own delta has landed (a recount
    racing a like in flight would count it twice). A process that died
    between the row's commit and its Redis delta leaves the count wrong for
    those seconds, not until someone runs this by hand.
  - Every PICTOR_COUNTERS_RECONCILE_S (3600; 0: never) a pass over every
    post, for what no event names (Redis lost deltas it had not flushed).

Counts drift when a process dies between committing a like (or comment) and
adding its delta in Redis, or when Redis loses deltas not yet flushed. For
each chunk of posts, under the flusher's lock: finish any interrupted flush,
set post_counts from the rows (one transaction), then drop the posts' pending
deltas and set their `pc:` to the recount (one script). Run while nothing is
written, counts then equal the rows exactly. Under live traffic, a like whose
row and delta straddle the recount can leave that post off by one until the
next run, or (in the worker) until the recheck its event schedules. Prints one JSON line: {"posts_checked": N, "posts_repaired": N}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

from services.common.config import load_settings
from services.common.db import Database
from services.common.dependencies import async_redis
from services.common.events import Event, published_at
from services.common.ids import shard_of
from services.engagement.counters import RedisCounters
from services.engagement.flusher import Flusher, lock_name
from services.engagement.repository import PostgresCountStore

CHUNK = 1000


@dataclass(frozen=True)
class Report:
    posts_checked: int
    posts_repaired: int
    repaired: tuple[int, ...]


async def _chunks(store: PostgresCountStore, logical_shards: int, post_ids: Iterable[int] | None
                  ) -> AsyncIterator[tuple[int, list[int]]]:
    """(shard, post ids) in chunks of at most CHUNK."""
    if post_ids is not None:
        grouped: dict[int, list[int]] = {}
        for post_id in dict.fromkeys(post_ids):
            if 0 <= shard_of(post_id) < logical_shards:
                grouped.setdefault(shard_of(post_id), []).append(post_id)
        for shard, ids in sorted(grouped.items()):
            for i in range(0, len(ids), CHUNK):
                yield shard, ids[i:i + CHUNK]
        return
    for shard in range(logical_shards):
        after = 0
        while ids := await store.post_ids(shard, after, CHUNK):
            yield shard, ids
            after = ids[-1]


async def reconcile(counters: RedisCounters, store: PostgresCountStore, logical_shards: int,
                    post_ids: Iterable[int] | None = None, *, only_engaged: bool = False) -> Report:
    """Recount the given posts (None: every post that has engagement) from their rows.

    The flusher's lock is taken per chunk, so counts keep flowing meanwhile.
    `only_engaged` leaves out the given posts that have no likes, comments or
    count (a deleted post purged meanwhile: no count comes back to life).
    """
    checked, repaired = 0, []
    flusher = Flusher(counters, store, logical_shards=logical_shards)
    async for shard, ids in _chunks(store, logical_shards, post_ids):
        async with store.exclusive(lock_name(counters.keys.prefix)):
            if only_engaged and not (ids := await store.engaged(shard, ids)):
                continue
            # An unfinished flush would add deltas the recount already counts.
            await flusher.recover()
            fixed, counts = await store.recount(shard, ids)
            await counters.settle(counts)
        checked += len(ids)
        repaired += fixed
    return Report(checked, len(repaired), tuple(repaired))


RECHECK_TYPES = ("like", "unlike", "comment", "comment.deleted")
RECHECK_GROUP = "engagement-count-rechecks"
RECHECK_TOPICS = ["engagement"]


@dataclass
class Rechecks:
    """Recounts the posts that engagement events name, a delay after each (see the module's note)."""

    counters: RedisCounters
    store: PostgresCountStore
    logical_shards: int
    delay_s: float = 2.0

    async def handle(self, event: Event) -> None:
        if event.type in RECHECK_TYPES:
            await self.counters.recheck_at(int(event.data["post_id"]), published_at(event) + self.delay_s)

    async def run_due(self, now: float) -> Report:
        """Recount the posts due by `now` (a chunk of them)."""
        due = await self.counters.take_due(now, CHUNK)
        if not due:
            return Report(0, 0, ())
        return await reconcile(self.counters, self.store, self.logical_shards, due, only_engaged=True)


async def run(post_ids: list[int] | None) -> Report:
    settings = load_settings()
    db = Database(settings, max_size=2)
    await db.open()
    redis = async_redis(settings.redis_url)
    store = PostgresCountStore(db)
    try:
        return await reconcile(RedisCounters(redis, store.counts), store, settings.logical_shards, post_ids)
    finally:
        await redis.aclose()
        await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="Recompute like and comment counts from the rows.")
    parser.add_argument("post_ids", nargs="*", type=int, help="posts to recount (default: all)")
    args = parser.parse_args()
    report = asyncio.run(run(args.post_ids or None))
    print(json.dumps({"posts_checked": report.posts_checked, "posts_repaired": report.posts_repaired}), flush=True)


if __name__ == "__main__":
    main()
