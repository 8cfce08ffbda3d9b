"""Admission control (services.common.admission): slots, the bounded wait, refusals with Retry-After."""

from __future__ import annotations

import asyncio
import random

import pytest

from services.common.admission import MAX_RETRY_AFTER_S, Admission
from services.common.errors import Unavailable


def admission(slots: int = 1, max_wait_s: float = 0.5, first_turn_s: float = 0.01, seed: int = 0) -> Admission:
    return Admission(slots, max_wait_s, first_turn_s, reason="BUSY", message="busy", rng=random.Random(seed))


async def taken(**kwargs) -> Admission:
    """An admission of one slot (by default), that slot held."""
    gate = admission(**kwargs)
    await gate.enter()
    return gate


async def entered(gate: Admission) -> asyncio.Task:
    """A caller queued at `gate` (its task, not done until it holds a slot)."""
    task = asyncio.ensure_future(gate.enter())
    await asyncio.sleep(0)
    return task


async def test_a_free_slot_is_taken_at_once():
    gate = admission(slots=2)
    await asyncio.wait_for(gate.enter(), 0.1)
    await asyncio.wait_for(gate.enter(), 0.1)
    assert gate.waiting == 0


async def test_a_slot_given_back_goes_to_the_longest_waiting_caller():
    gate = await taken(max_wait_s=5)
    first, second = await entered(gate), await entered(gate)
    gate.leave(0.01)
    await asyncio.wait_for(first, 0.1)
    assert not second.done()
    gate.leave(0.01)
    await asyncio.wait_for(second, 0.1)


async def test_a_caller_that_gets_no_slot_within_the_wait_is_refused_with_reason_and_retry_after():
    gate = await taken(max_wait_s=0.1)
    with pytest.raises(Unavailable) as refused:
        await asyncio.wait_for(gate.enter(), 2)
    assert refused.value.reason == "BUSY" and refused.value.retry_after_s >= 1
    assert gate.waiting == 0


async def test_a_caller_whose_expected_wait_exceeds_the_bound_is_refused_without_waiting():
    # One slot held, turns of 3 s: a second caller could not start within 2 s, so it is not made to wait them.
    gate = await taken(max_wait_s=2, first_turn_s=3)
    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(Unavailable):
        await gate.enter()
    assert loop.time() - began < 1


async def test_the_queue_admits_callers_as_long_as_their_expected_wait_is_within_the_bound():
    # Turns of 0.1 s, one slot, a 0.35 s bound: the 1st, 2nd and 3rd queued callers would start
    # within 0.1, 0.2 and 0.3 s and are queued; the 4th (0.4 s) is refused at once.
    gate = await taken(max_wait_s=0.35, first_turn_s=0.1)
    queued = [await entered(gate) for _ in range(3)]
    with pytest.raises(Unavailable):
        await gate.enter()
    assert gate.waiting == 3 and not any(t.done() for t in queued)
    for task in queued:
        task.cancel()


async def test_a_caller_cancelled_while_waiting_leaves_no_slot_behind():
    gate = await taken(max_wait_s=5)
    waiting = await entered(gate)
    waiting.cancel()
    await asyncio.sleep(0)
    gate.leave(0.01)
    await asyncio.wait_for(gate.enter(), 0.1)
    assert gate.waiting == 0


async def test_a_slot_handed_to_a_caller_cancelled_at_that_moment_passes_to_the_next():
    gate = await taken(max_wait_s=5)
    first, second = await entered(gate), await entered(gate)
    gate.leave(0.01)  # hands the slot to `first`, which is cancelled before it runs
    first.cancel()
    await asyncio.wait_for(second, 0.1)


async def test_the_turn_estimate_follows_the_times_reported():
    gate = admission(first_turn_s=0.01)
    for _ in range(30):
        await gate.enter()
        gate.leave(1.0)
    assert gate.turn_s == pytest.approx(1.0, rel=0.01)


@pytest.mark.parametrize("seed", range(5))
async def test_retry_after_is_spread_between_the_drain_time_and_twice_it(seed):
    # One slot, turns of 1 s, three queued: the queue drains in about 4 s.
    gate = await taken(max_wait_s=3.5, first_turn_s=1, seed=seed)
    queued = [await entered(gate) for _ in range(3)]
    with pytest.raises(Unavailable) as refused:
        await gate.enter()
    assert 4 <= refused.value.retry_after_s <= 8
    for task in queued:
        task.cancel()


async def test_retry_after_is_capped():
    gate = await taken(max_wait_s=1, first_turn_s=1000)
    with pytest.raises(Unavailable) as refused:
        await gate.enter()
    assert refused.value.retry_after_s == MAX_RETRY_AFTER_S
