"""What every server does around each method's handler, built once per method rather than once per call.

A gRPC server interceptor runs on every call, and one that wraps the handler builds a new one
each time: with four of them (metrics and trace, error mapping and outage watch, request checks,
caller check) that building cost a call about as much of the server's CPU as the wrappers' own
work (30 µs and 28 of a trivial call's 204 in `python -m services.mesh.wrapping_bench`).
The wrapping depends only on the method, so a `HandlerWrap` says how to wrap one method's
handler (`wrap(path, handler)`; whatever it needs from the call it reads from the call's context),
and `WrapOnce` applies a stack of them on a method's first call and serves the same wrapped
handler from then on. Each `HandlerWrap` is an interceptor on its own too (a test's server, a
tool's), wrapping afresh on each call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import grpc

Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]]


class HandlerWrap(grpc.aio.ServerInterceptor):
    """Wraps a method's handler in what it adds to each call of the method."""

    def wrap(self, path: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        raise NotImplementedError

    async def intercept_service(self, continuation: Continuation,
                                handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        return None if handler is None else self.wrap(handler_call_details.method, handler)


class WrapOnce(grpc.aio.ServerInterceptor):
    """`wraps` (outermost first) around each method's handler, built on the method's first call."""

    def __init__(self, *wraps: HandlerWrap) -> None:
        self._wraps = wraps
        self._handlers: dict[str, grpc.RpcMethodHandler] = {}

    async def intercept_service(self, continuation: Continuation,
                                handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        path = handler_call_details.method
        handler = self._handlers.get(path)
        if handler is None:
            handler = await continuation(handler_call_details)
            if handler is None:
                return None  # not kept: a caller can name any number of methods that do not exist
            for wrap in reversed(self._wraps):
                handler = wrap.wrap(path, handler)
            self._handlers[path] = handler
        return handler
