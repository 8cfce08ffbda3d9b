"""Admission control for costly, bursty work: a fixed number of slots and a bounded wait.

`slots` callers hold a slot at once; the rest queue in arrival order, each for
at most `max_wait_s`. A caller whose wait, judged from how long a turn has
been taking (a moving average of the times reported to `leave`), would exceed
`max_wait_s` anyway is refused at once rather than after the wait. A refusal is
`Unavailable` with the admission's reason and a `retry_after_s`: about the
time the queue ahead needs to drain, spread up to twice that so that callers
refused together do not all come back in the same second.

Single-threaded (one event loop); `leave` must be called once per successful
`enter`, on the loop's thread.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections import deque

from services.common.errors import Unavailable

# Weight of the newest turn in the moving average of turn times.
SMOOTHING = 0.2
MAX_RETRY_AFTER_S = 30


class Admission:
    def __init__(self, slots: int, max_wait_s: float, first_turn_s: float, *, reason: str, message: str,
                 rng: random.Random | None = None) -> None:
        if slots < 1:
            raise ValueError("an admission needs at least one slot")
        self.slots = slots
        self.max_wait_s = max_wait_s
        # Moving average of how long a slot is held.
        self.turn_s = first_turn_s
        self.reason = reason
        self.message = message
        self._free = slots
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._rng = rng or random.Random()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def expected_wait_s(self, ahead: int) -> float:
        """How long a caller with `ahead` callers queued before it waits for a slot, on average."""
        if self._free > 0:
            return 0.0
        return (ahead + 1) * self.turn_s / self.slots

    async def enter(self) -> None:
        """Take a slot, waiting at most `max_wait_s`; raise Unavailable when none comes free in time."""
        if self._free > 0:
            self._free -= 1
            return
        if self.expected_wait_s(len(self._waiting)) > self.max_wait_s:
            raise self._refusal()
        waiter = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        try:
            await asyncio.wait({waiter}, timeout=self.max_wait_s)
        except BaseException:
            # Cancelled while waiting: a slot handed over meanwhile goes to the next caller.
            self._give_up(waiter)
            raise
        if waiter.done():
            return
        self._give_up(waiter)
        raise self._refusal()

    def leave(self, held_s: float) -> None:
        """Give the slot back (to the longest waiting caller, if any); `held_s` is how long it was held."""
        self.turn_s += SMOOTHING * (held_s - self.turn_s)
        self._hand_over()

    def _give_up(self, waiter: asyncio.Future[None]) -> None:
        if waiter.done() and not waiter.cancelled():
            self._hand_over()
            return
        waiter.cancel()
        self._waiting.remove(waiter)

    def _hand_over(self) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1

    def _refusal(self) -> Unavailable:
        drain_s = max(1, math.ceil(self.expected_wait_s(len(self._waiting))))
        retry_after_s = min(MAX_RETRY_AFTER_S, drain_s + self._rng.randint(0, drain_s))
        return Unavailable(self.message, reason=self.reason, retry_after_s=retry_after_s)
