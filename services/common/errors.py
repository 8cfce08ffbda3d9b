"""Domain errors, and the one interceptor that turns them into gRPC statuses.

Domain code raises these with a reason (UPPER_SNAKE_CASE) and, for bad input,
the field at fault. Servicers never choose status codes. Clients see the code,
the message and a google.rpc.ErrorInfo detail {reason, domain, metadata}; the
gateway renders that as JSON `{code, message, details}`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from services.common.deadlines import enter_call

log = logging.getLogger(__name__)

ERROR_DOMAIN = "pictor"


class DomainError(Exception):
    """Base of every error a client is meant to see."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    default_reason = "INTERNAL"

    def __init__(self, message: str, *, reason: str | None = None, **metadata: str) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
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


class FailedPrecondition(DomainError):
    code = grpc.StatusCode.FAILED_PRECONDITION
    default_reason = "FAILED_PRECONDITION"


class Unavailable(DomainError):
    code = grpc.StatusCode.UNAVAILABLE
    default_reason = "UNAVAILABLE"


def to_status(error: DomainError) -> grpc.Status:
    info = error_details_pb2.ErrorInfo(reason=error.reason, domain=ERROR_DOMAIN, metadata=error.metadata)
    detail = any_pb2.Any()
    detail.Pack(info)
    status = status_pb2.Status(code=error.code.value[0], message=error.message, details=[detail])
    return rpc_status.to_status(status)


def _internal_status() -> grpc.Status:
    status = status_pb2.Status(code=code_pb2.INTERNAL, message="internal error")
    return rpc_status.to_status(status)


class ErrorInterceptor(grpc.aio.ServerInterceptor):
    """Maps DomainError to its status; anything else is logged and becomes INTERNAL.

    It also records each call's deadline for the outbound calls made while
    serving it (services.common.deadlines).
    """

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method

        def wrap_unary(behavior: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
            async def wrapper(request: Any, context: grpc.aio.ServicerContext) -> Any:
                enter_call(context)
                try:
                    return await behavior(request, context)
                except DomainError as error:
                    await context.abort_with_status(to_status(error))
                except grpc.aio.AbortError:
                    raise
                except grpc.aio.AioRpcError as error:
                    # A dependency failed. Its own client errors are our bug; its
                    # unavailability or lateness is passed on as such.
                    if error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                        await context.abort_with_status(
                            to_status(Unavailable(f"a service this call needs did not answer ({error.code().name})",
                                                  reason="DEPENDENCY_UNAVAILABLE")))
                    log.error("call from %s failed: %s %s", method, error.code().name, error.details())
                    await context.abort_with_status(_internal_status())
                except Exception:
                    log.exception("unexpected error in %s", method)
                    await context.abort_with_status(_internal_status())

            return wrapper

        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                wrap_unary(handler.unary_unary),
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
