"""FeedService gRPC servicer: proto to domain and back, nothing else.

GetFeed's reply goes out as the bytes services.feed.pages spliced (a
GetFeedResponse, serialized), so its handler is registered here with a
serializer that sends bytes as they are (services.common.wire.passthrough).
"""

from __future__ import annotations

import grpc
from pictor.feed.v1 import feed_service_pb2 as pb
from pictor.feed.v1 import feed_service_pb2_grpc

from services.common.auth import TokenVerifier
from services.common.wire import passthrough
from services.feed.pages import page_reply
from services.feed.service import CHRONOLOGICAL, RANKED, FeedService

SERVICE = pb.DESCRIPTOR.services_by_name["FeedService"].full_name


class FeedServicer(feed_service_pb2_grpc.FeedServiceServicer):
    def __init__(self, service: FeedService, verifier: TokenVerifier) -> None:
        self.service = service
        self.verifier = verifier

    async def GetFeed(self, request: pb.GetFeedRequest, context: grpc.aio.ServicerContext) -> bytes:
        viewer = self.verifier.require_caller(context)
        mode = CHRONOLOGICAL if request.mode == pb.CHRONOLOGICAL else RANKED
        posts, token = await self.service.page(viewer, mode, request.page_size, request.page_token)
        return page_reply(posts, token)


def add_to_server(servicer: FeedServicer, server: grpc.aio.Server) -> None:
    """As feed_service_pb2_grpc.add_FeedServiceServicer_to_server, with GetFeed's reply sent as written."""
    handlers = {"GetFeed": grpc.unary_unary_rpc_method_handler(
        servicer.GetFeed, request_deserializer=pb.GetFeedRequest.FromString,
        response_serializer=passthrough(pb.GetFeedResponse.SerializeToString))}
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
