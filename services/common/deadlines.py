"""Deadline propagation: an outbound call never outlives the call that caused it.

The server interceptor records each incoming call's deadline in a context
variable (every RPC runs in its own task, so it is per call); mesh clients ask
`outbound_timeout()` for what is left of it. Domain code never sees gRPC.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from typing import Protocol

DEFAULT_TIMEOUT_S = 5.0
# Keep a little of the caller's budget for our own reply.
REPLY_MARGIN_S = 0.005

_deadline: ContextVar[float | None] = ContextVar("pictor_deadline", default=None)


class HasTimeRemaining(Protocol):
    def time_remaining(self) -> float | None: ...


def enter_call(context: HasTimeRemaining) -> None:
    """Record the incoming call's deadline for the outbound calls made while serving it."""
    remaining = context.time_remaining()
    _deadline.set(None if remaining is None else time.monotonic() + remaining)


def outbound_timeout(context: HasTimeRemaining | None = None, default_s: float = DEFAULT_TIMEOUT_S) -> float:
    """Timeout for an outbound call: what is left of the caller's deadline (from `context`, or the
    one recorded for the current call), capped at `default_s`."""
    if context is not None:
        remaining = context.time_remaining()
    else:
        deadline = _deadline.get()
        remaining = None if deadline is None else deadline - time.monotonic()
    if remaining is None:
        return default_s
    return max(0.0, min(default_s, remaining - REPLY_MARGIN_S))
