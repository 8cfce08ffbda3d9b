"""Counter flusher process: `python -m services.engagement.worker` (WorkerSpec "counters").

Runs the flusher (services.engagement.flusher) every PICTOR_COUNTERS_FLUSH_MS
(default 200), at once again while batches come back full. A process of its
own rather than a task inside the engagement service: the service can run as
many replicas as load needs while exactly one flusher cycle runs at a time
(several flushers would only queue on the advisory lock), and a flush never
competes with requests for the service's event loop. SIGTERM finishes the
cycle in hand, then exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import redis.asyncio as aioredis

from services.common.config import env_int, load_settings
from services.common.db import Database
from services.common.server import run_worker, stop_on_signals
from services.engagement.counters import RedisCounters
from services.engagement.flusher import Flusher
from services.engagement.repository import PostgresCountStore

log = logging.getLogger(__name__)


def flush_interval_s() -> float:
    return env_int("PICTOR_COUNTERS_FLUSH_MS", 200) / 1000


async def run_flusher(flusher: Flusher, stop: asyncio.Event, interval_s: float) -> None:
    while not stop.is_set():
        try:
            flushed = await flusher.flush_once()
        except Exception:
            # Redis or PostgreSQL away: the flush stays in Redis for the next cycle.
            log.exception("flush failed; retrying")
            flushed = 0
            interval = max(interval_s, 1.0)
        else:
            interval = interval_s
        if flushed < flusher.batch_posts:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)


async def run() -> None:
    settings = load_settings()
    db = Database(settings, max_size=4)
    await db.open()
    redis = aioredis.from_url(settings.redis_url)
    store = PostgresCountStore(db)
    flusher = Flusher(RedisCounters(redis, store.counts), store, logical_shards=settings.logical_shards)
    stop = stop_on_signals()
    try:
        await run_flusher(flusher, stop, flush_interval_s())
    finally:
        await redis.aclose()
        await db.close()


def main() -> None:
    run_worker("counters", run)


if __name__ == "__main__":
    main()
