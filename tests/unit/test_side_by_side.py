"""services.common.server.side_by_side: a worker's jobs stop together, the failing one's error as it is."""

from __future__ import annotations

import asyncio

import pytest

from services.common.server import side_by_side


async def test_the_first_failure_stops_the_other_jobs_and_is_raised_as_it_is():
    cancelled = asyncio.Event()

    async def forever() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def fails() -> None:
        await asyncio.sleep(0.01)
        raise ConnectionError("the store went away")

    with pytest.raises(ConnectionError, match="the store went away"):
        await side_by_side(forever(), fails())
    assert cancelled.is_set()  # nothing goes on running on resources about to be closed


async def test_jobs_that_end_end_it():
    done: list[str] = []

    async def job(name: str) -> None:
        await asyncio.sleep(0.01)
        done.append(name)

    await side_by_side(job("consumer"), job("sweep"))
    assert sorted(done) == ["consumer", "sweep"]
