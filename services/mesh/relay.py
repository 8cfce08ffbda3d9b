"""Outbox relay: `python -m services.mesh.relay` (WorkerSpec "relay").

Moves the events every service writes to its shards' outboxes onto the Redis
streams (services.common.outbox has how). A worker process of the platform,
not a task inside each service:
  - the outbox is per shard schema, not per service: one relay drains every
    service's events of a shard in one query, where a task in each service
    (and each of its replicas) would each poll and LISTEN on every shard;
  - committed events keep flowing while the service that wrote them is down,
    restarting or overloaded, and a relay's failure never touches requests;
  - it scales on its own: PICTOR_RELAY_REPLICAS relays share the shards
    safely (one drains a shard at a time, under an advisory lock).
Latency comes from LISTEN/NOTIFY: a notification drains its shard at once.
Every PICTOR_RELAY_POLL_MS (default 250) a sweep drains the shards that hold
rows: the events written without a NOTIFY (likes), and any a relay missed.
SIGTERM finishes the batch in hand, then exits.
"""

from __future__ import annotations

import asyncio

from services.common import metrics
from services.common.config import env_int
from services.common.events import EventPublisher
from services.common.outbox import Relay
from services.common.server import Resources, run_worker


async def work(resources: Resources, stop: asyncio.Event) -> None:
    relay = Relay(await resources.database(max_size=4), EventPublisher(resources.redis()),
                  poll_interval_s=env_int("PICTOR_RELAY_POLL_MS", 250) / 1000)
    # The relay reports the whole event bus: its outboxes, and every consumer group's pending and
    # lag (a consumer that is stuck cannot report its own).
    redis = resources.redis()

    async def sample() -> None:
        for url, rows in (await relay.backlog()).items():
            metrics.OUTBOX_BACKLOG.labels(metrics.database_label(url)).set(rows)
        await metrics.sample_streams(redis)

    metrics.sample_on_scrape("event_bus", sample)
    await relay.run(stop)


def main() -> None:
    run_worker("relay", work)


if __name__ == "__main__":
    main()
