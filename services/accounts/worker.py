"""Profile counts worker: `python -m services.accounts.worker` (WorkerSpec "profile_counts").

A member of the consumer group "accounts-profile-counts" over the graph and
posts topics: it keeps users' follower, following and post counts from the
follow, unfollow, post.created and post.deleted events, each exactly once
(services.accounts.counts). A worker of accounts because `users` is
accounts' table. Also a member of "accounts-moderation" over moderation's topic:
a suspension marks the account and revokes its sessions (services.accounts.moderation).
Replicas share the work through the group. Once an hour it
forgets the event ids applied more than a week ago. SIGTERM finishes the
event in hand, then exits.
"""

from __future__ import annotations

import asyncio
import logging

from services.accounts.counts import GROUP, TOPICS, ProfileCounts
from services.accounts.moderation import GROUP as MODERATION_GROUP
from services.accounts.moderation import TOPICS as MODERATION_TOPICS
from services.accounts.moderation import Suspensions
from services.accounts.repository import PostgresAccountsRepository, PostgresCountStore
from services.common.config import events_claim_idle_ms
from services.common.events import Consumer
from services.common.revocation import TokenRevoker
from services.common.server import Resources, run_worker, wait_for_stop

log = logging.getLogger(__name__)

PRUNE_EVERY_S = 3600
KEEP_EVENT_IDS_S = 7 * 86_400


async def prune_loop(store: PostgresCountStore, logical_shards: int, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            for shard in range(logical_shards):
                await store.prune(shard, KEEP_EVENT_IDS_S)
        except Exception:
            log.exception("pruning consumed event ids failed; trying again later")
        await wait_for_stop(stop, PRUNE_EVERY_S)


async def work(resources: Resources, stop: asyncio.Event) -> None:
    db = await resources.database(max_size=4)
    store = PostgresCountStore(db)
    # Its handler fails only while PostgreSQL is away (the events are well-formed: protobuf from the
    # outbox), so it retries for about an hour (claim_idle_ms apart) before giving a count up.
    consumer = Consumer(resources.redis(), GROUP, TOPICS, ProfileCounts(store).handle, max_deliveries=120,
                        claim_idle_ms=events_claim_idle_ms())
    revoker = TokenRevoker(resources.redis(), resources.settings.access_token_ttl_s)
    suspensions = Consumer(resources.redis(), MODERATION_GROUP, MODERATION_TOPICS,
                           Suspensions(PostgresAccountsRepository(db), revoker).handle, max_deliveries=120,
                           claim_idle_ms=events_claim_idle_ms())
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(consumer.run(stop))
        tasks.create_task(suspensions.run(stop))
        tasks.create_task(prune_loop(store, resources.settings.logical_shards, stop))


def main() -> None:
    run_worker("profile_counts", work)


if __name__ == "__main__":
    main()
