"""W3C trace context (https://www.w3.org/TR/trace-context/) through the mesh, and the trace id in logs.

Envoy starts a trace for each request (or continues the client's) and sends `traceparent` to the
service it routes to; the metrics wrap around every handler (services.common.metrics.MetricsInterceptor)
reads it from the call's metadata, and every call the handler makes to another service carries it
on (`TracedChannel`: every mesh channel), with the same trace id and this hop as the parent. A call
without one (a worker's, a test's) starts a trace of its own. The trace id goes into every log line
written while serving the call (services.common.logs).

Only propagation lives here: the services record and export no spans yet (Envoy exports its own
when OTEL_EXPORTER_OTLP_ENDPOINT is set: services.mesh.envoy_config), and events do not carry the
trace context through the outbox.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from contextvars import ContextVar
from typing import Any, NamedTuple, Self

import grpc

HEADER = "traceparent"


class TraceContext(NamedTuple):
    trace_id: str  # 32 lowercase hex digits
    span_id: str  # 16 lowercase hex digits: this hop's
    flags: str  # 2 hex digits: "01" sampled

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"


_current: ContextVar[TraceContext | None] = ContextVar("pictor_trace", default=None)
_HEX = frozenset("0123456789abcdef")
_random = random.Random().getrandbits  # its own generator, seeded from os.urandom


def parse(value: str) -> TraceContext | None:
    """A `traceparent` header's trace id, parent id and flags; None when it is not a valid one."""
    parts = value.strip().split("-")
    if len(parts) < 4 or len(parts[0]) != 2 or parts[0] == "ff" or (parts[0] == "00" and len(parts) != 4):
        return None
    version, trace_id, span_id, flags = parts[:4]
    if len(trace_id) != 32 or len(span_id) != 16 or len(flags) != 2:
        return None
    if not set(version + trace_id + span_id + flags) <= _HEX:
        return None
    if trace_id == "0" * 32 or span_id == "0" * 16:
        return None
    return TraceContext(trace_id, span_id, flags)


def incoming(metadata: tuple | None) -> TraceContext | None:
    """The caller's trace context from a call's invocation metadata, if it sent a valid one."""
    for key, value in metadata or ():
        if key == HEADER:
            return parse(value if isinstance(value, str) else value.decode("ascii", "replace"))
    return None


def enter(parent: TraceContext | None) -> TraceContext:
    """Make this task's trace context a new hop (span) of `parent`'s trace, or of a new trace."""
    # NOTE: ids from the process's PRNG (seeded from the OS at start), not a syscall per call: a
    # trace id must be unique and unguessable enough to not collide, not a secret.
    context = TraceContext(parent.trace_id if parent else f"{_random(128) or 1:032x}", f"{_random(64) or 1:016x}",
                           parent.flags if parent else "01")
    _current.set(context)
    return context


def current() -> TraceContext | None:
    return _current.get()


def current_trace_id() -> str:
    context = _current.get()
    return context.trace_id if context is not None else ""


def with_traceparent(metadata: Sequence[tuple[str, str | bytes]] | None, context: TraceContext) -> tuple:
    """`metadata` with `context` as its `traceparent` (in place of any it had)."""
    return (*((k, v) for k, v in metadata or () if k != HEADER), (HEADER, context.traceparent))


class _Traced:
    """A multi-callable whose calls carry the task's trace context, when it has one."""

    __slots__ = ("_call",)

    def __init__(self, call: Any) -> None:
        self._call = call

    def __call__(self, request: Any, *, metadata: Sequence[tuple[str, str | bytes]] | None = None,
                 **options: Any) -> Any:
        context = _current.get()
        if context is not None:
            metadata = with_traceparent(metadata, context)
        return self._call(request, metadata=metadata, **options)


class TracedChannel:
    """A mesh channel whose calls carry the current trace context (when there is one) as `traceparent`.

    The multi-callables it hands out add the metadata themselves: a client interceptor would do
    it too, but grpc.aio runs every call of a channel with one as an intercepted call (a task of
    its own): 16 µs of the caller's CPU a call over a plain channel, against 9 for this
    (`python -m services.mesh.wrapping_bench`). Everything else is the channel's own."""

    __slots__ = ("channel",)

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.channel = channel

    def __getattr__(self, name: str) -> Any:
        return getattr(self.channel, name)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.channel.close(None)

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> _Traced:
        return _Traced(self.channel.unary_unary(method, *args, **kwargs))

    def unary_stream(self, method: str, *args: Any, **kwargs: Any) -> _Traced:
        return _Traced(self.channel.unary_stream(method, *args, **kwargs))

    def stream_unary(self, method: str, *args: Any, **kwargs: Any) -> _Traced:
        return _Traced(self.channel.stream_unary(method, *args, **kwargs))

    def stream_stream(self, method: str, *args: Any, **kwargs: Any) -> _Traced:
        return _Traced(self.channel.stream_stream(method, *args, **kwargs))
