"""Notifier worker: `python -m services.notifications.worker` (WorkerSpec "notifier").

A member of the consumer group "notifications-inbox" over the graph, posts
and engagement topics: it turns acts into notifications and takes them back
(services.notifications.inbox), each event once per user notified. Once an
hour it forgets the event ids applied more than a week ago. SIGTERM finishes
the event in hand, then exits.
"""

from __future__ import annotations

import asyncio
import logging

from services.common.clients import AccountsClient, GraphClient, PostsClient
from services.common.config import env_int, events_claim_idle_ms
from services.common.events import Consumer
from services.common.server import Resources, run_worker, wait_for_stop
from services.notifications.adapters import MeshRelations, People, PostThumbnails
from services.notifications.inbox import CONSUMER, GROUP, TOPICS, Inbox, recipients
from services.notifications.render import GroupRenderer
from services.notifications.repository import PostgresNotificationStore
from services.notifications.service import Grouping

log = logging.getLogger(__name__)

PRUNE_EVERY_S = 3600
KEEP_EVENT_IDS_S = 7 * 86_400


async def prune_loop(store: PostgresNotificationStore, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await store.forget_consumed(CONSUMER, KEEP_EVENT_IDS_S)
        except Exception:
            log.exception("pruning consumed event ids failed; trying again later")
        await wait_for_stop(stop, PRUNE_EVERY_S)


async def work(resources: Resources, stop: asyncio.Event) -> None:
    # Handling an event is mostly waiting (graph, posts, accounts, PostgreSQL): up to this many at once,
    # those of one recipient in order; the database pool is as large.
    concurrency = max(1, env_int("PICTOR_NOTIFIER_CONCURRENCY", 4))
    channels = resources.channels()
    store = PostgresNotificationStore(await resources.database(max_size=concurrency))
    people, posts = People(AccountsClient(channels)), PostThumbnails(PostsClient(channels))
    inbox = Inbox(store, MeshRelations(GraphClient(channels), PostsClient(channels)), people,
                  GroupRenderer(people, posts), Grouping.from_env())
    consumer = Consumer(resources.redis(), GROUP, TOPICS, inbox.handle, max_deliveries=120,
                        claim_idle_ms=events_claim_idle_ms(), lanes=recipients, concurrency=concurrency)
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(consumer.run(stop))
        tasks.create_task(prune_loop(store, stop))


def main() -> None:
    run_worker("notifier", work)


if __name__ == "__main__":
    main()
