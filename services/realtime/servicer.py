"""RealtimeService gRPC servicer: proto to domain and back, nothing else (and SSE framing)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import grpc
from google.api import httpbody_pb2
from google.protobuf import empty_pb2, json_format
from pictor.realtime.v1 import realtime_pb2, realtime_service_pb2_grpc
from pictor.realtime.v1 import realtime_service_pb2 as pb

from services.common.auth import TokenVerifier
from services.common.dependencies import unavailable_reason
from services.common.errors import DomainError, Unauthenticated
from services.realtime.presence import PresenceView
from services.realtime.service import RealtimeService, check_event_id

SSE_CONTENT_TYPE = "text/event-stream"
# The first bytes, sent at once so the client has its 200 before any event: the reconnection
# delay an EventSource should use (ms).
SSE_PREAMBLE = b"retry: 3000\n\n"
LAST_EVENT_ID = "last-event-id"


def presence_to_proto(view: PresenceView) -> realtime_pb2.Presence:
    message = realtime_pb2.Presence(user_id=view.user_id,
                                    state=realtime_pb2.PresenceState.Value(f"PRESENCE_STATE_{view.state}"))
    if view.last_active_ms is not None:
        message.last_active_at.FromMilliseconds(view.last_active_ms)
    return message


def sse_frame(event: realtime_pb2.StreamEvent) -> bytes:
    """One Server-Sent Event: `id:` (when kept), `event:` the type, `data:` the payload's JSON on one line."""
    case = event.WhichOneof("payload")
    data = json_format.MessageToJson(getattr(event, case), preserving_proto_field_name=True, indent=None,
                                     always_print_fields_with_no_presence=True) if case else "{}"
    head = f"id: {event.id}\n" if event.id else ""
    return f"{head}event: {event.type}\ndata: {data}\n\n".encode()


def sse_error(error: Exception) -> bytes:
    """An `error` event ending a stream: `{reason, message}`; the client reconnects with its Last-Event-ID."""
    if isinstance(error, DomainError):
        reason, message = error.reason, error.message
    else:
        reason = unavailable_reason(error) or "INTERNAL"
        message = "the stream was interrupted; reconnect with Last-Event-ID"
    return f"event: error\ndata: {json.dumps({'reason': reason, 'message': message})}\n\n".encode()


def _header(context: grpc.aio.ServicerContext, name: str) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == name:
            return str(value)
    return None


class RealtimeServicer(realtime_service_pb2_grpc.RealtimeServiceServicer):
    def __init__(self, service: RealtimeService, verifier: TokenVerifier) -> None:
        self.service = service
        self.verifier = verifier

    async def GetPresence(self, request: pb.GetPresenceRequest,
                          context: grpc.aio.ServicerContext) -> realtime_pb2.Presence:
        viewer = self.verifier.require_caller(context)
        return presence_to_proto(await self.service.presence_of(viewer, request.user_id))

    async def Subscribe(self, request: pb.SubscribeRequest,
                        context: grpc.aio.ServicerContext) -> AsyncIterator[realtime_pb2.StreamEvent]:
        user_id = self.verifier.require_caller(context)
        since = check_event_id("since", request.since) if request.since else None
        async for event in self.service.events(user_id, since):
            yield event

    async def StreamEvents(self, request: pb.StreamEventsRequest,
                           context: grpc.aio.ServicerContext) -> AsyncIterator[httpbody_pb2.HttpBody]:
        user_id = self.verifier.caller(context)
        last_event_id = _header(context, LAST_EVENT_ID)
        since = (check_event_id("Last-Event-ID", last_event_id) if last_event_id
                 else check_event_id("since", request.since) if request.since else None)
        if user_id is None:
            if not request.ticket:
                raise Unauthenticated("sign in first: send an access token or a stream ticket",
                                      reason="TOKEN_MISSING")
            user_id = await self.service.redeem_ticket(request.ticket)
        yield httpbody_pb2.HttpBody(content_type=SSE_CONTENT_TYPE, data=SSE_PREAMBLE)
        try:
            async for event in self.service.events(user_id, since):
                yield httpbody_pb2.HttpBody(content_type=SSE_CONTENT_TYPE, data=sse_frame(event))
        except Exception as error:
            # After the 200, an HTTP/1.1 client would see the gRPC status as a clean end: say it in-band.
            yield httpbody_pb2.HttpBody(content_type=SSE_CONTENT_TYPE, data=sse_error(error))
            raise

    async def CreateStreamTicket(self, request: pb.CreateStreamTicketRequest,
                                 context: grpc.aio.ServicerContext) -> pb.StreamTicket:
        ticket, expires_at = await self.service.issue_ticket(self.verifier.require_caller(context))
        message = pb.StreamTicket(ticket=ticket)
        message.expires_at.FromMilliseconds(int(expires_at * 1000))
        return message

    async def RecordActivity(self, request: pb.RecordActivityRequest,
                             context: grpc.aio.ServicerContext) -> empty_pb2.Empty:
        await self.service.record_activity(self.verifier.require_caller(context))
        return empty_pb2.Empty()

    async def BatchGetUserClasses(self, request: pb.BatchGetUserClassesRequest,
                                  context: grpc.aio.ServicerContext) -> pb.BatchGetUserClassesResponse:
        found = await self.service.classes_of(list(request.user_ids))
        return pb.BatchGetUserClassesResponse(users=[
            realtime_pb2.UserClasses(user_id=u, classes=[realtime_pb2.UserClass.Value(f"USER_CLASS_{c}")
                                                         for c in found[u]])
            for u in request.user_ids])
