"""Deadline propagation: an outbound call never outlives the call that caused it."""

from __future__ import annotations

import grpc

DEFAULT_TIMEOUT_S = 5.0
# Keep a little of the caller's budget for our own reply.
REPLY_MARGIN_S = 0.005


def outbound_timeout(context: grpc.aio.ServicerContext | None, default_s: float = DEFAULT_TIMEOUT_S) -> float:
    """Timeout for a call made while serving `context`: what is left of its deadline, capped at `default_s`."""
    remaining = context.time_remaining() if context is not None else None
    if remaining is None:
        return default_s
    return max(0.0, min(default_s, remaining - REPLY_MARGIN_S))
