"""Ids for new rows: hotpath's sharded generator, one per logical shard, under a leased worker number.

Every process that mints ids (each replica of each service) leases a worker number, 1..63, from
`pictor_global.id_worker_leases` and hotpath's generator puts it in the id's low bits
(hotpath.ids: | 41 ms | 13 shard | 4 counter | 6 worker |), so two processes never issue one id
whatever their clocks say. The lease:

- lasts PICTOR_ID_LEASE_TTL_S (default 30 s) by the database's clock and is renewed every third
  of that; a number is free once its lease expired (a crashed holder's comes back after the TTL)
  or its holder released it on the way out.
- is fenced: each new holder gets a larger `token`, and a renewal names the token it holds, so a
  holder that lost its number (paused past the TTL, cut off from the database) cannot renew it;
  it learns so at its next renewal and leases another number.
- stops minting on its own: the holder mints only until its lease's end as measured from before
  it asked (monotonic clock, a second's margin). A holder that cannot renew in time answers
  UNAVAILABLE (reason ID_WORKER_UNAVAILABLE) rather than risk a duplicate, until it holds a
  number again.
- hands its clock over: each renewal records the latest wall-clock ms an id of the holder may
  carry (`issued_until_ms`); the next holder of that number mints nothing before it (it waits, or
  takes another number), so even a holder whose clock ran ahead cannot be repeated.

Without a lease (`IdAllocator(n)`, tools that load data into a stopped stack) the generator uses
all 10 low bits as its counter, as before workers existed: never alongside leased minters.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from hotpath.ids import IdGenerator, shard_of
from services.common.config import env_int
from services.common.errors import Unavailable

__all__ = ["IdAllocator", "WorkerLease", "shard_of"]

log = logging.getLogger(__name__)

LEASES = "pictor_global.id_worker_leases"
# How much sooner than the database's expiry the holder stops minting (clock rates, the renewal's trip).
MARGIN_S = 1.0
# The longest a new holder waits for the previous holder's last millisecond before taking another number.
HANDOVER_WAIT_MS = 5_000


class WorkerNumberUnavailable(Unavailable):
    def __init__(self) -> None:
        super().__init__("no id worker number is held right now; try again shortly", reason="ID_WORKER_UNAVAILABLE")


@dataclass(frozen=True)
class Held:
    worker: int
    token: int
    # time.monotonic() past which the holder mints nothing under this token.
    mint_until: float


class WorkerLease:
    """A leased worker number, renewed in the background (`run`) until `release`."""

    def __init__(self, pool: Callable[[], AsyncConnectionPool], holder: str, ttl_s: float | None = None) -> None:
        # Asked for each time: the database's health watcher replaces a pool after an outage.
        self.pool = pool
        self.holder = holder
        self.ttl_s = float(ttl_s if ttl_s is not None else env_int("PICTOR_ID_LEASE_TTL_S", 30))
        if self.ttl_s <= 2 * MARGIN_S:
            raise SystemExit(f"PICTOR_ID_LEASE_TTL_S must be more than {2 * MARGIN_S:.0f} s")
        self.held: Held | None = None
        self.acquired = asyncio.Event()
        self._task: asyncio.Task | None = None

    def current(self) -> Held:
        """The number held now, or WorkerNumberUnavailable (never one whose lease may have ended)."""
        held = self.held
        if held is None or time.monotonic() >= held.mint_until:
            raise WorkerNumberUnavailable()
        return held

    async def acquire(self) -> Held | None:
        """Take a free number (expired or released), or None when all 63 are held."""
        asked = time.monotonic()
        async with self.pool().connection() as conn, conn.transaction():
            row = await (await conn.execute(
                f"UPDATE {LEASES} SET holder = %s, token = token + 1, expires_at = now() + make_interval(secs => %s) "
                f"WHERE worker = (SELECT worker FROM {LEASES} WHERE expires_at < now() ORDER BY expires_at, worker "
                "LIMIT 1 FOR UPDATE SKIP LOCKED) "
                "RETURNING worker, token, issued_until_ms",
                (self.holder, self.ttl_s))).fetchone()
        if row is None:
            return None
        worker, token, previous_until_ms = row
        behind_ms = previous_until_ms - time.time_ns() // 1_000_000
        if behind_ms > HANDOVER_WAIT_MS:
            # Our clock is far behind the previous holder's: leave the number to someone else.
            log.warning("id worker %d: the previous holder may have issued ids %d ms ahead of our clock; "
                        "taking another number", worker, behind_ms)
            await self._give_back(worker, token)
            return None
        if behind_ms >= 0:
            await asyncio.sleep((behind_ms + 1) / 1000)
        held = Held(worker, token, asked + self.ttl_s - MARGIN_S)
        await self._record_until(held)
        return held

    async def renew(self, held: Held) -> Held | None:
        """Extend `held`; None when it was lost (another holder's token, or expired and taken)."""
        asked = time.monotonic()
        async with self.pool().connection() as conn:
            row = await (await conn.execute(
                f"UPDATE {LEASES} SET expires_at = now() + make_interval(secs => %s), issued_until_ms = %s "
                "WHERE worker = %s AND token = %s AND expires_at > now() RETURNING worker",
                (self.ttl_s, self._until_ms(), held.worker, held.token))).fetchone()
        return Held(held.worker, held.token, asked + self.ttl_s - MARGIN_S) if row else None

    def _until_ms(self, stopped: bool = False) -> int:
        # Minting stops within ttl of now (by our clock), so no id of ours carries a later ms; once
        # stopped, none carries a later one than now.
        return time.time_ns() // 1_000_000 + (0 if stopped else int(self.ttl_s * 1000))

    async def _record_until(self, held: Held, stopped: bool = False) -> None:
        async with self.pool().connection() as conn:
            await conn.execute(f"UPDATE {LEASES} SET issued_until_ms = %s WHERE worker = %s AND token = %s",
                               (self._until_ms(stopped), held.worker, held.token))

    async def _give_back(self, worker: int, token: int) -> None:
        async with self.pool().connection() as conn:
            await conn.execute(f"UPDATE {LEASES} SET expires_at = '-infinity' WHERE worker = %s AND token = %s",
                               (worker, token))

    async def run(self) -> None:
        """Hold a number until cancelled: take one, renew it every third of the TTL, take another if lost."""
        while True:
            failed = False
            try:
                if self.held is None:
                    self.held = await self.acquire()
                    if self.held is None:
                        log.error("%s: no id worker number is free (all 63 held); trying again", self.holder)
                    else:
                        log.info("%s: holds id worker number %d (token %d)", self.holder, self.held.worker,
                                 self.held.token)
                        self.acquired.set()
                else:
                    renewed = await self.renew(self.held)
                    if renewed is None:
                        log.error("%s: lost id worker number %d; taking another", self.holder, self.held.worker)
                        self.held = None
                        continue
                    self.held = renewed
            except (psycopg.Error, PoolTimeout, OSError) as error:  # minting stops when the lease ends
                log.warning("%s: id worker lease: %s: %s", self.holder, type(error).__name__, error)
                failed = True
            # A failed renewal is tried again within a second: the lease has a few seconds left.
            await asyncio.sleep(self.ttl_s / 3 * random.uniform(0.9, 1.0) if self.held and not failed else 1.0)

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name=f"id-lease-{self.holder}")

    async def release(self) -> None:
        """Stop renewing and free the number now, its issued_until_ms now: the next holder need not wait."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        held, self.held = self.held, None
        if held is not None:
            with contextlib.suppress(psycopg.Error, PoolTimeout, OSError):  # then it simply expires
                await self._record_until(held, stopped=True)
                await self._give_back(held.worker, held.token)


def holder_name(process: str) -> str:
    """Who holds a lease, for people reading the table: process, host and pid."""
    return f"{process}@{socket.gethostname()}:{os.getpid()}"


class IdAllocator:
    """Hands out ids in a given logical shard, or in a random one for new users.

    With a `lease`, ids carry its worker number and none is minted while no number is held;
    without, the process must be the only minter (see the module's docstring)."""

    def __init__(self, logical_shards: int, lease: WorkerLease | None = None) -> None:
        self.logical_shards = logical_shards
        self.lease = lease
        self._worker: int | None = None
        self._generators: dict[int, IdGenerator] = {}

    def new_id(self, shard: int) -> int:
        if self.lease is not None:
            worker = self.lease.current().worker
            if worker != self._worker:
                # A new number (the first, or one after a lost lease): fresh generators carry it.
                self._generators, self._worker = {}, worker
        generator = self._generators.get(shard)
        if generator is None:
            generator = self._generators[shard] = IdGenerator(shard, worker=self._worker)
        return generator.next_id()

    def new_id_in_random_shard(self) -> int:
        return self.new_id(random.randrange(self.logical_shards))


async def leased_allocator(pool: Callable[[], AsyncConnectionPool], logical_shards: int, process: str,
                           wait_s: float = 5.0) -> IdAllocator:
    """An allocator under a lease renewed from now on (`allocator.lease.release()` on the way out);
    waits up to `wait_s` for the first number (a database still down is the health watcher's news)."""
    lease = WorkerLease(pool, holder_name(process))
    lease.start()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(lease.acquired.wait(), wait_s)
    return IdAllocator(logical_shards, lease)
