"""services.common.batching.Batcher: one call per batch of a key, never an answer older than its question."""

from __future__ import annotations

import asyncio

import pytest

from services.common.batching import Batcher


class Recorder:
    """A batch call that waits for its gate, and remembers each batch it was given."""

    def __init__(self) -> None:
        self.batches: list[tuple[str, list[int]]] = []
        self.gate = asyncio.Event()
        self.fail_with: Exception | None = None

    async def run(self, key: str, items: list[int]) -> list[int]:
        self.batches.append((key, items))
        await self.gate.wait()
        if self.fail_with is not None:
            raise self.fail_with
        return [item * 10 for item in items]


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_an_item_alone_goes_at_once_and_those_arriving_meanwhile_go_together_next():
    recorder = Recorder()
    batcher = Batcher(recorder.run)
    first = asyncio.create_task(batcher.submit("a", 1))
    await settle()
    rest = [asyncio.create_task(batcher.submit("a", i)) for i in (2, 3, 4)]
    await settle()
    assert recorder.batches == [("a", [1])]  # 2-4 did not join the call in flight
    recorder.gate.set()
    assert await first == 10 and await asyncio.gather(*rest) == [20, 30, 40]
    assert recorder.batches == [("a", [1]), ("a", [2, 3, 4])]


async def test_keys_are_batched_apart_and_a_batch_is_at_most_max_batch():
    recorder = Recorder()
    recorder.gate.set()
    batcher = Batcher(recorder.run, max_batch=2)
    results = await asyncio.gather(*(batcher.submit(key, i) for i, key in enumerate("abaab")))
    assert results == [0, 10, 20, 30, 40]
    # All five queue before the first call runs: "a" takes two calls, "b" one.
    assert sorted(recorder.batches) == [("a", [0, 2]), ("a", [3]), ("b", [1, 4])]


async def test_a_failed_batch_fails_each_of_its_callers_and_the_next_batch_still_runs():
    recorder = Recorder()
    batcher = Batcher(recorder.run)
    failing = [asyncio.create_task(batcher.submit("a", i)) for i in (1, 2)]
    await settle()
    recorder.fail_with = RuntimeError("the database went away")
    recorder.gate.set()
    for task in failing:
        with pytest.raises(RuntimeError, match="went away"):
            await task
    recorder.fail_with = None
    assert await batcher.submit("a", 5) == 50


async def test_a_caller_that_gives_up_leaves_its_item_to_the_batch():
    recorder = Recorder()
    batcher = Batcher(recorder.run)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(batcher.submit("a", 7), timeout=0.01)
    recorder.gate.set()
    await batcher.close()
    assert recorder.batches == [("a", [7])]
    assert await batcher.submit("a", 8) == 80


async def test_under_load_a_lingering_call_takes_what_came_meanwhile_and_an_item_alone_does_not_wait():
    recorder = Recorder()
    batcher = Batcher(recorder.run, linger_s=0.05)
    first = asyncio.create_task(batcher.submit("a", 1))
    await settle()
    second = asyncio.create_task(batcher.submit("a", 2))  # waits while 1 is in flight: load
    await settle()
    recorder.gate.set()
    assert await first == 10
    third = asyncio.create_task(batcher.submit("a", 3))  # during the linger
    assert await asyncio.gather(second, third) == [20, 30]
    assert recorder.batches == [("a", [1]), ("a", [2, 3])]

    quiet = Recorder()
    quiet.gate.set()
    alone = Batcher(quiet.run, linger_s=3600)  # an item alone that waited would time out here
    assert await asyncio.wait_for(alone.submit("b", 4), timeout=5) == 40
    assert await asyncio.wait_for(alone.submit("b", 5), timeout=5) == 50
