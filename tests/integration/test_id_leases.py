"""services.common.ids' worker-number leases against the stack's real PostgreSQL: distinct numbers,
expiry, fencing, and the hand-over of the clock from one holder to the next."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from hotpath.ids import decode, worker_of
from services.common.ids import LEASES, IdAllocator, WorkerLease, WorkerNumberUnavailable


async def expire(db, worker: int, until_ms: int | None = None) -> None:
    """Make `worker`'s lease look expired (its holder stopped renewing, its last id at `until_ms`: now)."""
    async with db.global_pool.connection() as conn:
        await conn.execute(f"UPDATE {LEASES} SET expires_at = now() - interval '1 second', issued_until_ms = %s "
                           "WHERE worker = %s", (time.time_ns() // 1_000_000 if until_ms is None else until_ms, worker))


@contextlib.asynccontextmanager
async def only_free(db, worker: int):
    """While inside, `worker` is the only free number (the other free ones look held)."""
    async with db.global_pool.connection() as conn:
        others = [row[0] for row in await (await conn.execute(
            f"UPDATE {LEASES} SET expires_at = now() + interval '1 minute' WHERE expires_at < now() AND worker <> %s "
            "RETURNING worker", (worker,))).fetchall()]
    try:
        yield
    finally:
        async with db.global_pool.connection() as conn:
            await conn.execute(f"UPDATE {LEASES} SET expires_at = '-infinity' WHERE worker = ANY(%s)", (others,))


async def leased(db, holder: str, ttl_s: float = 10) -> WorkerLease:
    """A lease holding a number (not renewed in the background); `release()` it."""
    lease = WorkerLease(lambda: db.global_pool, holder, ttl_s=ttl_s)
    lease.held = await lease.acquire()
    assert lease.held is not None
    return lease


async def test_two_holders_lease_different_numbers(db):
    first, second = await leased(db, "test-a"), await leased(db, "test-b")
    try:
        assert first.current().worker != second.current().worker
    finally:
        await first.release()
        await second.release()


async def test_ids_carry_the_leased_number_in_their_low_bits(db, settings):
    lease = await leased(db, "test-bits")
    try:
        post_id = IdAllocator(settings.logical_shards, lease).new_id(3)
        assert (worker_of(post_id), decode(post_id).shard) == (lease.current().worker, 3)
    finally:
        await lease.release()


async def test_a_lease_taken_over_after_expiry_cannot_be_renewed_by_its_old_holder(db):
    old = await leased(db, "test-old")
    held = old.current()
    await expire(db, held.worker)
    async with only_free(db, held.worker):
        new = await leased(db, "test-new")
    try:
        assert new.current().worker == held.worker and new.current().token > held.token
        assert await old.renew(held) is None
    finally:
        await new.release()


async def test_a_holder_mints_nothing_once_its_lease_may_have_ended(db, settings):
    lease = await leased(db, "test-stop", ttl_s=2.5)
    allocator = IdAllocator(settings.logical_shards, lease)
    try:
        allocator.new_id(0)
        # Not renewed: after its TTL (less the margin) it refuses rather than risk a duplicate.
        await asyncio.sleep(lease.ttl_s)
        with pytest.raises(WorkerNumberUnavailable):
            allocator.new_id(0)
    finally:
        await lease.release()


async def test_the_next_holder_issues_nothing_before_the_previous_holders_last_millisecond(db, settings):
    first = await leased(db, "test-first")
    # The previous holder's clock ran 300 ms ahead: it may have issued ids that late.
    until_ms = time.time_ns() // 1_000_000 + 300
    await expire(db, first.current().worker, until_ms)
    async with only_free(db, first.current().worker):
        second = await leased(db, "test-second")
    try:
        assert second.current().worker == first.current().worker
        assert decode(IdAllocator(settings.logical_shards, second).new_id(1)).timestamp_ms > until_ms
    finally:
        await second.release()
