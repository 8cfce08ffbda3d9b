"""The transactional outbox: an event is written with the change that causes it, then relayed.

A writer calls `write(conn, shard, topic, type, **data)` on the connection of
its transaction: the event (a pictor.events.v1.EventEnvelope) goes into
`shard_NNNN.outbox`, the schema where the change happens, so it commits or
rolls back with the change, whichever physical database the shard lives in.
A trigger NOTIFYs `pictor_outbox` (payload: the schema) at commit, unless
the writer passed wake=False (likes: NOTIFY serializes commits, see
migration 0008). Such a writer wakes the relay after its commit through a
`Waker`, which coalesces the shards named within a few milliseconds into one
pg_notify per database, off the writer's path; the relay's sweep is the
fallback should a wake-up be lost.

The relay (services.mesh.relay, WorkerSpec "relay") moves the rows to the
streams `events:<topic>` and deletes them:
  - per physical database one LISTEN connection: a notification drains its
    schema at once (feeds must see a post well under a second later); every
    `poll_interval_s` it also drains every schema that holds rows (a
    notification sent while no relay listened, a drain that failed);
  - a shard is drained by one relay at a time, under a transaction-scoped
    advisory lock (a lease that dies with its connection): batches in `seq`
    order, XADDed, then deleted, then committed. Several replicas share the
    shards; a relay that dies between XADD and commit leaves the rows for the
    next drain, which sends them again: delivery is at least once, and the
    event id stays the same, for the consumers that dedupe.

NOTE: order. Events of one shard go out in `seq` order, and an aggregate's
events are all written in one shard (a follow edge in the follower's, a post
in its author's, a like or comment in its post's). Two transactions can
commit in the other order than they took their seq; for one aggregate they
do not, because both first change the aggregate's row and the second waits
for the first's lock before it takes a seq.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

import psycopg
from redis.exceptions import RedisError

from services.common.db import Database, shard_schema
from services.common.events import EventPublisher, envelope

log = logging.getLogger(__name__)

CHANNEL = "pictor_outbox"
# The advisory lock (class, shard) a relay holds while it drains a shard.
LOCK_CLASS = 0x0B0C5
BATCH = 500


async def write(conn: psycopg.AsyncConnection, shard: int, topic: str, type: str, *, wake: bool = True,
                **data: object) -> str:
    """Add an event to the shard's outbox inside the caller's transaction; returns its event id.

    wake=False: no NOTIFY, the relay's next sweep takes it (for the busiest events).
    """
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.INTRANS:
        raise RuntimeError("outbox.write needs the transaction of the change (db.transaction)")
    params = event_params(topic, type, wake=wake, **data)
    await conn.execute(
        f"INSERT INTO {shard_schema(shard)}.outbox (event_id, topic, type, payload, wake) VALUES (%s, %s, %s, %s, %s)",
        params)
    return params[0]


def insert_for_each(shard: int, changed: str) -> str:
    """SQL that adds the event once per row of the CTE `changed`: the tail of a one-statement write.

    `WITH changed AS (INSERT ... RETURNING 1) ` + insert_for_each(shard, "changed"), with
    event_params(...) as its parameters, commits the change and its event in one round trip
    (a statement is its own transaction), and its rowcount says whether anything changed.
    """
    return (f"INSERT INTO {shard_schema(shard)}.outbox (event_id, topic, type, payload, wake) "
            f"SELECT %s, %s, %s, %s, %s FROM {changed}")


def event_params(topic: str, type: str, *, wake: bool = True, **data: object) -> tuple[str, str, str, bytes, bool]:
    """(event_id, topic, type, payload, wake): an outbox row's values for a new event."""
    message = envelope(type, dict(data))
    return message.event_id, topic, type, message.SerializeToString(), wake


class Waker:
    """Wakes the relay for events written with wake=False, after their commit: the shards named
    within `coalesce_s` go out as one pg_notify statement per physical database, in a task of its
    own, so a writer never waits on it (and never holds the commit lock NOTIFY takes)."""

    def __init__(self, db: Database, coalesce_s: float = 0.01) -> None:
        self.db = db
        self.coalesce_s = coalesce_s
        self._dirty: set[int] = set()
        self._task: asyncio.Task[None] | None = None

    def wake(self, shard: int) -> None:
        self._dirty.add(shard)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        await asyncio.sleep(self.coalesce_s)
        shards, self._dirty = self._dirty, set()
        for group in self.db.shards_by_database():
            schemas = [shard_schema(s) for s in group if s in shards]
            if not schemas:
                continue
            try:
                async with self.db.for_shard(group[0]).connection() as conn:
                    await conn.execute("SELECT pg_notify(%s, s) FROM unnest(%s::text[]) AS s", (CHANNEL, schemas))
            except psycopg.Error as error:  # the relay's sweep takes the events instead
                log.debug("outbox: could not wake the relay (%s)", error)


def shard_of_schema(schema: str) -> int | None:
    head, _, number = schema.partition("_")
    return int(number) if head == "shard" and number.isascii() and number.isdigit() else None


@dataclass
class Relay:
    db: Database
    publisher: EventPublisher
    poll_interval_s: float = 0.25
    batch: int = BATCH
    # Relays that share shards must share this; a test's relay takes its own to work beside the stack's.
    lock_class: int = LOCK_CLASS

    async def drain_once(self, shard: int) -> int | None:
        """Relay one batch of the shard's outbox; how many rows, or None when another relay holds it."""
        s = shard_schema(shard)
        async with self.db.for_shard(shard).connection() as conn, conn.transaction():
            cur = await conn.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", (self.lock_class, shard))
            if not (await cur.fetchone())[0]:
                return None
            rows = await (await conn.execute(
                f"SELECT seq, topic, type, payload FROM {s}.outbox ORDER BY seq LIMIT %s", (self.batch,))).fetchall()
            if not rows:
                return 0
            await self.publish(rows)
            # By seq, not "seq <= last": a row with a lower seq may commit after this SELECT.
            await conn.execute(f"DELETE FROM {s}.outbox WHERE seq = ANY(%s)", ([r[0] for r in rows],))
        return len(rows)

    async def publish(self, rows: list[tuple[int, str, str, bytes]]) -> None:
        """XADD the rows' envelopes to their streams, in order, in one round trip."""
        async with self.publisher.client.pipeline(transaction=False) as pipe:
            for _, topic, type, payload in rows:
                self.publisher.add_to(pipe, topic, bytes(payload), type)
            await pipe.execute()

    async def drain(self, shard: int) -> int:
        """Relay the shard's outbox until it is empty (or another relay holds it); returns how many rows."""
        total = 0
        while (moved := await self.drain_once(shard)) is not None:
            total += moved
            if moved < self.batch:
                break
        return total

    async def waiting_shards(self, shards: list[int]) -> list[int]:
        """Which of the shards (all in one physical database) have rows in their outbox: one statement."""
        statement = " UNION ALL ".join(
            f"(SELECT {shard} FROM {shard_schema(shard)}.outbox LIMIT 1)" for shard in shards)
        async with self.db.for_shard(shards[0]).connection() as conn:
            return [r[0] for r in await (await conn.execute(statement)).fetchall()]

    async def sweep(self, shards: list[int]) -> int:
        total = 0
        for shard in await self.waiting_shards(shards):
            total += await self.drain(shard)
        return total

    async def serve_database(self, shards: list[int], stop: asyncio.Event) -> None:
        """Listen to one physical database's notifications and drain its shards until `stop`."""
        url = self.db.settings.database_for_shard(shards[0])
        mine = set(shards)
        while not stop.is_set():
            try:
                async with await psycopg.AsyncConnection.connect(url, autocommit=True) as listener:
                    await listener.execute(f"LISTEN {CHANNEL}")
                    await self.sweep(shards)  # what was written while no one listened
                    swept = time.monotonic()
                    while not stop.is_set():
                        wait = max(0.0, swept + self.poll_interval_s - time.monotonic())
                        woken = {shard_of_schema(n.payload) async for n in listener.notifies(timeout=wait, stop_after=1)}
                        if woken:
                            # Every notification already here too (a drain's worth of writers commit
                            # meanwhile); their shards drain side by side, each under its own lock.
                            woken |= {shard_of_schema(n.payload) async for n in listener.notifies(timeout=0.001)}
                            await asyncio.gather(*(self.drain(shard) for shard in woken & mine))
                        # On time even while notifications keep coming: events written without one wait here.
                        if time.monotonic() >= swept + self.poll_interval_s:
                            await self.sweep(shards)
                            swept = time.monotonic()
            except (psycopg.OperationalError, RedisError, OSError) as error:
                # PostgreSQL or Redis away: the rows wait in the outbox; try again shortly.
                log.warning("relay: %s; retrying in 1 s", error)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1)
            except Exception:
                log.exception("relay: unexpected failure; retrying in 1 s")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1)

    async def backlog(self) -> dict[str, int]:
        """Physical database URL -> rows waiting in its shards' outboxes (for the metrics)."""
        found = {}
        for shards in self.db.shards_by_database():
            statement = " UNION ALL ".join(f"SELECT count(*) FROM {shard_schema(s)}.outbox" for s in shards)
            async with self.db.for_shard(shards[0]).connection() as conn:
                rows = await (await conn.execute(statement)).fetchall()
            found[self.db.settings.database_for_shard(shards[0])] = sum(r[0] for r in rows)
        return found

    async def run(self, stop: asyncio.Event) -> None:
        """Serve each physical database's shards until `stop`; again, by the new map, when a shard moves."""
        while not stop.is_set():
            this_map = asyncio.Event()
            await asyncio.gather(_until_either(stop, self.db.map_changed(), then=this_map),
                                 *(self.serve_database(shards, this_map) for shards in self.db.shards_by_database()))


async def _until_either(first: asyncio.Event, second: asyncio.Event, then: asyncio.Event) -> None:
    """Set `then` once `first` or `second` is set."""
    waits = {asyncio.ensure_future(first.wait()), asyncio.ensure_future(second.wait())}
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
    then.set()
