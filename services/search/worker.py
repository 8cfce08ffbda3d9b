"""Indexer worker: `python -m services.search.worker` (WorkerSpec "indexer").

A member of the consumer group "search-indexer" over the accounts, posts,
graph and engagement topics: it keeps search's index (services.search.indexer).
SIGTERM finishes the event in hand, then exits.
"""

from __future__ import annotations

import asyncio

from services.common.config import events_claim_idle_ms
from services.common.events import Consumer
from services.common.server import Resources, run_worker
from services.search.indexer import GROUP, TOPICS, Indexer
from services.search.prefixes import RedisPrefixIndex
from services.search.repository import PostgresSearchIndex
from services.search.trending import RedisTrends


async def work(resources: Resources, stop: asyncio.Event) -> None:
    client = resources.redis()
    indexer = Indexer(PostgresSearchIndex(await resources.database(max_size=4)), RedisTrends(client),
                      RedisPrefixIndex(client))
    consumer = Consumer(client, GROUP, TOPICS, indexer.handle, max_deliveries=120,
                        claim_idle_ms=events_claim_idle_ms())
    await consumer.run(stop)


def main() -> None:
    run_worker("indexer", work)


if __name__ == "__main__":
    main()
