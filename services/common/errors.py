"""Domain errors, and the one interceptor that turns them into gRPC statuses.

Domain code raises these with a reason (UPPER_SNAKE_CASE) and, for bad input,
the field at fault. Servicers never choose status codes. Clients see the code,
the message and a google.rpc.ErrorInfo detail {reason, domain, metadata}; the
gateway renders that as JSON `{code, message, details}`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import namedtuple
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from services.common.deadlines import enter_call
from services.common.dependencies import DependencyWatcher, ignore_outcome, unavailable_reason
from services.common.handler_wraps import HandlerWrap

log = logging.getLogger(__name__)

ERROR_DOMAIN = "pictor"


class DomainError(Exception):
    """Base of every error a client is meant to see."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    default_reason = "INTERNAL"
    # Seconds after which a retry may succeed; None: not a condition that passes by itself.
    retry_after_s: int | None = None

    def __init__(self, message: str, *, reason: str | None = None, retry_after_s: int | None = None,
                 **metadata: str) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.retry_after_s = retry_after_s
        self.metadata = {k: str(v) for k, v in metadata.items()}


class InvalidArgument(DomainError):
    """Malformed input; `field` names the culprit."""

    code = grpc.StatusCode.INVALID_ARGUMENT
    default_reason = "INVALID_ARGUMENT"

    def __init__(self, field: str, message: str, *, reason: str | None = None) -> None:
        super().__init__(message, reason=reason, field=field)
        self.field = field


class NotFound(DomainError):
    """Missing, or not visible to the caller: the two answer the same."""

    code = grpc.StatusCode.NOT_FOUND
    default_reason = "NOT_FOUND"


class AlreadyExists(DomainError):
    code = grpc.StatusCode.ALREADY_EXISTS
    default_reason = "ALREADY_EXISTS"


class Unauthenticated(DomainError):
    code = grpc.StatusCode.UNAUTHENTICATED
    default_reason = "UNAUTHENTICATED"


class PermissionDenied(DomainError):
    code = grpc.StatusCode.PERMISSION_DENIED
    default_reason = "PERMISSION_DENIED"


class Conflict(DomainError):
    """The resource is in a state that does not allow the call (HTTP 409)."""

    code = grpc.StatusCode.ABORTED
    default_reason = "CONFLICT"


class ResourceExhausted(DomainError):
    """A quota of the caller's is used up (HTTP 429); the message names it and its setting."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    default_reason = "RESOURCE_EXHAUSTED"


class FailedPrecondition(DomainError):
    code = grpc.StatusCode.FAILED_PRECONDITION
    default_reason = "FAILED_PRECONDITION"


class Unavailable(DomainError):
    """Cannot be served now (HTTP 503); with `retry_after_s` when the service knows when to come back."""

    code = grpc.StatusCode.UNAVAILABLE
    default_reason = "UNAVAILABLE"


RETRY_AFTER = "retry-after"


class _Status(namedtuple("_Status", ("code", "details", "trailing_metadata")), grpc.Status):
    pass


def _packed(message) -> any_pb2.Any:
    detail = any_pb2.Any()
    detail.Pack(message)
    return detail


def to_status(error: DomainError) -> grpc.Status:
    details = [_packed(error_details_pb2.ErrorInfo(reason=error.reason, domain=ERROR_DOMAIN,
                                                   metadata=error.metadata))]
    if error.retry_after_s is not None:
        delay = duration_pb2.Duration(seconds=error.retry_after_s)
        details.append(_packed(error_details_pb2.RetryInfo(retry_delay=delay)))
    status = rpc_status.to_status(status_pb2.Status(code=error.code.value[0], message=error.message, details=details))
    if error.retry_after_s is None:
        return status
    return _Status(status.code, status.details,
                   (*status.trailing_metadata, (RETRY_AFTER, str(error.retry_after_s))))


def _internal_status() -> grpc.Status:
    status = status_pb2.Status(code=code_pb2.INTERNAL, message="internal error")
    return rpc_status.to_status(status)


# Health and reflection answer for themselves, whatever the dependencies' state.
PLUMBING = ("/grpc.health.", "/grpc.reflection.")
UNAVAILABLE_MESSAGES = {
    "DATABASE_UNAVAILABLE": "the database is unavailable; try again shortly",
    "CACHE_UNAVAILABLE": "the cache is unavailable; try again shortly",
}


def unavailable(reason: str) -> Unavailable:
    return Unavailable(UNAVAILABLE_MESSAGES.get(reason, "a dependency is unavailable"), reason=reason)


class ErrorInterceptor(HandlerWrap):
    """Maps DomainError to its status, a store out of reach (psycopg's OperationalError and pool
    timeout, redis' ConnectionError and TimeoutError) to UNAVAILABLE; anything else is logged and
    becomes INTERNAL.

    With a `watcher`, a call made while a store it depends on is down answers UNAVAILABLE at
    once, and so does a call in flight when one goes down: a stopped server would otherwise
    keep it waiting for as long as the operating system keeps the connection open. The
    handler then runs on in the background until its store answers or fails.

    It also records each call's deadline for the outbound calls made while
    serving it (services.common.deadlines).
    """

    def __init__(self, watcher: DependencyWatcher | None = None) -> None:
        self.watcher = watcher

    async def _run(self, behavior: Callable[..., Awaitable[Any]], request: Any,
                   context: grpc.aio.ServicerContext) -> Any:
        watcher = self.watcher
        if watcher is None or not watcher.dependencies:
            return await behavior(request, context)
        if watcher.reason is not None:
            raise unavailable(watcher.reason)
        call = asyncio.ensure_future(behavior(request, context))
        outage = watcher.outage()
        try:
            await asyncio.wait({call, outage}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            call.cancel()
            raise
        finally:
            watcher.discard(outage)
        if call.done():
            outage.cancel()
            return call.result()
        call.cancel()
        call.add_done_callback(ignore_outcome)
        raise unavailable(outage.result())

    def wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        if method.startswith(PLUMBING):
            return handler

        async def abort_for(error: Exception, context: grpc.aio.ServicerContext) -> None:
            if isinstance(error, DomainError):
                await context.abort_with_status(to_status(error))
            if isinstance(error, grpc.aio.AioRpcError):
                # A dependency failed. Its own client errors are our bug; its
                # unavailability or lateness is passed on as such.
                if unavailable_reason(error) is not None:
                    log.warning("%s: a service it called answered %s", method, error.code().name)
                    await context.abort_with_status(
                        to_status(Unavailable(f"a service this call needs did not answer ({error.code().name})",
                                              reason="DEPENDENCY_UNAVAILABLE")))
                log.error("call from %s failed: %s %s", method, error.code().name, error.details())
                await context.abort_with_status(_internal_status())
            reason = unavailable_reason(error)
            if reason is None:
                log.error("unexpected error in %s", method, exc_info=error)
                await context.abort_with_status(_internal_status())
            log.warning("%s: %s (%s: %s)", method, reason, type(error).__name__, error)
            await context.abort_with_status(to_status(unavailable(reason)))

        def wrap_unary(behavior: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
            async def wrapper(request: Any, context: grpc.aio.ServicerContext) -> Any:
                enter_call(context)
                try:
                    return await self._run(behavior, request, context)
                except grpc.aio.AbortError:
                    raise
                except Exception as error:  # noqa: BLE001 (abort_for logs what is unexpected)
                    await abort_for(error, context)

            return wrapper

        def wrap_server_stream(behavior: Callable[..., AsyncIterator[Any]]) -> Callable[..., AsyncIterator[Any]]:
            # A stream outlives any outage watch: its own reads of the stores fail and end it.
            async def wrapper(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                enter_call(context)
                try:
                    async for message in behavior(request, context):
                        yield message
                except grpc.aio.AbortError:
                    raise
                except Exception as error:  # noqa: BLE001 (abort_for logs what is unexpected)
                    await abort_for(error, context)

            return wrapper

        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                wrap_unary(handler.unary_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                wrap_server_stream(handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                wrap_unary(handler.stream_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler
