"""Counter flusher process: `python -m services.engagement.worker` (WorkerSpec "counters").

Runs the flusher (services.engagement.flusher) every PICTOR_COUNTERS_FLUSH_MS
(default 200), at once again while batches come back full. It also keeps
the counts right by itself (services.engagement.reconcile): a member of the
consumer group "engagement-count-rechecks" schedules a recount of each post
an engagement event names, run PICTOR_COUNTERS_RECHECK_DELAY_MS (2000) after
the event; and a pass over every post runs every PICTOR_COUNTERS_RECONCILE_S
(3600; 0 turns it off). And a member of "engagement-moderation", which hides
the comments a moderator hid or whose author was suspended
(services.engagement.moderation). A process of its
own rather than a task inside the engagement service: the service can run as
many replicas as load needs while exactly one flusher cycle runs at a time
(several flushers would only queue on the advisory lock), and a flush never
competes with requests for the service's event loop. SIGTERM finishes the
cycle in hand, then exits.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from services.common.config import env_int, events_claim_idle_ms
from services.common.events import Consumer
from services.common.server import Resources, run_worker, wait_for_stop
from services.engagement.counters import RedisCounters
from services.engagement.flusher import Flusher
from services.engagement.moderation import GROUP as MODERATION_GROUP
from services.engagement.moderation import TOPICS as MODERATION_TOPICS
from services.engagement.moderation import CommentModeration
from services.engagement.reconcile import RECHECK_GROUP, RECHECK_TOPICS, Rechecks, reconcile
from services.engagement.repository import PostgresCountStore, PostgresEngagementRepository

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


async def every(interval_s: float, job: Callable[[], Awaitable[object]], what: str, stop: asyncio.Event) -> None:
    """Run `job` every `interval_s` until `stop`. A failure waits for the next turn: this loop shares
    its process with the flusher, which rides out outages by itself."""
    while not stop.is_set():
        await wait_for_stop(stop, interval_s)
        if stop.is_set():
            return
        try:
            await job()
        except Exception:
            log.exception("%s failed; trying again in %.1f s", what, interval_s)


async def work(resources: Resources, stop: asyncio.Event) -> None:
    settings = resources.settings
    db = await resources.database(max_size=4)
    store = PostgresCountStore(db)
    counters = RedisCounters(resources.redis(), store.counts)
    flusher = Flusher(counters, store, logical_shards=settings.logical_shards)
    rechecks = Rechecks(counters, store, settings.logical_shards,
                        delay_s=env_int("PICTOR_COUNTERS_RECHECK_DELAY_MS", 2000) / 1000)
    consumer = Consumer(resources.redis(), RECHECK_GROUP, RECHECK_TOPICS, rechecks.handle,
                        claim_idle_ms=events_claim_idle_ms())
    moderation = Consumer(resources.redis(), MODERATION_GROUP, MODERATION_TOPICS,
                          CommentModeration(PostgresEngagementRepository(db)).handle,
                          claim_idle_ms=events_claim_idle_ms())
    full_pass_s = env_int("PICTOR_COUNTERS_RECONCILE_S", 3600)

    async def recheck_due() -> None:
        report = await rechecks.run_due(time.time())
        if report.posts_repaired:
            log.warning("rechecks repaired the counts of %d post(s): %s", report.posts_repaired, report.repaired)

    async def full_pass() -> None:
        report = await reconcile(counters, store, settings.logical_shards)
        log.info("reconciliation: %d posts checked, %d repaired", report.posts_checked, report.posts_repaired)

    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(run_flusher(flusher, stop, flush_interval_s()))
        tasks.create_task(consumer.run(stop))
        tasks.create_task(moderation.run(stop))
        tasks.create_task(every(0.5, recheck_due, "recounting rechecked posts", stop))
        if full_pass_s > 0:
            tasks.create_task(every(full_pass_s, full_pass, "reconciliation", stop))


def main() -> None:
    run_worker("counters", work)


if __name__ == "__main__":
    main()
