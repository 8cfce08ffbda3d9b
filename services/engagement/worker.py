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
import logging

from services.common.config import env_int
from services.common.server import Resources, run_worker, wait_for_stop
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
            await wait_for_stop(stop, interval)


async def work(resources: Resources, stop: asyncio.Event) -> None:
    store = PostgresCountStore(await resources.database(max_size=4))
    flusher = Flusher(RedisCounters(resources.redis(), store.counts), store,
                      logical_shards=resources.settings.logical_shards)
    await run_flusher(flusher, stop, flush_interval_s())


def main() -> None:
    run_worker("counters", work)


if __name__ == "__main__":
    main()
