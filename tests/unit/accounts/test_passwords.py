"""The password pool (services.accounts.passwords): verification, rehashing, and its one bounded pool."""

from __future__ import annotations

import asyncio
import os
import sys
import threading

import pytest
from argon2 import PasswordHasher

from services.accounts.passwords import (
    BUSY,
    MEMORY_COST_KIB,
    PARALLELISM,
    TIME_COST,
    PasswordPool,
    PasswordPoolConfig,
    load_password_pool_config,
)
from services.common.errors import Unavailable

PASSWORD = "correct horse"
# argon2-cffi's default (RFC 9106 low-memory): what accounts hashed with before.
OLD = PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=4)


async def until_free(pool: PasswordPool) -> None:
    while pool.admission.expected_wait_s(0) > 0:
        await asyncio.sleep(0.01)


def parameters(encoded: str) -> str:
    return encoded.split("$")[3]


@pytest.fixture
async def pool():
    made = PasswordPool(PasswordPoolConfig(workers=1, max_wait_s=5))
    yield made
    await made.close()


async def test_a_hash_is_made_with_the_current_parameters(pool):
    assert parameters(await pool.hash(PASSWORD)) == f"m={MEMORY_COST_KIB},t={TIME_COST},p={PARALLELISM}"


async def test_a_current_hash_verifies_and_is_kept(pool):
    verified = await pool.verify(await pool.hash(PASSWORD), PASSWORD)
    assert verified.ok and verified.rehashed is None


async def test_a_hash_with_older_parameters_verifies_and_comes_back_rehashed_with_the_current_ones(pool):
    verified = await pool.verify(OLD.hash(PASSWORD), PASSWORD)
    assert verified.ok
    assert parameters(verified.rehashed) == f"m={MEMORY_COST_KIB},t={TIME_COST},p={PARALLELISM}"
    assert (await pool.verify(verified.rehashed, PASSWORD)).ok


async def test_a_wrong_password_against_an_old_hash_is_refused_and_not_rehashed(pool):
    verified = await pool.verify(OLD.hash(PASSWORD), "not the password")
    assert not verified.ok and verified.rehashed is None


@pytest.mark.parametrize("stored", [None, "", "not a hash"], ids=["no-user", "empty", "garbage"])
async def test_no_usable_stored_hash_never_verifies(pool, stored):
    assert not (await pool.verify(stored, PASSWORD)).ok


async def test_a_caller_that_gives_up_keeps_its_worker_busy_until_the_hashing_ends():
    # One worker, no wait: while a hash runs, the next call is refused at once, even though the
    # caller of the running hash stopped waiting for it.
    slow = PasswordHasher(time_cost=4, memory_cost=64 * 1024, parallelism=1)
    pool = PasswordPool(PasswordPoolConfig(workers=1, max_wait_s=0), hasher=slow)
    try:
        running = asyncio.ensure_future(pool.hash(PASSWORD))
        await asyncio.sleep(0.01)
        running.cancel()
        with pytest.raises(Unavailable) as refused:
            await pool.hash(PASSWORD)
        assert refused.value.reason == BUSY and refused.value.retry_after_s >= 1
        # The abandoned hash ends and gives its worker back.
        await asyncio.wait_for(until_free(pool), 10)
        assert await pool.hash(PASSWORD)
    finally:
        await pool.close()


@pytest.mark.skipif(sys.platform != "linux", reason="a thread's own nice value is Linux's")
async def test_the_workers_hash_at_the_configured_lower_priority_and_the_caller_keeps_its_own():
    def own_nice() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    before = own_nice()
    pool = PasswordPool(PasswordPoolConfig(workers=1, max_wait_s=5, nice=max(before, 12)))
    try:
        assert await pool._run(own_nice) == max(before, 12)
        assert await pool.hash(PASSWORD)
    finally:
        await pool.close()
    assert own_nice() == before


def test_the_nice_value_comes_from_the_environment_within_what_linux_allows(monkeypatch):
    monkeypatch.delenv("PICTOR_PASSWORD_NICE", raising=False)
    assert load_password_pool_config().nice == 10
    for given, kept in (("0", 0), ("19", 19), ("40", 19), ("-5", 0)):
        monkeypatch.setenv("PICTOR_PASSWORD_NICE", given)
        assert load_password_pool_config().nice == kept
