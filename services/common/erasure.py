"""Account deletion, the owners' side: every service erases what it holds of a deleted user.

`DELETE /v1/users/me` (accounts) deletes the account at once and writes an
`account.deleted` event to accounts' outbox in the same transaction. Each owner
(accounts itself, graph, posts, media, feed, engagement, notifications, realtime,
stories, messaging, search, moderation) runs a member of its own consumer group
`<service>-erasure` over the "accounts" topic inside its service process
(`start`), and its `erase_user(user_id)` deletes the user's rows and Redis keys.

Erasers are idempotent (deleting what is already gone changes nothing), so a
redelivered event, or one handled by two replicas, is harmless. One that cannot
finish yet (it waits for another owner's cleanup) raises `Postpone`: the event is
retried after PICTOR_EVENTS_CLAIM_IDLE_MS. An eraser that writes events of its own
(graph's unfollows, engagement's unlikes) lets the other owners correct what they
counted (followers, likes) through the events they already consume.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable

from services.common.config import events_claim_idle_ms
from services.common.db import Database, shard_schema
from services.common.events import Consumer, Event, Postpone, published_at

log = logging.getLogger(__name__)

TOPIC = "accounts"
EVENT = "account.deleted"

Erase = Callable[[int], Awaitable[None]]


def group(owner: str) -> str:
    return f"{owner}-erasure"


def handler(owner: str, erase: Erase, settle_s: float = 0.0) -> Callable[[Event], Awaitable[None]]:
    """settle_s: an owner whose consumers may still be handling earlier events about the user
    (and so make state for them again) erases, then erases again once the event is that old
    (Postpone: the event comes back after PICTOR_EVENTS_CLAIM_IDLE_MS)."""
    async def handle(event: Event) -> None:
        if event.type != EVENT:
            return
        user_id = int(event.data["user_id"])
        await erase(user_id)
        if time.time() - published_at(event) < settle_s:
            log.info("%s erased user %d; erasing again later", owner, user_id)
            raise Postpone
        log.info("%s erased user %d", owner, user_id)

    return handle


def start(resources: object, owner: str, erase: Erase, settle_s: float = 0.0) -> None:
    """Run `owner`'s erasure consumer in this process until it closes (from a service's setup)."""
    stop = asyncio.Event()
    consumer = Consumer(resources.redis(), group(owner), [TOPIC], handler(owner, erase, settle_s),  # type: ignore[attr-defined]
                        claim_idle_ms=events_claim_idle_ms())

    async def run() -> None:
        while not stop.is_set():
            try:
                await consumer.run(stop)
            except Exception:  # never let the erasure loop die with the service still serving
                log.exception("%s: erasure consumer failed; starting again", owner)
                await asyncio.sleep(1)

    task = asyncio.get_running_loop().create_task(run())

    async def close() -> None:
        stop.set()
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(task, 5)

    resources.on_close(close)  # type: ignore[attr-defined]


async def delete_in_every_shard(db: Database, statements: Iterable[str], user_id: int) -> int:
    """Run DELETE (or UPDATE) statements in every shard's schema (`{schema}`, `%(user)s` the user's
    id), one transaction per physical database; returns the rows they touched."""
    statements = list(statements)
    touched = 0
    for shards in db.shards_by_database():
        async with db.transaction(shards[0]) as (conn,):
            for shard in shards:
                for sql in statements:
                    cur = await conn.execute(sql.format(schema=shard_schema(shard)), {"user": user_id})
                    touched += max(cur.rowcount, 0)
    return touched
