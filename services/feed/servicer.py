"""FeedService gRPC servicer: proto to domain and back, nothing else.

A page goes out as bytes services.feed.pages wrote: GetFeed's as a
GetFeedResponse, serialized; GetFeedJson's (GET /v1/feed) as a
google.api.HttpBody holding the page's JSON, which the gateway sends on as it
is. Their handlers are registered here with a serializer that sends bytes as
they are (services.common.wire.passthrough).
"""

from __future__ import annotations

import grpc
from google.api import httpbody_pb2
from pictor.feed.v1 import feed_service_pb2 as pb
from pictor.feed.v1 import feed_service_pb2_grpc

from services.common.auth import TokenVerifier
from services.common.wire import passthrough
from services.feed.pages import PagePost, page_body, page_reply
from services.feed.service import CHRONOLOGICAL, RANKED, FeedService

SERVICE = pb.DESCRIPTOR.services_by_name["FeedService"].full_name


class FeedServicer(feed_service_pb2_grpc.FeedServiceServicer):
    def __init__(self, service: FeedService, verifier: TokenVerifier) -> None:
        self.service = service
        self.verifier = verifier

    async def GetFeed(self, request: pb.GetFeedRequest, context: grpc.aio.ServicerContext) -> bytes:
        return page_reply(*await self._page(self.verifier.require_caller(context), request))

    async def GetFeedJson(self, request: pb.GetFeedRequest, context: grpc.aio.ServicerContext) -> bytes:
        return page_body(*await self._page(self.verifier.require_caller(context), request))

    async def _page(self, viewer: int, request: pb.GetFeedRequest) -> tuple[list[PagePost], str]:
        mode = CHRONOLOGICAL if request.mode == pb.CHRONOLOGICAL else RANKED
        return await self.service.page(viewer, mode, request.page_size, request.page_token)


def add_to_server(servicer: FeedServicer, server: grpc.aio.Server) -> None:
    """As feed_service_pb2_grpc.add_FeedServiceServicer_to_server, with the pages sent as written."""
    handlers = {
        "GetFeed": grpc.unary_unary_rpc_method_handler(
            servicer.GetFeed, request_deserializer=pb.GetFeedRequest.FromString,
            response_serializer=passthrough(pb.GetFeedResponse.SerializeToString)),
        "GetFeedJson": grpc.unary_unary_rpc_method_handler(
            servicer.GetFeedJson, request_deserializer=pb.GetFeedRequest.FromString,
            response_serializer=passthrough(httpbody_pb2.HttpBody.SerializeToString)),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
