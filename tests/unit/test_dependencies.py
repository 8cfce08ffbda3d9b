"""Outage plumbing without servers: which errors mean a store is away, backoff, the watcher."""

from __future__ import annotations

import asyncio
import time

import psycopg
import psycopg_pool
import pytest
import redis.exceptions

from services.common import dependencies
from services.common.config import load_settings
from services.common.dependencies import (
    CACHE_UNAVAILABLE,
    DATABASE_UNAVAILABLE,
    Backoff,
    Dependency,
    DependencyWatcher,
    unavailable_reason,
)
from services.common.server import Resources


@pytest.mark.parametrize(("error", "reason"), [
    (psycopg.OperationalError("server closed the connection unexpectedly"), DATABASE_UNAVAILABLE),
    (psycopg_pool.PoolTimeout("couldn't get a connection after 1.50 sec"), DATABASE_UNAVAILABLE),
    (redis.exceptions.ConnectionError("Error 111 connecting"), CACHE_UNAVAILABLE),
    (redis.exceptions.TimeoutError("Timeout reading from socket"), CACHE_UNAVAILABLE),
    (redis.exceptions.BusyLoadingError("Redis is loading the dataset in memory"), CACHE_UNAVAILABLE),
    (ExceptionGroup("both", [redis.exceptions.TimeoutError(), redis.exceptions.ConnectionError()]), CACHE_UNAVAILABLE),
    (psycopg.errors.UniqueViolation("duplicate key"), None),
    (ValueError("a bug"), None),
], ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v))
def test_only_a_store_out_of_reach_counts_as_unavailable(error, reason):
    assert unavailable_reason(error) == reason


def test_backoff_doubles_on_quick_failures_up_to_its_cap_and_starts_over_after_a_long_run():
    backoff = Backoff(first_s=0.5, max_s=4, reset_after_s=30)
    assert [backoff.delay(1) for _ in range(6)] == [0.5, 1, 2, 4, 4, 4]
    assert backoff.delay(31) == 0.5


class FakeStore:
    def __init__(self) -> None:
        self.up = True
        self.hang = False
        self.recovered = 0

    async def probe(self) -> None:
        if self.hang:
            await asyncio.sleep(3600)
        if not self.up:
            raise ConnectionRefusedError("refused")

    async def on_recovered(self) -> None:
        self.recovered += 1


def watcher_of(store: FakeStore, changes: list[bool]) -> DependencyWatcher:
    async def on_change(ok: bool) -> None:
        changes.append(ok)

    dependency = Dependency("store", DATABASE_UNAVAILABLE, store.probe, store.on_recovered)
    return DependencyWatcher([dependency], timeout_s=0.05, on_change=on_change)


async def test_the_watcher_reports_a_store_down_wakes_waiting_calls_and_renews_on_its_return():
    store, changes = FakeStore(), []
    watcher = watcher_of(store, changes)
    await watcher.check_once()
    assert watcher.reason is None and changes == []
    waiting = watcher.outage()
    store.up = False
    await watcher.check_once()
    assert watcher.reason == DATABASE_UNAVAILABLE
    assert waiting.done() and waiting.result() == DATABASE_UNAVAILABLE
    assert changes == [False]
    store.up = True
    await watcher.check_once()
    assert watcher.reason is None and changes == [False, True] and store.recovered == 1


async def test_a_probe_that_never_answers_is_down_after_the_timeout_without_waiting_for_it():
    store, changes = FakeStore(), []
    watcher = watcher_of(store, changes)
    store.hang = True
    await asyncio.wait_for(watcher.check_once(), 1)
    assert watcher.reason == DATABASE_UNAVAILABLE


async def test_an_answer_that_came_while_the_process_was_stalled_past_the_timeout_is_not_an_outage():
    loop = asyncio.get_running_loop()
    answered = loop.create_future()

    async def probe() -> None:
        await answered
        for _ in range(3):  # reading a reply takes a few turns of the loop
            await asyncio.sleep(0)

    changes: list[bool] = []
    watcher = watcher_of(FakeStore(), changes)
    watcher.dependencies = [Dependency("store", DATABASE_UNAVAILABLE, probe)]
    loop.call_later(0.01, time.sleep, 0.2)  # the loop held past the probe's 0.05 s timeout...
    loop.call_later(0.02, answered.set_result, None)  # ...while the answer came
    await watcher.check_once()
    assert watcher.reason is None and changes == []


async def test_resources_close_goes_on_past_a_closer_that_hangs_and_names_it(monkeypatch, caplog):
    monkeypatch.setattr(dependencies, "CLOSE_TIMEOUT_S", 0.2)
    closed: list[str] = []

    async def hangs() -> None:
        await asyncio.Event().wait()  # a close whose answer never comes

    async def closes() -> None:
        closed.append("first opened")

    resources = Resources(load_settings())
    resources.on_close(closes)
    resources.on_close(hangs)
    await asyncio.wait_for(resources.close(), 2)
    assert closed == ["first opened"]  # closed after the hung one, the last opened, gave up
    [record] = [r for r in caplog.records if "did not finish within 0.2 s" in r.getMessage()]
    message = record.getMessage()
    assert "in hangs" in message and "asyncio/locks.py" in message  # what hung, and where it waits


async def test_finish_within_raises_what_the_awaitable_raised():
    async def fails() -> None:
        raise ValueError("closing failed")

    with pytest.raises(ValueError, match="closing failed"):
        await dependencies.finish_within("closing", fails(), 1)
